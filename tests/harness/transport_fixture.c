/* SPDX-License-Identifier: MIT */
/* transport_fixture.c: see transport_fixture.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <unistd.h>

#include "harness.h"
#include "transport_fixture.h"

struct weft_protocol *
transport_fixture_factory(void *arg)
{
    return arg;
}

int
transport_fixture_open(struct weft_loop **loop, int *peer, struct weft_protocol *proto)
{
    int server;

    *loop = harness_loop_new();
    if (harness_tcp_pair(peer, &server) < 0)
        return -1;
    if (weft_connect_accepted_socket(*loop, transport_fixture_factory, proto, server, NULL) < 0)
        return -1;
    return 0;
}

void
transport_fixture_end(struct weft_loop *loop, struct weft_transport *tr, const int *lost,
                      const bool *lost_flag)
{
    if (!*lost) {
        weft_transport_abort(tr);
        harness_run_until(loop, lost_flag, 2000);
    }
    assert_int_equal(*lost, 1);
}

void
transport_fixture_close(struct weft_loop *loop, int peer)
{
    if (peer >= 0)
        close(peer);
    weft_loop_free(loop);
}
