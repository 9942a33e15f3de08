/* SPDX-License-Identifier: MIT */
/* fuzz_config.c: libFuzzer target for weftd's config parser (daemon/config.c over inih). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <weft/error.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Any text is parsed to a config that carries every error: the result is 0
 * exactly when no error was recorded, errors read in line order and name the
 * file, and in a config without errors each service has a protocol and a
 * listen address ("no service at all" is services.c's check), and plugin keys with their lines.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config *c = NULL;
    int rc = config_load_mem("fuzz.conf", (const char *)data, size, &c);

    if (rc == -ENOMEM) {
        config_free(c);
        return 0;
    }
    if (c == NULL || (rc != 0 && rc != -WEFT_ECONFIG))
        abort();
    if ((rc == 0) != (c->nerrors == 0))
        abort();
    for (size_t i = 0; i < c->nerrors; i++) {
        if (c->errors[i].msg == NULL || strncmp(c->errors[i].msg, "fuzz.conf", 9) != 0)
            abort();
        if (i > 0 && c->errors[i].line < c->errors[i - 1].line)
            abort();
    }
    for (size_t i = 0; i < c->nservices; i++) {
        const struct conf_service *s = c->services[i];

        if (s == NULL || s->name == NULL || s->line <= 0)
            abort();
        if (rc == 0 && (s->protocol == NULL || s->nlisten == 0))
            abort();
        for (size_t j = 0; j < s->nlisten; j++)
            if (s->listen[j].text == NULL || s->listen[j].addrlen == 0 ||
                s->listen[j].addrlen > sizeof(s->listen[j].addr))
                abort();
        for (size_t j = 0; j < s->nkeys; j++)
            if (s->keys[j].key == NULL || s->keys[j].value == NULL || s->keys[j].line <= 0 ||
                (j > 0 && s->keys[j].line <= s->keys[j - 1].line))
                abort();
    }
    if (c->g.workers < CONF_WORKERS_AUTO || c->g.workers > CONF_WORKERS_MAX)
        abort();
    config_free(c);
    return 0;
}
