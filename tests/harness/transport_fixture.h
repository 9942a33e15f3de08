/* SPDX-License-Identifier: MIT */
/* transport_fixture.h: a loop and a loopback TCP pair whose server end carries a protocol the
 * test owns (its transport the socket transport), the client end a raw socket: the peer. */
#ifndef WEFT_TEST_TRANSPORT_FIXTURE_H
#define WEFT_TEST_TRANSPORT_FIXTURE_H

#include <stdbool.h>

#include <weft/weft.h>

/* The weft_protocol_factory of a protocol the test owns: returns arg (not freed by lost). */
struct weft_protocol *transport_fixture_factory(void *arg);

/*
 * *loop = a new loop; *peer = the client end of a loopback TCP pair (non-blocking), whose
 * server end becomes a connection of proto. Returns 0, or -1 (a cmocka setup failure).
 */
int transport_fixture_open(struct weft_loop **loop, int *peer, struct weft_protocol *proto);

/*
 * Whatever the test did, the connection ends exactly once: if *lost is still 0, aborts tr and
 * runs loop until *lost_flag (at most 2 s); then asserts *lost == 1.
 */
void transport_fixture_end(struct weft_loop *loop, struct weft_transport *tr, const int *lost,
                           const bool *lost_flag);

/* Closes peer (unless it is -1 by now) and frees loop. */
void transport_fixture_close(struct weft_loop *loop, int peer);

#endif
