/* SPDX-License-Identifier: MIT */
/* cidr.h: address ranges ("10.0.0.0/8", "::1", "any") for proxy_trusted. */
#ifndef WEFTD_CIDR_H
#define WEFTD_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct cidr {
    int family;                 /* AF_INET, AF_INET6, or AF_UNSPEC for "any" */
    uint8_t addr[16];           /* network bytes, host bits cleared */
    unsigned bits;              /* prefix length */
};

/*
 * Parse a comma-separated list of ranges: "ADDR/BITS", a bare ADDR (a /32
 * or /128), or "any" (every address). Returns 0 with a malloc'd array in
 * *out and its length in *n; -WEFT_ECONFIG with the reason in why; -ENOMEM.
 */
int cidr_parse_list(const char *text, struct cidr **out, size_t *n, char *why, size_t whylen);

/*
 * True if sa is in one of the n ranges. An IPv4-mapped IPv6 address
 * (::ffff:1.2.3.4) matches as the IPv4 address it carries.
 */
bool cidr_match(const struct cidr *list, size_t n, const struct sockaddr *sa, socklen_t len);

#endif
