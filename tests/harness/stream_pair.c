/* SPDX-License-Identifier: MIT */
/* stream_pair.c: see stream_pair.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <unistd.h>

#include "harness.h"
#include "streams/stream-int.h"
#include "stream_pair.h"

int
stream_pair_setup(void **state)
{
    struct stream_pair *p = calloc(1, sizeof(*p));

    p->loop = harness_loop_new();
    p->peer = -1;
    *state = p;
    return 0;
}

int
stream_pair_setup_null_opts(void **state)
{
    stream_pair_setup(state);
    ((struct stream_pair *)*state)->null_opts = true;
    return 0;
}

int
stream_pair_teardown(void **state)
{
    struct stream_pair *p = *state;

    if (p->peer >= 0)
        close(p->peer);
    harness_run_for(p->loop, 20);
    weft_stream_factory_free(p->fac);
    weft_loop_free(p->loop);
    free(p);
    return 0;
}

static int
body_cb(struct weft_reader *r, struct weft_writer *w, void *arg)
{
    struct stream_pair *p = arg;

    p->rc = p->body(p, r, w);
    p->done = true;
    return 0;
}

int
stream_pair_run(struct stream_pair *p, stream_pair_body *body)
{
    int ours;

    assert_int_equal(harness_tcp_pair(&ours, &p->peer), 0);
    p->body = body;
    p->fac = weft_stream_factory_new(body_cb, p, p->null_opts ? NULL : &p->opts);
    assert_non_null(p->fac);
    assert_int_equal(weft_connect_accepted_socket(p->loop, weft_stream_factory, p->fac, ours,
                                                  NULL), 0);
    if (harness_run_until(p->loop, &p->done, 5000) < 0) {
        weft__stream_cancel_handlers(p->loop, NULL);
        harness_run_until(p->loop, &p->done, 500);
        fail_msg("the test body hung");
    }
    harness_run_for(p->loop, 10);
    return p->rc;
}
