/* SPDX-License-Identifier: MIT */
/* cidr.c: address ranges ("10.0.0.0/8", "::1", "any") for proxy_trusted. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/error.h>

#include "cidr.h"
#include "strtrim.h"

static int
parse_one(char *item, struct cidr *c, char *why, size_t whylen)
{
    char *slash = strchr(item, '/');
    unsigned long bits;
    unsigned max;
    char *end;

    memset(c, 0, sizeof(*c));
    if (strcmp(item, "any") == 0) {
        c->family = AF_UNSPEC;
        return 0;
    }
    if (slash != NULL)
        *slash = '\0';
    if (inet_pton(AF_INET, item, c->addr) == 1) {
        c->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, item, c->addr) == 1) {
        c->family = AF_INET6;
        max = 128;
    } else {
        snprintf(why, whylen, "\"%s\" is not an IPv4 or IPv6 address (ADDR or ADDR/BITS, "
                 "as in 10.0.0.0/8, ::1, or any)", item);
        return -WEFT_ECONFIG;
    }
    bits = max;
    if (slash != NULL) {
        errno = 0;
        bits = strtoul(slash + 1, &end, 10);
        if (slash[1] < '0' || slash[1] > '9' || *end != '\0' || errno != 0 || bits > max) {
            snprintf(why, whylen, "bad prefix length \"/%s\" for %s (0 to %u)", slash + 1,
                     item, max);
            return -WEFT_ECONFIG;
        }
    }
    c->bits = (unsigned)bits;
    /* Clear the host bits so that matching compares whole bytes and one mask. */
    for (unsigned i = 0; i < max / 8; i++) {
        unsigned keep = c->bits > i * 8 ? c->bits - i * 8 : 0;

        if (keep < 8)
            c->addr[i] &= (uint8_t)(0xFF00u >> keep);
    }
    return 0;
}

int
cidr_parse_list(const char *text, struct cidr **out, size_t *n, char *why, size_t whylen)
{
    char *copy = strdup(text), *save = NULL, *item;
    struct cidr *list = NULL, *nl;
    size_t count = 0;
    int rc = 0;

    if (copy == NULL)
        return -ENOMEM;
    for (item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        item = str_trim(item);
        if (*item == '\0')
            continue;
        nl = realloc(list, (count + 1) * sizeof(*nl));
        if (nl == NULL) {
            rc = -ENOMEM;
            break;
        }
        list = nl;
        rc = parse_one(item, &list[count], why, whylen);
        if (rc < 0)
            break;
        count++;
    }
    if (rc == 0 && count == 0) {
        snprintf(why, whylen, "empty list (addresses or ranges, as in 10.0.0.0/8, ::1, or any)");
        rc = -WEFT_ECONFIG;
    }
    free(copy);
    if (rc < 0) {
        free(list);
        return rc;
    }
    *out = list;
    *n = count;
    return 0;
}

static bool
prefix_equal(const uint8_t *a, const uint8_t *net, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;

    if (memcmp(a, net, whole) != 0)
        return false;
    return rest == 0 || (a[whole] & (uint8_t)(0xFF00u >> rest)) == net[whole];
}

bool
cidr_match(const struct cidr *list, size_t n, const struct sockaddr *sa, socklen_t len)
{
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF };
    const uint8_t *a4 = NULL, *a6 = NULL;

    if (sa == NULL)
        return false;
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        a4 = (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        a6 = (const uint8_t *)&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        if (memcmp(a6, mapped, sizeof(mapped)) == 0)
            a4 = a6 + 12;
    }
    for (size_t i = 0; i < n; i++) {
        const struct cidr *c = &list[i];

        if (c->family == AF_UNSPEC)
            return true;
        if (c->family == AF_INET && a4 != NULL && prefix_equal(a4, c->addr, c->bits))
            return true;
        if (c->family == AF_INET6 && a6 != NULL && prefix_equal(a6, c->addr, c->bits))
            return true;
    }
    return false;
}
