/*
 * atomic.h - the runtime's atomic operations, named for their memory ordering.
 *
 * Everything shared between threads goes through these wrappers (GCC/Clang __atomic
 * builtins on plain types, which ThreadSanitizer understands). The name says the ordering
 * so a reader never has to guess; a call site says in a comment which operation on the
 * other side it pairs with. Sequentially consistent operations (the _sc forms) are used
 * only where a store must be ordered before a later load of another location (the
 * StoreLoad edge of the no-lost-wakeup protocol, see sched.c).
 */
#ifndef GORO_ATOMIC_H
#define GORO_ATOMIC_H

#define goro__load_relaxed(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define goro__load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define goro__load_sc(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)

#define goro__store_relaxed(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define goro__store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define goro__store_sc(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)

/* Read-modify-write operations return the NEW value (add_fetch semantics). */
#define goro__add_relaxed(p, v) __atomic_add_fetch((p), (v), __ATOMIC_RELAXED)
#define goro__add_acqrel(p, v) __atomic_add_fetch((p), (v), __ATOMIC_ACQ_REL)
#define goro__add_sc(p, v) __atomic_add_fetch((p), (v), __ATOMIC_SEQ_CST)

#define goro__sub_release(p, v) __atomic_sub_fetch((p), (v), __ATOMIC_RELEASE)
#define goro__add_release(p, v) __atomic_add_fetch((p), (v), __ATOMIC_RELEASE)

#define goro__xchg_acqrel(p, v) __atomic_exchange_n((p), (v), __ATOMIC_ACQ_REL)

/* Compare-and-swap: *expected is updated with the current value on failure. */
#define goro__cas_acqrel(p, expected, desired)                                                     \
    __atomic_compare_exchange_n((p), (expected), (desired), 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)
#define goro__cas_release(p, expected, desired)                                                    \
    __atomic_compare_exchange_n((p), (expected), (desired), 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED)
#define goro__cas_sc(p, expected, desired)                                                         \
    __atomic_compare_exchange_n((p), (expected), (desired), 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)

/* A full fence: orders every earlier load and store before every later one.
 * ThreadSanitizer does not model fences (gcc warns), so its builds use a seq-cst
 * read-modify-write of one shared word instead: every such fence is then totally ordered
 * with every other, which is what the callers pair them for. */
#if defined(__SANITIZE_THREAD__)
extern unsigned goro__fence_word;
#define goro__fence_sc() ((void)__atomic_fetch_add(&goro__fence_word, 0, __ATOMIC_SEQ_CST))
#elif defined(__x86_64__)
/* On x86-64 a locked read-modify-write is a full barrier and costs a fraction of MFENCE
 * (which compilers emit for the C11 fence); Linux's smp_mb() does the same. */
#define goro__fence_sc() __asm__ volatile("lock orq $0, (%%rsp)" ::: "memory", "cc")
#else
#define goro__fence_sc() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#endif

/* A spin-wait hint to the CPU. */
static inline void goro__cpu_relax(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield" ::: "memory");
#endif
}

#endif
