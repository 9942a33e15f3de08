/* SPDX-License-Identifier: MIT */
/* fuzz_http_path.c: libFuzzer target for the http plugin's path normaliser and header helpers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whatever comes in, a normalised path never climbs, never hides a separator
 * or a control byte, and always starts with '/'. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[256], *s;
    int n = http_path_normalise((const char *)data, size, out, sizeof(out));

    if (n > 0) {
        if ((size_t)n >= sizeof(out) || out[0] != '/' || strlen(out) != (size_t)n)
            abort();
        for (int i = 0; i < n; i++) {
            unsigned char c = (unsigned char)out[i];
            if (c < 0x20 || c == 0x7f || c == '\\')
                abort();
        }
        if (strstr(out, "//") || strstr(out, "/../") || strstr(out, "/./"))
            abort();
        size_t l = (size_t)n;
        if ((l >= 3 && !strcmp(out + l - 3, "/..")) || (l >= 2 && !strcmp(out + l - 2, "/.")))
            abort();
    } else if (n != HTTP_PATH_BAD && n != HTTP_PATH_FORBIDDEN) {
        abort();
    }
    /* the same bytes as header values */
    s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    uint64_t start, len;
    time_t t;
    if (http_range_parse(s, 12345, &start, &len) > 0 && (len == 0 || start + len > 12345))
        abort();
    (void)http_etag_match(s, "\"5f-d\"");
    (void)http_date_parse(s, &t);
    (void)http_path_has_dotfile(s);
    free(s);
    return 0;
}
