/* SPDX-License-Identifier: MIT */
/* coro_x86_64.S: the stack switch for x86-64 System V: callee-saved registers, MXCSR, x87 CW. */

/*
 * void weft__coro_switch(struct weft__coro_ctx *from, struct weft__coro_ctx *to)
 *
 * Pushes rbp, rbx, r12-r15 and the MXCSR / x87 control words on the current
 * stack (the return address is already there), stores rsp in from->sp, loads
 * to->sp and pops the same frame. Everything else is caller-saved in the ABI.
 */
    .text
    .globl  weft__coro_switch
    .hidden weft__coro_switch
    .type   weft__coro_switch, @function
    .p2align 4
weft__coro_switch:
    .cfi_startproc
#ifdef __CET__
    endbr64
#endif
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    subq    $8, %rsp
    stmxcsr (%rsp)
    fnstcw  4(%rsp)
    movq    %rsp, (%rdi)
    movq    (%rsi), %rsp
    ldmxcsr (%rsp)
    fldcw   4(%rsp)
    addq    $8, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    ret
    .cfi_endproc
    .size   weft__coro_switch, .-weft__coro_switch

/*
 * First return of a new context lands here (see weft__coro_ctx_init in coro.c):
 * r12 holds the entry function, r13 its argument, rsp is 16-byte aligned.
 * The entry never returns.
 */
    .globl  weft__coro_trampoline
    .hidden weft__coro_trampoline
    .type   weft__coro_trampoline, @function
    .p2align 4
weft__coro_trampoline:
    .cfi_startproc
    .cfi_undefined rip
#ifdef __CET__
    endbr64
#endif
    movq    %r13, %rdi
    callq   *%r12
    ud2
    .cfi_endproc
    .size   weft__coro_trampoline, .-weft__coro_trampoline

    .section .note.GNU-stack, "", @progbits
