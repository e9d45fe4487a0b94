# goro: build, test and benchmark entry points.
#
# Every target first runs scripts/setup.sh for the packages it needs, so on a fresh Debian
# machine `make <target>` is the only step. CMake does the real work; each flavour of the
# build lives in its own directory so they never invalidate each other:
#   build/          RelWithDebInfo (-O2 -g): run, bench, unit tests, Valgrind
#   build-asan/     ASan+UBSan, -O1, GORO_DEBUG
#   build-tsan/     TSan race build, -O1, GORO_DEBUG: the program instrumented, the runtime
#                   not; it reports races between goroutines (src/race.h)
#   build-tsan-rt/  TSan on everything, the runtime too, -O1, GORO_DEBUG: races inside
#                   the runtime (switches synchronise, so not those between goroutines)
#   build-aarch64/  cross-compiled for aarch64, tests run under qemu-user
#   build-pkg/      the libraries alone, prefix /usr: the Debian packages (make package)
#   build-docs/     the API reference and guide in HTML (make docs)

# 2 cores on the CI machine; more parallel tests than cores makes timing tests flaky.
JOBS ?= 2
# cmake --build runs make underneath; without this every line says which dir it is in.
MAKEFLAGS += --no-print-directory
export JOBS

SETUP := bash scripts/setup.sh
RUN_TESTS := bash scripts/run_tests.sh
# A test tree that registers nothing is a broken test tree, not a pass.
CTEST_ARGS := --no-tests=error

SANITIZER_BUILD := -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-O1 -g"
ASAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
TSAN_ENV := TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
AARCH64_BUILD := -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DCMAKE_TOOLCHAIN_FILE=$(CURDIR)/cmake/aarch64-linux-gnu.cmake

# $(call configure_build,DIR,CMAKE ARGS): re-running configure each time is cheap and
# picks up option changes; the build then only recompiles what changed.
# GORO_REQUIRE_LLHTTP: the set-up installed llhttp, so its absence is an error here, not a
# reason to build (and test) without hello_server.
define configure_build
	cmake -S . -B $(1) -DGORO_REQUIRE_LLHTTP=ON $(2)
	cmake --build $(1) -j$(JOBS)
endef

# The flavours are run one after another; each already uses both cores.
.NOTPARALLEL:

.PHONY: all build run bench bench-http test test-unit test-asan test-tsan test-valgrind \
	test-aarch64 test-fuzz format clean help setup-run setup-test setup-bench setup-bench-http setup-format \
	install uninstall package docs abi-dump test-install test-package test-docs setup-pkg

all: build

help:
	@echo "make run           build and run examples/pi, then hello_server under loadgen"
	@echo "make test          all test suites: unit, asan, tsan, valgrind, aarch64, fuzz,"
	@echo "                   install, package, docs"
	@echo "make test-unit     ctest in build/ (without the Valgrind runs)"
	@echo "make test-asan     ASan+UBSan build and its tests (build-asan/)"
	@echo "make test-tsan     both TSan builds and their tests (build-tsan/, build-tsan-rt/)"
	@echo "make test-valgrind tests labelled 'valgrind', run under Valgrind (build/)"
	@echo "make test-aarch64  aarch64 cross build, tests under qemu (build-aarch64/)"
	@echo "make test-fuzz     libFuzzer on the HTTP request handling, FUZZ_SECONDS (60)"
	@echo "make install       install the library, goro.h, goro.pc and the CMake package"
	@echo "                   into PREFIX (/usr/local), under DESTDIR if set"
	@echo "make uninstall     remove what make install installed"
	@echo "make package       Debian packages libgoro1 and libgoro-dev (build-pkg/packages/)"
	@echo "make docs          API reference and guide in HTML (build-docs/html/index.html)"
	@echo "make test-install  install into a temporary prefix, build outside programs against it,"
	@echo "                   check the exported symbols and the ABI (abidiff against abi/)"
	@echo "make test-package  build the Debian packages, check them, build against their contents"
	@echo "make test-docs     build the docs; fail on an undocumented public symbol; screenshot"
	@echo "make abi-dump      write abi/libgoro-<release>.<arch>.abi (when releasing)"
	@echo "make bench         build and run scripts/bench.sh"
	@echo "make bench-http    hello_server vs Go net/http vs nginx, echo vs Go (scripts/bench_http.sh)"
	@echo "make format        clang-format -i the sources"
	@echo "make clean         remove all build directories"

setup-run setup-test setup-bench setup-bench-http setup-format setup-pkg:
	@$(SETUP) $(@:setup-%=%)

build: setup-run
	$(call configure_build,build,-DCMAKE_BUILD_TYPE=RelWithDebInfo)

run: build
	@test -x build/examples/pi || { \
		echo "error: build/examples/pi was not built (is there an examples/CMakeLists.txt with a 'pi' target?)" >&2; \
		exit 1; }
	bash scripts/run.sh build

bench: setup-bench build
	@test -f scripts/bench.sh || { echo "error: scripts/bench.sh does not exist" >&2; exit 1; }
	bash scripts/bench.sh

bench-http: setup-bench-http build
	bash scripts/bench_http.sh build

test: test-unit test-asan test-tsan test-valgrind test-aarch64 test-fuzz test-install \
	test-package test-docs
	@echo "all test suites passed"

# libFuzzer on hello_server's request handling, for a bounded time (FUZZ_SECONDS).
FUZZ_SECONDS ?= 60
test-fuzz: setup-test
	bash scripts/fuzz.sh $(FUZZ_SECONDS)

test-unit: setup-test build
	$(RUN_TESTS) build $(CTEST_ARGS) -LE memcheck

test-asan: setup-test
	$(call configure_build,build-asan,$(SANITIZER_BUILD) -DGORO_SANITIZE=address)
	$(ASAN_ENV) $(RUN_TESTS) build-asan $(CTEST_ARGS)

# The race build first (races in the tests' own use of goroutines), then the runtime's.
test-tsan: setup-test
	$(call configure_build,build-tsan,$(SANITIZER_BUILD) -DGORO_SANITIZE=race)
	$(TSAN_ENV) $(RUN_TESTS) build-tsan $(CTEST_ARGS)
	$(call configure_build,build-tsan-rt,$(SANITIZER_BUILD) -DGORO_SANITIZE=thread)
	$(TSAN_ENV) $(RUN_TESTS) build-tsan-rt $(CTEST_ARGS)

# The <name>.memcheck tests that goro_add_test(... VALGRIND) registers; they run the
# binaries of build/ under valgrind with GORO_MAXPROCS=2 and fail on any error.
test-valgrind: setup-test build
	$(RUN_TESTS) build $(CTEST_ARGS) -L memcheck

test-aarch64: setup-test
	$(call configure_build,build-aarch64,$(AARCH64_BUILD))
	$(RUN_TESTS) build-aarch64 $(CTEST_ARGS)

# ---------------------------------------------------------------- installing and packaging

PREFIX ?= /usr/local
# build/ was configured without a prefix; cmake --install takes it now, and goro.pc is
# written with it then. A real install (no DESTDIR) into the system refreshes the
# dynamic linker's cache, or a program linked to libgoro.so.N would not find it.
install: build
	DESTDIR="$(DESTDIR)" cmake --install build --prefix "$(PREFIX)"
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" -eq 0 ] && command -v ldconfig >/dev/null; then \
		echo "ldconfig"; ldconfig; fi

# Removes what the last `make install` from build/ installed (CMake's install manifest).
uninstall:
	@test -f build/install_manifest.txt || { echo "error: no build/install_manifest.txt: nothing installed from build/" >&2; exit 1; }
	xargs rm -f < build/install_manifest.txt
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" -eq 0 ] && command -v ldconfig >/dev/null; then \
		echo "ldconfig"; ldconfig; fi

# The packages come from their own build: the libraries alone, installed under /usr with
# the multiarch library directory (lib/x86_64-linux-gnu).
PKG_BUILD := -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr -DGORO_LIBRARY_ONLY=ON
package: setup-pkg
	cmake -S . -B build-pkg $(PKG_BUILD)
	cmake --build build-pkg -j$(JOBS)
	cd build-pkg && cpack -G DEB -B $(CURDIR)/build-pkg/packages

docs: setup-pkg
	bash scripts/docs.sh build-docs

abi-dump: setup-pkg build
	bash scripts/check_abi.sh --dump build/libgoro.so

test-install: setup-test setup-pkg build
	bash scripts/test_install.sh build

test-package: setup-test setup-pkg package
	bash scripts/test_package.sh build-pkg

test-docs: setup-pkg docs
	bash scripts/test_docs.sh build-docs

FORMAT_FILES = $(shell find include src tests bench examples -name '*.[ch]' 2>/dev/null) \
	$(wildcard *.c *.h)

format: setup-format
	clang-format -i $(FORMAT_FILES)

clean:
	rm -rf build build-asan build-tsan build-tsan-rt build-aarch64 build-fuzz build-pkg build-docs
