/* SPDX-License-Identifier: MIT */
/* udp_echo.c: a UDP echo server on libweft's datagram endpoint (each datagram back to its sender). */
/*
 * udp_echo [-b BATCH] HOST PORT: serves until SIGTERM or SIGINT. BATCH is the
 * endpoint's recv_batch (datagrams per recvmmsg; default 16, 1 reads one per
 * readiness event), for bench/udp.sh's comparison.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <weft/weft.h>

struct echo {
    struct weft_datagram_protocol base;
    struct weft_datagram_transport *tr;
};

static int
echo_made(struct weft_datagram_protocol *p, struct weft_datagram_transport *tr)
{
    ((struct echo *)p)->tr = tr;
    return 0;
}

static int
echo_datagram(struct weft_datagram_protocol *p, const void *data, size_t len,
              const struct sockaddr *addr, socklen_t addrlen)
{
    return weft_datagram_sendto(((struct echo *)p)->tr, data, len, addr, addrlen);
}

static const struct weft_datagram_protocol_ops echo_ops = {
    .connection_made = echo_made,
    .datagram_received = echo_datagram,
};

static struct weft_datagram_protocol *
echo_factory(void *arg)
{
    struct echo *e = arg;

    e->base.ops = &echo_ops;
    return &e->base;
}

static void
on_signal(struct weft_loop *loop, int sig, void *arg)
{
    (void)sig;
    (void)arg;
    weft_loop_stop(loop);
}

int
main(int argc, char **argv)
{
    struct weft_datagram_options o = WEFT_DATAGRAM_OPTIONS_INIT;
    struct weft_loop *loop;
    struct echo e;
    int opt, rc;

    while ((opt = getopt(argc, argv, "b:")) != -1) {
        if (opt != 'b') {
            fprintf(stderr, "usage: udp_echo [-b BATCH] HOST PORT\n");
            return 2;
        }
        o.recv_batch = (unsigned)atoi(optarg);
    }
    if (argc - optind != 2) {
        fprintf(stderr, "usage: udp_echo [-b BATCH] HOST PORT\n");
        return 2;
    }
    loop = weft_loop_new();
    if (loop == NULL)
        return 1;
    rc = weft_create_datagram_endpoint(loop, echo_factory, &e, argv[optind],
                                       (uint16_t)atoi(argv[optind + 1]), NULL, 0, &o, NULL);
    if (rc < 0) {
        fprintf(stderr, "udp_echo: %s\n", weft_strerror(rc));
        return 1;
    }
    weft_loop_add_signal_handler(loop, SIGTERM, on_signal, NULL);
    weft_loop_add_signal_handler(loop, SIGINT, on_signal, NULL);
    weft_loop_run(loop);
    weft_datagram_abort(e.tr);
    weft_loop_run_once(loop);
    weft_loop_free(loop);
    return 0;
}
