/*
 * trace_tramp.S (aarch64, AAPCS64) - the tracer's hooks call their out-of-line half
 * through here (tracer.h, GORO__TRACE_CALL), so that a hook leaves every register but
 * the link register as it found it: the code around it then keeps its values in whatever
 * registers it likes, and a hook costs nothing but its branch while not tracing.
 *
 * In: at sp, the C function and its three arguments (stored by the hook's inline asm from
 * whatever registers the compiler had them in, so that no value has to move into a fixed
 * register on the hot path); x30 the return address (the hook's bl, which tells the
 * compiler x30 is clobbered). Saves every register a C function may
 * clobber (x0-x18, the whole of q0-q31, whose upper halves are never preserved), and the
 * condition flags, and restores them all.
 */
    .text
    .globl goro__trace_tramp
    .hidden goro__trace_tramp
    .type goro__trace_tramp, %function
    .p2align 4
goro__trace_tramp:
    .cfi_startproc
    stp x29, x30, [sp, #-16]!
    .cfi_def_cfa_offset 16
    .cfi_offset x29, -16
    .cfi_offset x30, -8
    mov x29, sp
    sub sp, sp, #(20 * 8 + 32 * 16)
    stp x0, x1, [sp, #0]
    stp x2, x3, [sp, #16]
    stp x4, x5, [sp, #32]
    stp x6, x7, [sp, #48]
    stp x8, x9, [sp, #64]
    stp x10, x11, [sp, #80]
    stp x12, x13, [sp, #96]
    stp x14, x15, [sp, #112]
    stp x16, x17, [sp, #128]
    mrs x10, nzcv
    stp x18, x10, [sp, #144]
    add x10, sp, #160
    stp q0, q1, [x10, #0]
    stp q2, q3, [x10, #32]
    stp q4, q5, [x10, #64]
    stp q6, q7, [x10, #96]
    stp q8, q9, [x10, #128]
    stp q10, q11, [x10, #160]
    stp q12, q13, [x10, #192]
    stp q14, q15, [x10, #224]
    stp q16, q17, [x10, #256]
    stp q18, q19, [x10, #288]
    stp q20, q21, [x10, #320]
    stp q22, q23, [x10, #352]
    stp q24, q25, [x10, #384]
    stp q26, q27, [x10, #416]
    stp q28, q29, [x10, #448]
    stp q30, q31, [x10, #480]
    ldp x9, x0, [x29, #16]
    ldp x1, x2, [x29, #32]
    blr x9
    add x10, sp, #160
    ldp q0, q1, [x10, #0]
    ldp q2, q3, [x10, #32]
    ldp q4, q5, [x10, #64]
    ldp q6, q7, [x10, #96]
    ldp q8, q9, [x10, #128]
    ldp q10, q11, [x10, #160]
    ldp q12, q13, [x10, #192]
    ldp q14, q15, [x10, #224]
    ldp q16, q17, [x10, #256]
    ldp q18, q19, [x10, #288]
    ldp q20, q21, [x10, #320]
    ldp q22, q23, [x10, #352]
    ldp q24, q25, [x10, #384]
    ldp q26, q27, [x10, #416]
    ldp q28, q29, [x10, #448]
    ldp q30, q31, [x10, #480]
    ldp x18, x10, [sp, #144]
    msr nzcv, x10
    ldp x0, x1, [sp, #0]
    ldp x2, x3, [sp, #16]
    ldp x4, x5, [sp, #32]
    ldp x6, x7, [sp, #48]
    ldp x8, x9, [sp, #64]
    ldp x10, x11, [sp, #80]
    ldp x12, x13, [sp, #96]
    ldp x14, x15, [sp, #112]
    ldp x16, x17, [sp, #128]
    mov sp, x29
    ldp x29, x30, [sp], #16
    .cfi_def_cfa_offset 0
    .cfi_restore x29
    .cfi_restore x30
    ret
    .cfi_endproc
    .size goro__trace_tramp, .-goro__trace_tramp

    .section .note.GNU-stack,"",%progbits
