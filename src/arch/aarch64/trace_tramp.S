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
 * clobber (x0-x18) and the condition flags, and restores them all. The vector registers
 * are not saved: the hook's asm names them as clobbered instead, which costs nothing
 * where (as almost everywhere in the runtime) none holds a value across the hook.
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
    sub sp, sp, #(20 * 8)
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
    ldp x9, x0, [x29, #16]
    ldp x1, x2, [x29, #32]
    blr x9
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
