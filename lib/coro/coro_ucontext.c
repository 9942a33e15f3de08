/* SPDX-License-Identifier: MIT */
/* coro_ucontext.c: the stack switch with getcontext/makecontext/swapcontext, for other CPUs. */
#include "coro/coro.h"

/* Compiles to nothing where an assembly switch is used (see coro.h). */
#ifndef WEFT__CORO_ASM
#include <stdlib.h>

/* makecontext passes int arguments only: the pointers travel as two halves. */
static void
ucontext_entry(unsigned fn_hi, unsigned fn_lo, unsigned arg_hi, unsigned arg_lo)
{
    uintptr_t fn = ((uintptr_t)fn_hi << 16 << 16) | fn_lo;
    uintptr_t arg = ((uintptr_t)arg_hi << 16 << 16) | arg_lo;

    ((weft__coro_entry_fn *)fn)((void *)arg);
    abort();        /* an entry never returns */
}

void
weft__coro_ctx_init(struct weft__coro_ctx *ctx, void *lo, size_t size,
                    weft__coro_entry_fn *fn, void *arg)
{
    uintptr_t f = (uintptr_t)fn, a = (uintptr_t)arg;

    getcontext(&ctx->uc);
    ctx->uc.uc_stack.ss_sp = lo;
    ctx->uc.uc_stack.ss_size = size;
    ctx->uc.uc_link = NULL;
    makecontext(&ctx->uc, (void (*)(void))ucontext_entry, 4,
                (unsigned)(f >> 16 >> 16), (unsigned)f, (unsigned)(a >> 16 >> 16), (unsigned)a);
}

void
weft__coro_switch(struct weft__coro_ctx *from, struct weft__coro_ctx *to)
{
    swapcontext(&from->uc, &to->uc);
}
#endif
