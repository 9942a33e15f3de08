/* SPDX-License-Identifier: MIT */
/* coro.c: coroutine stacks (guard pages, the per-loop pool), first entry, Valgrind and ASan. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "coro/coro.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define HAVE_VALGRIND 1
#endif
#endif

#ifdef WEFT_SANITIZE
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102      /* Linux 6.13 */
#endif

#ifndef MAP_STACK
#define MAP_STACK 0
#endif

/*
 * Stacks of the default size are mapped this many at a time. With
 * MADV_GUARD_INSTALL the guard pages live inside one mapping, so a chunk costs
 * one entry of vm.max_map_count (65530 by default) however many stacks it
 * holds. Older kernels fall back to mprotect(PROT_NONE), which splits the
 * mapping: two map entries per stack, so about 32,000 tasks per process.
 */
#define CHUNK_STACKS 16

static int guard_mode;      /* 0 unknown, 1 madvise, 2 mprotect */

static size_t
page_size(void)
{
    static size_t ps;

    if (ps == 0)
        ps = (size_t)sysconf(_SC_PAGESIZE);
    return ps;
}

size_t
weft__stack_default_size(void)
{
#ifdef WEFT_SANITIZE
    return 256 * 1024;
#else
    return 64 * 1024;
#endif
}

bool
weft__stack_guard_madvise(void)
{
    return guard_mode == 1;
}

static int
guard(void *page)
{
    size_t ps = page_size();

    if (guard_mode != 2) {
        if (madvise(page, ps, MADV_GUARD_INSTALL) == 0) {
            guard_mode = 1;
            return 0;
        }
        if (errno != EINVAL || guard_mode == 1)
            return -1;
        guard_mode = 2;     /* the kernel predates guard regions */
    }
    return mprotect(page, ps, PROT_NONE);
}

/* Map n stacks of size bytes (page multiple), each above its own guard page. */
static struct weft__stack *
map_stacks(size_t size, size_t n)
{
    size_t ps = page_size(), span = size + ps;
    struct weft__stack *list = NULL;
    char *map;
    int err;

    map = mmap(NULL, span * n, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (map == MAP_FAILED)
        return NULL;
    for (size_t i = n; i-- > 0;) {
        struct weft__stack *st = malloc(sizeof(*st));

        if (st == NULL || guard(map + i * span) < 0) {
            err = st ? errno : ENOMEM;
            free(st);
            goto fail;
        }
        st->lo = map + i * span + ps;
        st->size = size;
        st->next = list;
#ifdef HAVE_VALGRIND
        st->vg_id = VALGRIND_STACK_REGISTER(st->lo, (char *)st->lo + size);
#else
        st->vg_id = 0;
#endif
        list = st;
    }
    return list;

fail:
    while (list != NULL) {
        struct weft__stack *next = list->next;
#ifdef HAVE_VALGRIND
        VALGRIND_STACK_DEREGISTER(list->vg_id);
#endif
        free(list);
        list = next;
    }
    munmap(map, span * n);
    errno = err;
    return NULL;
}

static void
unmap_stack(struct weft__stack *st)
{
#ifdef HAVE_VALGRIND
    VALGRIND_STACK_DEREGISTER(st->vg_id);
#endif
    munmap((char *)st->lo - page_size(), st->size + page_size());
    free(st);
}

struct weft__stack *
weft__stack_get(struct weft__stack_pool *pool, size_t size)
{
    size_t ps = page_size(), def = weft__stack_default_size();
    struct weft__stack **pp, *st;

    if (size == 0)
        size = def;
    if (size < 2 * ps)
        size = 2 * ps;
    size = (size + ps - 1) & ~(ps - 1);
    for (pp = &pool->free; (st = *pp) != NULL; pp = &st->next) {
        if (st->size == size) {
            *pp = st->next;
            pool->nfree--;
            st->next = NULL;
            return st;
        }
    }
    /* A chunk only when the pool can keep the spares; one stack otherwise. */
    st = map_stacks(size, size == def && pool->max >= CHUNK_STACKS ? CHUNK_STACKS : 1);
    if (st == NULL)
        return NULL;
    while (st->next != NULL) {
        struct weft__stack *spare = st->next;

        st->next = spare->next;
        spare->next = pool->free;
        pool->free = spare;
        pool->nfree++;
    }
    return st;
}

void
weft__stack_put(struct weft__stack_pool *pool, struct weft__stack *st)
{
    if (st == NULL)
        return;
#ifdef WEFT_SANITIZE
    /* Frames abandoned on this stack leave their redzones poisoned. */
    __asan_unpoison_memory_region(st->lo, st->size);
#endif
    if (pool->nfree >= pool->max) {
        unmap_stack(st);
        return;
    }
    st->next = pool->free;
    pool->free = st;
    pool->nfree++;
}

void
weft__stack_pool_clear(struct weft__stack_pool *pool)
{
    while (pool->free != NULL) {
        struct weft__stack *st = pool->free;

        pool->free = st->next;
        unmap_stack(st);
    }
    pool->nfree = 0;
}

#ifdef WEFT__CORO_ASM
void weft__coro_trampoline(void);

/*
 * The new stack is laid out as if weft__coro_switch had pushed a frame on it:
 * its ret goes to weft__coro_trampoline, which calls fn(arg) (x86-64: r12,
 * r13; AArch64: x19, x20) with the stack 16-byte aligned.
 */
void
weft__coro_ctx_init(struct weft__coro_ctx *ctx, void *lo, size_t size,
                    weft__coro_entry_fn *fn, void *arg)
{
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)top;

#if defined(__x86_64__)
    sp[-1] = (uint64_t)(uintptr_t)weft__coro_trampoline;  /* return address */
    sp[-2] = 0;                                         /* rbp: ends backtraces */
    sp[-3] = 0;                                         /* rbx */
    sp[-4] = (uint64_t)(uintptr_t)fn;                   /* r12 */
    sp[-5] = (uint64_t)(uintptr_t)arg;                  /* r13 */
    sp[-6] = 0;                                         /* r14 */
    sp[-7] = 0;                                         /* r15 */
    sp[-8] = 0x1f80 | ((uint64_t)0x037f << 32);         /* MXCSR, x87 CW defaults */
    ctx->sp = &sp[-8];
#else
    sp -= 20;                                           /* the 160-byte frame */
    memset(sp, 0, 160);
    sp[0] = (uint64_t)(uintptr_t)fn;                    /* x19 */
    sp[1] = (uint64_t)(uintptr_t)arg;                   /* x20 */
    sp[11] = (uint64_t)(uintptr_t)weft__coro_trampoline; /* x30 */
    ctx->sp = sp;
#endif
}
#endif

/*
 * ASan must be told about each switch (start before, finish after) or it
 * takes the new stack for an overflow of the old; whoever resumes learns the
 * bounds of the context it left from finish, so the thread's own stack needs
 * no discovery. A coroutine leaving for good passes NULL to free its fake stack.
 */
static __thread struct weft__coro *switching_from;

static void
coro_first_entry(void *p)
{
    struct weft__coro *co = p;

#ifdef WEFT_SANITIZE
    __sanitizer_finish_switch_fiber(NULL, &switching_from->asan_lo, &switching_from->asan_size);
#endif
    co->entry(co->entry_arg);
    abort();        /* an entry ends with weft__coro_exit() */
}

void
weft__coro_init(struct weft__coro *co, weft__coro_entry_fn *fn, void *arg)
{
    co->entry = fn;
    co->entry_arg = arg;
    co->asan_lo = co->stack->lo;
    co->asan_size = co->stack->size;
    co->asan_fake = NULL;
    weft__coro_ctx_init(&co->ctx, co->stack->lo, co->stack->size, coro_first_entry, co);
}

void
weft__coro_transfer(struct weft__coro *from, struct weft__coro *to)
{
    switching_from = from;
#ifdef WEFT_SANITIZE
    __sanitizer_start_switch_fiber(&from->asan_fake, to->asan_lo, to->asan_size);
#endif
    weft__coro_switch(&from->ctx, &to->ctx);
#ifdef WEFT_SANITIZE
    __sanitizer_finish_switch_fiber(from->asan_fake, &switching_from->asan_lo,
                                    &switching_from->asan_size);
#endif
}

void
weft__coro_exit(struct weft__coro *from, struct weft__coro *to)
{
    switching_from = from;
#ifdef WEFT_SANITIZE
    __sanitizer_start_switch_fiber(NULL, to->asan_lo, to->asan_size);
#endif
    weft__coro_switch(&from->ctx, &to->ctx);
    abort();        /* nobody switches back to a finished coroutine */
}
