/* SPDX-License-Identifier: MIT */
/* no_symbol.c: a shared object that exports no weft_plugin: not a plugin. */
__attribute__((visibility("default"))) int not_a_weft_plugin = 42;
