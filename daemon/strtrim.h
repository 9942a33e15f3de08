/* SPDX-License-Identifier: MIT */
/* strtrim.h: str_trim, shared by the config parser and the address ranges (cidr.c). */
#ifndef WEFTD_STRTRIM_H
#define WEFTD_STRTRIM_H

#include <string.h>

/* s without its leading blanks (spaces, tabs), its trailing ones cut off in place. */
static inline char *
str_trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        *--e = '\0';
    return s;
}

#endif
