/* SPDX-License-Identifier: MIT */
/* coro.h: stackful coroutines inside libweft: contexts, the stack switch, the stack pool. */
#ifndef WEFT_CORO_H
#define WEFT_CORO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * x86-64 and AArch64 switch with lib/coro_<arch>.S: every callee-saved register
 * is pushed on the stack being left, so a context is one saved stack pointer.
 * Elsewhere (or with -DWEFT_CORO_UCONTEXT) lib/coro/coro_ucontext.c uses swapcontext.
 */
#if (defined(__x86_64__) || defined(__aarch64__)) && !defined(WEFT_CORO_UCONTEXT)
#define WEFT__CORO_ASM 1
struct weft__coro_ctx {
    void *sp;
};
#else
#include <ucontext.h>
struct weft__coro_ctx {
    ucontext_t uc;
};
#endif

/* A stack: usable memory [lo, lo + size), with a PROT_NONE guard page below lo. */
struct weft__stack {
    struct weft__stack *next;   /* in the pool's free list */
    void *lo;
    size_t size;
    unsigned vg_id;             /* Valgrind's stack id */
};

/* A per-loop cache of stacks, so starting a task does not cost an mmap. */
struct weft__stack_pool {
    struct weft__stack *free;
    size_t nfree;
    size_t max;                 /* stacks kept when released; more are unmapped */
};

/* A coroutine, or the loop's own thread stack (stack NULL) it switches back to. */
struct weft__coro {
    struct weft__coro_ctx ctx;
    struct weft__stack *stack;
    const void *asan_lo;        /* bounds told to ASan's fiber hooks */
    size_t asan_size;
    void *asan_fake;
    void (*entry)(void *arg);
    void *entry_arg;
};

/* The entry of a coroutine: must never return; it ends with weft__coro_exit(). */
typedef void weft__coro_entry_fn(void *arg);

/* Save the callee-saved registers in from, load those of to: lib/coro_<arch>.S. */
void weft__coro_switch(struct weft__coro_ctx *from, struct weft__coro_ctx *to);

/* Prepare ctx to run fn(arg) on [lo, lo + size) at its first switch. */
void weft__coro_ctx_init(struct weft__coro_ctx *ctx, void *lo, size_t size,
                         weft__coro_entry_fn *fn, void *arg);

/* Default stack size (64 KiB; 256 KiB under WEFT_SANITIZE, whose frames are larger). */
size_t weft__stack_default_size(void);

/* A stack of at least size bytes (0 = default) from the pool or a new mapping;
 * NULL with errno set (ENOMEM, or the kernel's mmap/mprotect error). */
struct weft__stack *weft__stack_get(struct weft__stack_pool *pool, size_t size);

/* Give a stack back: cached while the pool has room, unmapped otherwise. */
void weft__stack_put(struct weft__stack_pool *pool, struct weft__stack *st);

/* Unmap every cached stack. */
void weft__stack_pool_clear(struct weft__stack_pool *pool);

/* True if guard pages are installed with MADV_GUARD_INSTALL (one mapping for many). */
bool weft__stack_guard_madvise(void);

/* Set up co to run fn(arg) on its stack (co->stack must be set). */
void weft__coro_init(struct weft__coro *co, weft__coro_entry_fn *fn, void *arg);

/* Switch from the running context to another; returns when switched back. */
void weft__coro_transfer(struct weft__coro *from, struct weft__coro *to);

/* Leave a finished coroutine for good (its stack may then be reused). */
__attribute__((noreturn)) void weft__coro_exit(struct weft__coro *from, struct weft__coro *to);

#endif
