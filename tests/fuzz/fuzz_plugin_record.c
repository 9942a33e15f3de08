/* SPDX-License-Identifier: MIT */
/* fuzz_plugin_record.c: libFuzzer target for weftd's plugin record check (daemon/plugin.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <weft/error.h>

#include "plugin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct weft_protocol *
fake_new(void *svc)
{
    (void)svc;
    return NULL;
}

static int
fake_client(struct weft_reader *r, struct weft_writer *w, void *svc)
{
    (void)r;
    (void)w;
    (void)svc;
    return 0;
}

/*
 * Input: a flags byte, abi and size (4 bytes each, native order), then the
 * record's name, a NUL, and the protocol name weftd expects. Flags: bit 0 the
 * real ABI, bit 1 the real size (so most inputs get past the first checks),
 * bits 2-3 the name (0: NULL, 1: the expected one, else the input's), bit 4
 * protocol_new set, bit 5 client set. The record lives in a buffer as large as
 * the struct (what a plugin of this ABI exports). The check must accept
 * exactly the records weftd can use, and explain every refusal naming the file.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct weft_plugin rec;
    const char *path = "/plugins/x.so";
    char err[512], *names, *recname, *proto;
    uint32_t abi, rsize;
    uint8_t flags;
    bool want;
    int rc;

    if (size < 9)
        return 0;
    flags = data[0];
    memcpy(&abi, data + 1, 4);
    memcpy(&rsize, data + 5, 4);
    if (flags & 1)
        abi = WEFT_PLUGIN_ABI;
    if (flags & 2)
        rsize = sizeof(struct weft_plugin);
    /* the rest: "recname\0proto" (proto may be absent: "") */
    names = calloc(1, size - 9 + 2);
    if (names == NULL)
        return 0;
    memcpy(names, data + 9, size - 9);
    recname = names;
    proto = names + strlen(names) + (strlen(names) < size - 9 ? 1 : 0);

    memset(&rec, 0, sizeof(rec));
    rec.abi = abi;
    rec.size = rsize;
    switch ((flags >> 2) & 3) {
    case 0: rec.name = NULL; break;
    case 1: rec.name = proto; break;
    default: rec.name = recname; break;
    }
    rec.protocol_new = (flags & 16) ? fake_new : NULL;
    rec.client = (flags & 32) ? fake_client : NULL;

    err[0] = '\0';
    rc = plugin_check_record(&rec, proto, path, err, sizeof(err));
    /* A record from before .reopen existed is still one weftd can use. */
    want = abi == WEFT_PLUGIN_ABI && rsize >= PLUGIN_RECORD_MIN_SIZE &&
           rec.name != NULL && strcmp(rec.name, proto) == 0 &&
           (rec.protocol_new != NULL || rec.client != NULL);
    if (want != (rc == 0))
        abort();
    if (rc != 0) {
        if (rc != -WEFT_EABI && rc != -WEFT_ECONFIG)
            abort();
        if (strncmp(err, path, strlen(path)) != 0)
            abort();
        /* a wrong ABI is named as such before anything else is read */
        if (abi != WEFT_PLUGIN_ABI && rc != -WEFT_EABI)
            abort();
    }
    free(names);
    return 0;
}
