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
 * register a C function may clobber (rax, rcx, rdx, rsi, rdi, r8-r11, xmm0-15), aligns
 * the stack for the call and restores them all.
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
    subq $256, %rsp
    movaps %xmm0, 0(%rsp)
    movaps %xmm1, 16(%rsp)
    movaps %xmm2, 32(%rsp)
    movaps %xmm3, 48(%rsp)
    movaps %xmm4, 64(%rsp)
    movaps %xmm5, 80(%rsp)
    movaps %xmm6, 96(%rsp)
    movaps %xmm7, 112(%rsp)
    movaps %xmm8, 128(%rsp)
    movaps %xmm9, 144(%rsp)
    movaps %xmm10, 160(%rsp)
    movaps %xmm11, 176(%rsp)
    movaps %xmm12, 192(%rsp)
    movaps %xmm13, 208(%rsp)
    movaps %xmm14, 224(%rsp)
    movaps %xmm15, 240(%rsp)
    movq 24(%rbp), %rdi
    movq 32(%rbp), %rsi
    movq 40(%rbp), %rdx
    callq *16(%rbp)
    movaps 0(%rsp), %xmm0
    movaps 16(%rsp), %xmm1
    movaps 32(%rsp), %xmm2
    movaps 48(%rsp), %xmm3
    movaps 64(%rsp), %xmm4
    movaps 80(%rsp), %xmm5
    movaps 96(%rsp), %xmm6
    movaps 112(%rsp), %xmm7
    movaps 128(%rsp), %xmm8
    movaps 144(%rsp), %xmm9
    movaps 160(%rsp), %xmm10
    movaps 176(%rsp), %xmm11
    movaps 192(%rsp), %xmm12
    movaps 208(%rsp), %xmm13
    movaps 224(%rsp), %xmm14
    movaps 240(%rsp), %xmm15
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
