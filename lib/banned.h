/*
 * banned.h - functions that make buffer overflows easy are compile errors
 * (git's banned.h).  Every .c file includes it after all other headers (the
 * system headers declare these names).  Use snprintf, memcpy with checked
 * lengths, or struct abuf.
 */
#ifndef ARCA_BANNED_H
#define ARCA_BANNED_H

#define BANNED(func) sorry_##func##_is_a_banned_function

#undef strcpy
#define strcpy(x, y) BANNED(strcpy)
#undef strcat
#define strcat(x, y) BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) BANNED(strncpy)
#undef strncat
#define strncat(x, y, n) BANNED(strncat)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef gets
#define gets(x) BANNED(gets)
#undef strtok
#define strtok(x, y) BANNED(strtok)

#endif
