/* serve_client.c: being written (placeholder until its helper lands it). */
typedef int arca_placeholder_serve_client;
