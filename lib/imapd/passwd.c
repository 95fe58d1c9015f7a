/* passwd.c: being written (placeholder until its helper lands it). */
typedef int arca_placeholder_passwd;
