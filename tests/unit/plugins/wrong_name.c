/* SPDX-License-Identifier: MIT */
/* wrong_name.c: a valid record whose name is not its file's: weftd must refuse it. */
#include <stdlib.h>

#include <weft/plugin.h>

static struct weft_protocol *
wrong_new(void *svc)
{
    (void)svc;
    return NULL;
}

WEFT_PLUGIN_EXPORT const struct weft_plugin weft_plugin = {
    .abi = WEFT_PLUGIN_ABI,
    .size = sizeof(struct weft_plugin),
    .name = "something_else",
    .version = "0",
    .protocol_new = wrong_new,
};
