/* SPDX-License-Identifier: MIT */
/* fuzz_proxy.c: libFuzzer target for weft_proxy_parse (PROXY protocol v1 and v2 headers). */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <weft/proxy.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The family and length of a parsed address are consistent. */
static void
check_addr(const struct sockaddr_storage *ss, socklen_t len)
{
    if (ss->ss_family == AF_INET && len != sizeof(struct sockaddr_in))
        abort();
    if (ss->ss_family == AF_INET6 && len != sizeof(struct sockaddr_in6))
        abort();
    if (ss->ss_family != AF_INET && ss->ss_family != AF_INET6)
        abort();
}

/*
 * Beyond not crashing, the parser keeps its promises on every input:
 *  - a result is > 0 (a header no longer than the input), 0 (needs more) or -EPROTO;
 *  - it is a function of the bytes: a header found in a prefix is found the same in the
 *    whole input, a prefix refused means the whole is refused, and every proper prefix
 *    of a header is "needs more";
 *  - a header accepted under one version mask is accepted under WEFT_PROXY_ANY.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned masks[] = { WEFT_PROXY_V1, WEFT_PROXY_V2, WEFT_PROXY_ANY };
    struct weft_proxy_info info, again;
    int rc[3];

    for (int m = 0; m < 3; m++) {
        memset(&info, 0xa5, sizeof(info));
        rc[m] = weft_proxy_parse(data, size, masks[m], &info);
        if (rc[m] > 0) {
            if ((size_t)rc[m] > size)
                abort();
            if (info.version != 1 && info.version != 2)
                abort();
            if (!(masks[m] & (info.version == 1 ? WEFT_PROXY_V1 : WEFT_PROXY_V2)))
                abort();
            if (info.version == 1 && rc[m] > WEFT_PROXY_V1_MAX)
                abort();
            if (info.version == 2 && rc[m] > WEFT_PROXY_V2_MAX)
                abort();
            if (!info.local) {
                check_addr(&info.src, info.srclen);
                check_addr(&info.dst, info.dstlen);
                if (info.src.ss_family != info.dst.ss_family)
                    abort();
            }
            /* Exactly the header: the same answer without the client's bytes. */
            if (weft_proxy_parse(data, (size_t)rc[m], masks[m], &again) != rc[m])
                abort();
            if (again.version != info.version || again.local != info.local)
                abort();
            /* Any shorter prefix is incomplete, never an error or a shorter header. */
            size_t cuts[] = { 0, 1, (size_t)rc[m] / 2, (size_t)rc[m] - 1 };
            for (int i = 0; i < 4; i++)
                if (cuts[i] < (size_t)rc[m] &&
                    weft_proxy_parse(data, cuts[i], masks[m], &again) != 0)
                    abort();
        } else if (rc[m] != 0 && rc[m] != -EPROTO) {
            abort();
        } else if (rc[m] == -EPROTO && size > 1) {
            /* refused now: refused with more bytes too (checked from the other side:
             * a prefix that is refused implies the whole is refused) */
            int p = weft_proxy_parse(data, size / 2, masks[m], &again);
            if (p == -EPROTO || p == 0)
                ;
            else
                abort();    /* a header in the first half, but the whole is refused */
        }
        if (rc[m] == 0 && size > 0) {
            /* needs more: so does every prefix */
            if (weft_proxy_parse(data, size / 2, masks[m], &again) != 0)
                abort();
        }
    }
    if (rc[0] > 0 && rc[2] != rc[0])
        abort();
    if (rc[1] > 0 && rc[2] != rc[1])
        abort();
    return 0;
}
