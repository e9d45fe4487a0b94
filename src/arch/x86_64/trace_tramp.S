/*
 * trace_tramp.S (x86-64, System V) - the tracer's hooks call their out-of-line half
 * through here (tracer.h, GORO__TRACE_CALL), so that a hook leaves every register as it
 * found it: the code around it then keeps its values in whatever registers it likes, and
 * a hook costs nothing but its branch while not tracing (no callee-saved registers pushed
 * to keep values across a call that never happens).
 *
 * In: on the stack above the return address, the C function and its three arguments
 * (pushed by the hook's inline asm from whatever registers the compiler had them in, so
 * that no value has to move into a fixed register on the hot path; the hook moved rsp
 * below the red zone of the code around it first, and pops them after). Saves every
 * general-purpose register a C function may clobber (rax, rcx, rdx, rsi, rdi, r8-r11),
 * aligns the stack for the call and restores them all. The vector registers are not
 * saved: the hook's asm names them as clobbered instead, which costs nothing where (as
 * almost everywhere in the runtime) none holds a value across the hook; saving them here
 * cost ~10 ns an event.
 */
    .text
    .globl goro__trace_tramp
    .hidden goro__trace_tramp
    .type goro__trace_tramp, @function
    .p2align 4
goro__trace_tramp:
    .cfi_startproc
#ifdef __CET__
    endbr64
#endif
    pushq %rbp
    .cfi_def_cfa_offset 16
    .cfi_offset rbp, -16
    movq %rsp, %rbp
    .cfi_def_cfa_register rbp
    pushq %rax
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    andq $-16, %rsp
    movq 24(%rbp), %rdi
    movq 32(%rbp), %rsi
    movq 40(%rbp), %rdx
    callq *16(%rbp)
    leaq -72(%rbp), %rsp
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rax
    popq %rbp
    .cfi_def_cfa rsp, 8
    ret
    .cfi_endproc
    .size goro__trace_tramp, .-goro__trace_tramp

    .section .note.GNU-stack,"",@progbits
