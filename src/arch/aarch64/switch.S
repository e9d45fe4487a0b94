/*
 * switch.S (AArch64, AAPCS64) - the goroutine context switch.
 *
 * A switched-out context is its stack pointer; the 176 bytes above it hold, from low to
 * high: x19..x28, x29 (frame pointer), x30 (return address), d8..d15, FPCR.
 * These are the registers the ABI says a callee preserves. context.c builds the same
 * frame on a fresh stack, returning into goro__ctx_start.
 */
    .text

/* void *goro__ctx_switch(void **from_sp, void *to_sp, void *ret): returns, in the context
 * switched to, the ret its switcher passed (the M now running it). */
    .globl goro__ctx_switch
    .hidden goro__ctx_switch
    .type goro__ctx_switch, %function
    .p2align 4
goro__ctx_switch:
    .cfi_startproc
    sub sp, sp, #176
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    mrs x10, fpcr /* kept in x10 for the comparison below */
    str x10, [sp, #160]
    mov x9, sp
    stlr x9, [x0] /* release: the context above is saved before a waiter sees sp (P1) */
    mov sp, x1
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    /* Writing FPCR can be slow; it almost never differs between goroutines. Unlike
     * x86-64's stmxcsr, mrs puts it in a register, so the comparison costs nothing. */
    ldr x9, [sp, #160]
    cmp x9, x10
    b.eq 1f
    msr fpcr, x9
1:
    add sp, sp, #176
    mov x0, x2
    ret
    .cfi_endproc
    .size goro__ctx_switch, .-goro__ctx_switch

/* The first frame of every goroutine: calls x19(x20) and never returns. The return address
 * column is undefined and x29/x30 are zero, so unwinders and frame-pointer walks stop. */
    .globl goro__ctx_start
    .hidden goro__ctx_start
    .type goro__ctx_start, %function
    .p2align 4
goro__ctx_start:
    .cfi_startproc
    .cfi_undefined x30
    mov x29, #0
    mov x30, #0
    mov x0, x20
    blr x19
    brk #0
    .cfi_endproc
    .size goro__ctx_start, .-goro__ctx_start

    .section .note.GNU-stack,"",%progbits
