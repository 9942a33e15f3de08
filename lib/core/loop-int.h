/* SPDX-License-Identifier: MIT */
/* loop-int.h: loop.c internals that tests reach; not installed. */
#ifndef WEFT_LOOP_INT_H
#define WEFT_LOOP_INT_H

/* Read nameservers from path instead of /etc/resolv.conf in loops' evdns
 * bases created from now on (NULL restores the default). For tests. */
void weft__loop_set_resolv_conf(const char *path);

#endif
