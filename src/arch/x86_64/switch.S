/*
 * switch.S (x86-64, System V) - the goroutine context switch.
 *
 * A switched-out context is its stack pointer; on the stack below it, from low to high:
 *   +0  MXCSR (4 bytes), the x87 control word (2 bytes), 2 unused bytes
 *   +8  r15, r14, r13, r12, rbx, rbp
 *   +56 the return address
 * These are the registers the ABI says a callee preserves; every other register is
 * already saved by the C caller of goro__ctx_switch. context.c builds the same frame on a
 * fresh stack, returning into goro__ctx_start.
 */
    .text

/* void *goro__ctx_switch(void **from_sp, void *to_sp, void *ret): returns, in the context
 * switched to, the ret its switcher passed (the M now running it). */
    .globl goro__ctx_switch
    .hidden goro__ctx_switch
    .type goro__ctx_switch, @function
    .p2align 4
goro__ctx_switch:
    .cfi_startproc
#ifdef __CET__
    endbr64
#endif
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rdx, %rax /* the return value */
    movq %rsp, (%rdi)
    movzwl 4(%rsp), %ecx /* the x87 control word just saved */
    movq %rsi, %rsp
    /* The FPU control words. MXCSR is loaded whether or not it differs: comparing first
     * costs more, as the compare waits for stmxcsr's store, and bench_yield took
     * 11.1-12.1 ns a yield with it against 9.8-10.4 without (pinned, interleaved).
     * Loading all of MXCSR gives a goroutine back its own exception flags as well as its
     * control bits. fldcw is the slow one (microcoded): bench_ctxswitch's switch took
     * 6.2 ns without the x87 pair against 6.9 ns with it (AMD EPYC, best of 8 alternating
     * sets of 40 batches), so fldcw is skipped when the word to load is the one in force,
     * the usual case: 6.6 ns. The branch is predicted, which keeps the compare's wait
     * for fnstcw's store off the path. */
    ldmxcsr (%rsp)
    cmpw 4(%rsp), %cx
    je 1f
    fldcw 4(%rsp)
1:
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .cfi_endproc
    .size goro__ctx_switch, .-goro__ctx_switch

/* The first frame of every goroutine: calls r12(r13) and never returns. The return address
 * column is undefined and rbp is zero, so unwinders and frame-pointer walks stop here. */
    .globl goro__ctx_start
    .hidden goro__ctx_start
    .type goro__ctx_start, @function
    .p2align 4
goro__ctx_start:
    .cfi_startproc
    .cfi_undefined rip
    xorl %ebp, %ebp
    movq %r13, %rdi
    callq *%r12
    ud2
    .cfi_endproc
    .size goro__ctx_start, .-goro__ctx_start

    .section .note.GNU-stack,"",@progbits
