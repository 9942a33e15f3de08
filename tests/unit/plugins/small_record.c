/* SPDX-License-Identifier: MIT */
/* small_record.c: the right ABI number but a record shorter than weftd needs. */
#include <stdint.h>

#include <weft/plugin.h>

WEFT_PLUGIN_EXPORT const struct weft_plugin weft_plugin = {
    .abi = WEFT_PLUGIN_ABI,
    .size = 8,
    .name = "small_record",
};
