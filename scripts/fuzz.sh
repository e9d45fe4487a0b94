#!/usr/bin/env bash
# scripts/fuzz.sh [seconds]   (default 60)
#
# Fuzzes hello_server's request handling (examples/http_conn.c, with llhttp) with libFuzzer:
# builds tests/fuzz_http.c with clang, ASan and UBSan in build-fuzz/ (GORO_FUZZ=ON), then
# runs it for the given time on the seed corpus tests/fuzz_corpus/. New inputs it finds go
# to build-fuzz/fuzz-corpus/ (the seeds are not modified); a crash leaves its input in
# build-fuzz/fuzz-artifacts/ and fails the script. FUZZ_JOBS (default 1) runs that many
# fuzzing processes in parallel.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
case $seconds in '' | *[!0-9]* | 0)
    echo "usage: $0 [seconds]" >&2
    exit 2
    ;;
esac
jobs=${FUZZ_JOBS:-1}
build=$root/build-fuzz

command -v clang >/dev/null 2>&1 || {
    echo "fuzz.sh: clang not found (scripts/setup.sh test installs it)" >&2
    exit 1
}
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DGORO_SANITIZE=address -DGORO_FUZZ=ON -DGORO_REQUIRE_LLHTTP=ON >/dev/null
cmake --build "$build" --target fuzz_http -j"${JOBS:-2}"

corpus=$build/fuzz-corpus
artifacts=$build/fuzz-artifacts
mkdir -p "$corpus" "$artifacts"
args=(-max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048
    -print_final_stats=1 -artifact_prefix="$artifacts/")
if [ "$jobs" -gt 1 ]; then
    # Parallel: libFuzzer writes each process's log to fuzz-<n>.log in the current dir.
    cd "$build"
    args+=(-jobs="$jobs" -workers="$jobs")
fi
echo "fuzzing for ${seconds}s: $build/tests/fuzz_http"
# The first corpus directory receives what the fuzzer finds; the seeds are only read.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$build/tests/fuzz_http" "${args[@]}" "$corpus" "$root/tests/fuzz_corpus"
