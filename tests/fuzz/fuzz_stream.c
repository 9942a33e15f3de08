/* SPDX-License-Identifier: MIT */
/* fuzz_stream.c: libFuzzer target for the stream reader, fed in fuzzed chunks over a socket. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>

#include <weft/weft.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Input:
 *   byte 0    the reader's limit: 1 + (b & 63), or the default if b & 0x80
 *   byte 1    how many operations follow (b & 31)
 *   ops       one byte each: the low 3 bits pick readline, readuntil "\r\n",
 *             readuntil_any { "\n", "::" }, readexactly, read, next_line,
 *             read_buffer, readuntil "a"; the high 5 bits are the size argument
 *   the rest  chunks: a length byte, then that many bytes (the last may be short)
 * Each chunk is sent on its own and the loop runs until the reader's side has
 * taken it in, so the chunk boundaries are the input's. Then the peer sends
 * EOF and the handler runs its remaining operations.
 *
 * Besides not crashing, every byte a call returns must be the next bytes of
 * the stream, in order (until a readline / next_line over the limit drops an
 * unknown amount), a separator ends where the first one in the stream ends,
 * and every call returns at EOF.
 */

struct fz {
    const uint8_t *ops;
    size_t nops;
    uint8_t *stream;        /* every chunk's bytes, concatenated */
    size_t total, pos;      /* bytes sent; bytes returned so far */
    bool sync;              /* pos is exact */
    bool done;
};

static struct weft_loop *loop;
static struct evbuffer *scratch;

/* The call returned len bytes at b: they must be the next ones of the stream. */
static void
took(struct fz *f, const void *b, size_t len)
{
    if (!f->sync)
        return;
    if (f->pos + len > f->total || memcmp(b, f->stream + f->pos, len) != 0)
        abort();
    f->pos += len;
}

/* Where the first sep ends in the unread stream, or 0 if it is not there. */
static size_t
first_end(const struct fz *f, const char *sep, size_t seplen)
{
    const uint8_t *p = memmem(f->stream + f->pos, f->total - f->pos, sep, seplen);

    return p == NULL ? 0 : (size_t)(p - (f->stream + f->pos)) + seplen;
}

/* At EOF with an incomplete chunk: everything left has been consumed. */
static void
at_end(struct fz *f)
{
    if (f->sync && f->pos != f->total)
        f->pos = f->total;
}

static int
ops_run(struct fz *f, struct weft_reader *r)
{
    static char buf[300];       /* not on the handler's stack */
    static const struct iovec any[] = { { "\n", 1 }, { "::", 2 } };

    for (size_t i = 0; i < f->nops; i++) {
        size_t arg = (size_t)(f->ops[i] >> 3) + 1;     /* 1..32 */
        const char *line;
        size_t partial = 0, end;
        ssize_t n;

        switch (f->ops[i] & 7) {
        case 0:
            n = weft_reader_readline(r, buf, arg + 1);
            if (n > 0) {
                if ((size_t)n > arg || buf[n] != '\0')
                    abort();
                if (buf[n - 1] != '\n' && !weft_reader_at_eof(r))
                    abort();
                took(f, buf, (size_t)n);
            } else if (n == -WEFT_ELIMIT) {
                f->sync = false;
            } else if (n == 0) {
                if (f->sync && f->pos != f->total)
                    abort();
            }
            break;
        case 1:
        case 7: {
            const char *sep = (f->ops[i] & 7) == 1 ? "\r\n" : "a";
            size_t seplen = strlen(sep);

            end = f->sync ? first_end(f, sep, seplen) : 0;
            n = weft_reader_readuntil(r, buf, arg * 8, sep, seplen);
            if (n > 0) {
                if (f->sync && (size_t)n != end)
                    abort();
                if (memcmp(buf + n - seplen, sep, seplen) != 0 || buf[n] != '\0')
                    abort();
                took(f, buf, (size_t)n);
            } else if (n == -WEFT_EINCOMPLETE) {
                at_end(f);
            } else if (n != -WEFT_ELIMIT && n >= 0) {
                abort();
            }
            break;
        }
        case 2:
            n = weft_reader_readuntil_any(r, buf, arg * 8, any, 2, &partial);
            if (n > 0) {
                if (f->sync) {
                    size_t a = first_end(f, "\n", 1), b = first_end(f, "::", 2);
                    size_t want = a == 0 ? b : b == 0 ? a : a < b ? a : b;

                    if ((size_t)n != want)
                        abort();
                }
                took(f, buf, (size_t)n);
            } else if (n == -WEFT_EINCOMPLETE) {
                if (partial > arg * 8)
                    abort();
                at_end(f);
            }
            break;
        case 3:
            n = weft_reader_readexactly(r, buf, arg * 4, &partial);
            if (n >= 0) {
                if ((size_t)n != arg * 4)
                    abort();
                took(f, buf, (size_t)n);
            } else if (n == -WEFT_EINCOMPLETE) {
                if (partial >= arg * 4)
                    abort();
                took(f, buf, partial);
                if (f->sync && f->pos != f->total)
                    abort();
            }
            break;
        case 4:
            n = weft_reader_read(r, buf, arg);
            if (n > 0) {
                if ((size_t)n > arg)
                    abort();
                took(f, buf, (size_t)n);
            } else if (n == 0 && f->sync && f->pos != f->total) {
                abort();
            }
            break;
        case 5:
            n = weft_reader_next_line(r, &line);
            if (n > 0)
                took(f, line, (size_t)n);
            else if (n == -WEFT_ELIMIT)
                f->sync = false;
            break;
        case 6:
            n = weft_reader_read_buffer(r, scratch, arg * 2);
            if (n > 0) {
                if ((size_t)n > arg * 2 || evbuffer_get_length(scratch) != (size_t)n)
                    abort();
                took(f, evbuffer_pullup(scratch, -1), (size_t)n);
                evbuffer_drain(scratch, (size_t)n);
            }
            break;
        default:
            n = 0;
        }
        /* A connection error (not EOF): nothing more will come. */
        if (n < 0 && n != -WEFT_ELIMIT && n != -WEFT_EINCOMPLETE)
            return (int)n;
    }
    return 0;
}

static int
handler(struct weft_reader *r, struct weft_writer *w, void *arg)
{
    struct fz *f = arg;

    (void)w;
    (void)ops_run(f, r);        /* a connection error ends the calls: a normal ending */
    f->done = true;
    return 0;
}

/* Run the loop until the socket's bytes are in (or the reader stopped taking them). */
static void
settle(int fd, const struct fz *f)
{
    int quiet = 0;

    for (int i = 0; i < 2000 && quiet < 4; i++) {
        int pending = 0;

        weft_loop_run_once(loop);
        if (fd >= 0 && ioctl(fd, FIONREAD, &pending) < 0)
            pending = 0;
        quiet = pending == 0 || f->done ? quiet + 1 : 0;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct weft_stream_options opts = { 0 };
    struct weft_stream_factory *fac;
    struct fz f = { .sync = true };
    size_t *cuts, ncuts = 0, i;
    int sv[2];

    if (size < 2)
        return 0;
    if (loop == NULL) {
        signal(SIGPIPE, SIG_IGN);
        loop = weft_loop_new();
        scratch = evbuffer_new();
        if (loop == NULL || scratch == NULL)
            abort();
    }
    opts.limit = (data[0] & 0x80) ? 0 : 1 + (data[0] & 63);
    f.nops = data[1] & 31;
    if (f.nops > size - 2)
        f.nops = size - 2;
    f.ops = data + 2;
    data += 2 + f.nops;
    size -= 2 + f.nops;

    f.stream = malloc(size + 1);
    cuts = malloc((size + 1) * sizeof(*cuts));
    if (f.stream == NULL || cuts == NULL)
        abort();
    for (i = 0; i < size;) {
        size_t len = data[i++];

        if (len > size - i)
            len = size - i;
        memcpy(f.stream + f.total, data + i, len);
        f.total += len;
        cuts[ncuts++] = f.total;
        i += len;
    }

    fac = weft_stream_factory_new(handler, &f, &opts);
    if (fac == NULL || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    if (weft_connect_accepted_socket(loop, weft_stream_factory, fac, sv[0], NULL) < 0)
        abort();
    for (i = 0; i < ncuts; i++) {
        size_t from = i == 0 ? 0 : cuts[i - 1];

        /* At most 4 KiB of input: a unix socket's buffer takes it all, unless the
         * handler is done and the connection closed already. */
        if (f.done)
            break;
        if (cuts[i] > from &&
            send(sv[1], f.stream + from, cuts[i] - from, MSG_NOSIGNAL) != (ssize_t)(cuts[i] - from))
            abort();
        settle(sv[0], &f);
    }
    shutdown(sv[1], SHUT_WR);
    for (i = 0; i < 100000 && !f.done; i++)
        weft_loop_run_once(loop);
    if (!f.done)
        abort();                /* a read that never returned at EOF */
    close(sv[1]);
    /* the handler returned: the connection closes and its memory goes */
    for (i = 0; i < 100000 && weft_stream_handler_count(loop) > 0; i++)
        weft_loop_run_once(loop);
    for (i = 0; i < 4; i++)
        weft_loop_run_once(loop);
    weft_stream_factory_free(fac);
    free(cuts);
    free(f.stream);
    return 0;
}
