/* SPDX-License-Identifier: MIT */
/* fake_dns.h: a loop whose resolver asks only a DNS server the test runs on 127.0.0.1. */
#ifndef WEFT_TEST_FAKE_DNS_H
#define WEFT_TEST_FAKE_DNS_H

#include <stdint.h>

#include <weft/weft.h>

/*
 * A DNS server of our own on 127.0.0.1, served by the loop under test, so no
 * query leaves the machine and every answer is known:
 *   a.test     A 127.0.0.2, no AAAA
 *   he.test    A 127.0.0.1 and AAAA ::1 (happy eyeballs)
 *   slow.test, 8.0.0.127.in-addr.arpa and ::2's PTR: never answered
 *   1.0.0.127.in-addr.arpa PTR localhost
 *   anything else: NXDOMAIN
 * The loop's hosts file is ours too: localhost is 127.0.0.1 and ::1; its
 * resolv.conf names 192.0.2.1 and a search list, which must be ignored.
 */
struct fake_dns {
    struct weft_loop *loop;
    int fd;
    int queries;            /* datagrams received */
    char dir[32];
    char hosts[64], resolv[64];
    char nameserver[32];
};

/* A loop, the server on it, the files; the resolver's timeout_ms. Asserts. */
struct fake_dns *fake_dns_new(uint64_t timeout_ms);

/* Run the loop 10 ms (callbacks left behind), then fake_dns_free_now(). */
void fake_dns_free(struct fake_dns *f);

/* Stop the server, free the loop, remove the files. */
void fake_dns_free_now(struct fake_dns *f);

#endif
