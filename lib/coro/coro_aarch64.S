/* SPDX-License-Identifier: MIT */
/* coro_aarch64.S: the stack switch for AArch64 (AAPCS64): x19-x29, lr, sp and d8-d15. */

/*
 * void weft__coro_switch(struct weft__coro_ctx *from, struct weft__coro_ctx *to)
 *
 * A 160-byte frame on the current stack holds x19-x28, fp, lr and d8-d15
 * (the low halves of v8-v15 are callee-saved; the rest are not). sp goes to
 * from->sp; to->sp is loaded and the same frame restored.
 */
    .text
    .globl  weft__coro_switch
    .hidden weft__coro_switch
    .type   weft__coro_switch, %function
    .p2align 4
weft__coro_switch:
    .cfi_startproc
    sub     sp, sp, #160
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    stp     d8,  d9,  [sp, #96]
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    mov     x9, sp
    str     x9, [x0]
    ldr     x9, [x1]
    mov     sp, x9
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    ldp     d8,  d9,  [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    add     sp, sp, #160
    ret
    .cfi_endproc
    .size   weft__coro_switch, .-weft__coro_switch

/*
 * First return of a new context lands here (see weft__coro_ctx_init in coro.c):
 * x19 holds the entry function, x20 its argument. The entry never returns.
 */
    .globl  weft__coro_trampoline
    .hidden weft__coro_trampoline
    .type   weft__coro_trampoline, %function
    .p2align 4
weft__coro_trampoline:
    .cfi_startproc
    .cfi_undefined x30
    mov     x0, x20
    blr     x19
    brk     #0
    .cfi_endproc
    .size   weft__coro_trampoline, .-weft__coro_trampoline

    .section .note.GNU-stack, "", %progbits
