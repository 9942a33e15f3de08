/* SPDX-License-Identifier: MIT */
/* bad_abi.c: a plugin built for plugin ABI 7, which weftd must refuse before reading more. */
#include <stdint.h>

/* Only the ABI number is where weftd looks first; the rest is deliberately garbage. */
struct future_plugin {
    uint32_t abi;
    uint32_t size;
    const char *junk[3];
};

__attribute__((visibility("default"))) const struct future_plugin weft_plugin = {
    .abi = 7,
    .size = 3,
    .junk = { (const char *)1, (const char *)2, (const char *)3 },
};
