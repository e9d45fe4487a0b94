#!/usr/bin/env bash
# scripts/run_tests.sh BUILD_DIR [ctest args...]
#
# Runs ctest in BUILD_DIR (-j$JOBS, default 2, output of failures shown). For a TSan build
# it first checks that TSan can start at all: gcc 12's TSan dies with "unexpected memory
# mapping" on kernels with high mmap ASLR entropy (vm.mmap_rnd_bits > 28), so if a trivial
# TSan program fails but works with ASLR off, the tests are run under `setarch -R`.
set -euo pipefail

dir=${1:?usage: $0 BUILD_DIR [ctest args...]}
shift
cache=$dir/CMakeCache.txt
[ -f "$cache" ] || { echo "run_tests.sh: $dir is not a configured build directory" >&2; exit 2; }

cache_get() { sed -n "s/^$1:[A-Z]*=//p" "$cache" | head -n1; }

wrap=()
case $(cache_get GORO_SANITIZE) in thread | race) tsan=1 ;; *) tsan=0 ;; esac
if [ "$tsan" = 1 ]; then
    cc=$(cache_get CMAKE_C_COMPILER)
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    cat >"$tmp/probe.c" <<'EOF'
#include <pthread.h>
static int n;
static void *run(void *arg) { (void)arg; __atomic_fetch_add(&n, 1, __ATOMIC_SEQ_CST); return 0; }
int main(void) { pthread_t t; pthread_create(&t, 0, run, 0); pthread_join(t, 0); return n != 1; }
EOF
    "$cc" -fsanitize=thread -pthread "$tmp/probe.c" -o "$tmp/probe"
    if ! "$tmp/probe" >"$tmp/out" 2>&1; then
        if setarch "$(uname -m)" -R "$tmp/probe" >/dev/null 2>&1; then
            echo "run_tests.sh: TSan cannot start with ASLR on here ($(head -n1 "$tmp/out"));" \
                "running the tests with ASLR off (setarch -R)."
            wrap=(setarch "$(uname -m)" -R)
        else
            echo "run_tests.sh: TSan does not work on this machine, even with ASLR off:" >&2
            cat "$tmp/out" >&2
            echo "run_tests.sh: try 'sysctl vm.mmap_rnd_bits=28' (as root)." >&2
            exit 1
        fi
    fi
fi

cd "$dir"
echo "+ (cd $dir && ${wrap[*]:+${wrap[*]} }ctest --output-on-failure -j${JOBS:-2} $*)"
"${wrap[@]}" ctest --output-on-failure -j"${JOBS:-2}" "$@"
