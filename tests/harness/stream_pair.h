/* SPDX-License-Identifier: MIT */
/* stream_pair.h: a loop and a connected TCP pair, a stream on one end (run by a test body as
 * its handler, through weft_stream_factory, the way weftd serves stream plugins) and a raw
 * non-blocking socket, the peer, on the other. */
#ifndef WEFT_TEST_STREAM_PAIR_H
#define WEFT_TEST_STREAM_PAIR_H

#include <stdbool.h>
#include <stddef.h>

#include <weft/weft.h>

struct stream_pair;

/* The test body: the handler of our end; its result is stream_pair_run()'s. */
typedef int stream_pair_body(struct stream_pair *p, struct weft_reader *r,
                             struct weft_writer *w);

struct stream_pair {
    struct weft_loop *loop;
    struct weft_stream_factory *fac;
    struct weft_stream_options opts;    /* the factory's options (zero: defaults) ... */
    bool null_opts;                     /* ... or NULL for them (stream_pair_setup_null_opts) */
    int peer;                           /* -1 once closed */
    stream_pair_body *body;
    int rc;
    bool done;
    /* for a test's feeder task driving the peer */
    const char *const *chunks;
    size_t nchunks;
    unsigned gap_ms;
    bool shut_after;
};

/* cmocka setup: *state = a zeroed struct stream_pair with a new loop and no peer yet. */
int stream_pair_setup(void **state);

/* The same, but the factory will be given NULL options. */
int stream_pair_setup_null_opts(void **state);

/* cmocka teardown: closes the peer, runs the loop 20 ms, frees the factory, loop and pair. */
int stream_pair_teardown(void **state);

/*
 * Makes the pair and runs body as the handler of our end, at most 5 s (then the handlers are
 * cancelled and the test fails: "the test body hung"), then 10 ms more; returns its result.
 */
int stream_pair_run(struct stream_pair *p, stream_pair_body *body);

#endif
