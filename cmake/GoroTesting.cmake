# goro_add_test(NAME [SOURCES src...] [INTERNAL] [MAXPROCS_BOTH] [NETPOLL_BOTH] [VALGRIND]
#               [TIMEOUT seconds] [ENV k=v...] [LABELS label...])
#
# Builds executable test_<NAME> from <current dir>/<NAME>.c (or SOURCES) and registers it
# with CTest. It links goro_static, or goro_internal (src/ headers visible) with INTERNAL.
#  - TIMEOUT: seconds before CTest kills the test and counts it failed (default 60), times
#    a scale that is above 1 for sanitizer and emulated builds (GORO_TEST_TIMEOUT_SCALE).
#  - MAXPROCS_BOTH: two tests, <NAME>.p1 (GORO_MAXPROCS=1) and <NAME>.pall (unset: all CPUs).
#  - NETPOLL_BOTH: everything registered twice, once with GORO_NETPOLL=epoll under the
#    names above and once with GORO_NETPOLL=io_uring as <NAME>.uring[.p1|.pall|.memcheck],
#    label `uring`. GORO_TEST_NETPOLL tells the test which backend it must have run on
#    (tests/netutil.h, nu_check_netpoll); GORO_TEST_NETPOLL_STRICT=1, in native builds
#    unless GORO_TEST_REQUIRE_IO_URING is OFF and never under Valgrind, makes a fallback
#    from io_uring to epoll a failure instead of a printed note.
#  - VALGRIND: label `valgrind`, and in native builds without a sanitizer (GORO_MEMCHECK)
#    a second test <NAME>.memcheck, label `memcheck`, that runs it under Valgrind with
#    GORO_MAXPROCS=2 and fails on any Valgrind error or definite leak.
#    `ctest -LE memcheck` skips those, `ctest -L memcheck` runs only them.
#  - ENV: environment for every test registered here. Tests also get GORO_TEST_SCALE
#    (workload scale, see tests/testutil.h) below 1 in slow builds: GORO_TEST_SCALE,
#    GORO_VALGRIND_TEST_SCALE.
# When cross-compiling, CTest runs the tests through CMAKE_CROSSCOMPILING_EMULATOR (set by
# the toolchain file) because the test command is the target name.

set(GORO_TEST_TIMEOUT_SCALE "" CACHE STRING
    "Multiplier for test timeouts; empty: 3 for TSan and emulated builds, 2 for ASan, else 1")
if(GORO_TEST_TIMEOUT_SCALE)
  set(GORO_TIMEOUT_SCALE ${GORO_TEST_TIMEOUT_SCALE})
elseif(GORO_SANITIZE MATCHES "^(thread|race)$" OR CMAKE_CROSSCOMPILING)
  set(GORO_TIMEOUT_SCALE 3)
elseif(GORO_SANITIZE STREQUAL "address")
  set(GORO_TIMEOUT_SCALE 2)
else()
  set(GORO_TIMEOUT_SCALE 1)
endif()

# tests/testutil.h scales big workloads by $GORO_TEST_SCALE so slow builds stay in time.
set(GORO_TEST_SCALE "" CACHE STRING
    "GORO_TEST_SCALE for tests; empty: 0.25 for TSan and emulated builds, 0.5 for ASan, else unset")
set(GORO_VALGRIND_TEST_SCALE 0.1 CACHE STRING "GORO_TEST_SCALE for the memcheck tests")
if(NOT GORO_TEST_SCALE STREQUAL "")
  set(GORO_SCALE_ENV GORO_TEST_SCALE=${GORO_TEST_SCALE})
elseif(GORO_SANITIZE MATCHES "^(thread|race)$" OR CMAKE_CROSSCOMPILING)
  set(GORO_SCALE_ENV GORO_TEST_SCALE=0.25)
elseif(GORO_SANITIZE STREQUAL "address")
  set(GORO_SCALE_ENV GORO_TEST_SCALE=0.5)
else()
  set(GORO_SCALE_ENV "")
endif()

find_program(GORO_VALGRIND valgrind)
# AUTO is decided afresh at every configure, so a build/ first configured before valgrind
# was installed (make run on a fresh machine) gets its memcheck tests once it is.
set(GORO_MEMCHECK AUTO CACHE STRING
    "Register <name>.memcheck Valgrind runs for VALGRIND tests: AUTO, ON or OFF")
set_property(CACHE GORO_MEMCHECK PROPERTY STRINGS AUTO ON OFF)
if(GORO_MEMCHECK STREQUAL "AUTO")
  if(GORO_VALGRIND AND NOT CMAKE_CROSSCOMPILING AND GORO_SANITIZE STREQUAL "")
    set(GORO_MEMCHECK_ENABLED ON)
  else()
    set(GORO_MEMCHECK_ENABLED OFF)
  endif()
elseif(GORO_MEMCHECK)
  if(NOT GORO_VALGRIND)
    message(FATAL_ERROR "goro: GORO_MEMCHECK is ON but valgrind was not found")
  endif()
  set(GORO_MEMCHECK_ENABLED ON)
else()
  set(GORO_MEMCHECK_ENABLED OFF)
endif()
set(GORO_VALGRIND_TIMEOUT_SCALE 5 CACHE STRING "Extra timeout multiplier under Valgrind")
# --fair-sched: Valgrind runs one thread at a time; its default lock lets a spinning
# scheduler thread starve the others.
set(GORO_VALGRIND_OPTIONS
    --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
    --show-leak-kinds=definite --fair-sched=yes --num-callers=40
    CACHE STRING "Valgrind options for the memcheck tests")

# Native builds run on a kernel that has io_uring (5.17 or later for the backend's
# features); a test registered for io_uring fails there if the runtime fell back to epoll.
# Turn this off on a machine that disables io_uring (seccomp, kernel.io_uring_disabled).
option(GORO_TEST_REQUIRE_IO_URING
       "Fail the io_uring test variants when io_uring is unavailable (native builds)" ON)
if(GORO_TEST_REQUIRE_IO_URING AND NOT CMAKE_CROSSCOMPILING)
  set(GORO_URING_STRICT 1)
else()
  set(GORO_URING_STRICT 0)
endif()

function(goro_add_test NAME)
  cmake_parse_arguments(PARSE_ARGV 1 T "INTERNAL;MAXPROCS_BOTH;NETPOLL_BOTH;VALGRIND" "TIMEOUT"
                        "SOURCES;ENV;LABELS")
  if(T_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "goro_add_test(${NAME}): unknown arguments: ${T_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT T_SOURCES)
    set(T_SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/${NAME}.c)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 60)
  endif()
  math(EXPR timeout "${T_TIMEOUT} * ${GORO_TIMEOUT_SCALE}")

  set(exe test_${NAME})
  add_executable(${exe} ${T_SOURCES})
  if(T_INTERNAL)
    target_link_libraries(${exe} PRIVATE goro_internal)
  else()
    target_link_libraries(${exe} PRIVATE goro_static)
  endif()

  set(labels ${T_LABELS})
  if(T_VALGRIND)
    list(APPEND labels valgrind)
  endif()

  # One pass per netpoller backend with NETPOLL_BOTH: "" for epoll, ".uring" for io_uring.
  if(T_NETPOLL_BOTH)
    set(variants epoll uring)
  else()
    set(variants none)
  endif()
  foreach(variant ${variants})
    set(name ${NAME})
    set(vlabels ${labels})
    set(venv "")
    set(vg_env "")
    if(variant STREQUAL "epoll")
      set(venv GORO_NETPOLL=epoll GORO_TEST_NETPOLL=epoll)
      set(vg_env ${venv})
    elseif(variant STREQUAL "uring")
      set(name ${NAME}.uring)
      list(APPEND vlabels uring)
      set(venv GORO_NETPOLL=io_uring GORO_TEST_NETPOLL=io_uring
               GORO_TEST_NETPOLL_STRICT=${GORO_URING_STRICT})
      set(vg_env GORO_NETPOLL=io_uring GORO_TEST_NETPOLL=io_uring GORO_TEST_NETPOLL_STRICT=0)
    endif()

    # ENV comes last so a test can override the defaults.
    set(env ${GORO_SCALE_ENV} ${venv} ${T_ENV})
    if(T_MAXPROCS_BOTH)
      add_test(NAME ${name}.p1 COMMAND ${exe})
      set_tests_properties(${name}.p1 PROPERTIES ENVIRONMENT "GORO_MAXPROCS=1;${env}")
      add_test(NAME ${name}.pall COMMAND ${exe})
      # Don't let a GORO_MAXPROCS from the caller's shell turn .pall into another .p1.
      set_tests_properties(${name}.pall PROPERTIES
        ENVIRONMENT "${env}" ENVIRONMENT_MODIFICATION "GORO_MAXPROCS=unset:")
      set(tests ${name}.p1 ${name}.pall)
    else()
      add_test(NAME ${name} COMMAND ${exe})
      set_tests_properties(${name} PROPERTIES ENVIRONMENT "${env}")
      set(tests ${name})
    endif()
    set_tests_properties(${tests} PROPERTIES TIMEOUT ${timeout})
    if(vlabels)
      set_tests_properties(${tests} PROPERTIES LABELS "${vlabels}")
    endif()

    if(T_VALGRIND AND GORO_MEMCHECK_ENABLED)
      # A touch of a compacted stack faults, and the access runs again once the handler
      # put the stack back (src/compact.c, K6): Valgrind must deliver the signal with
      # every register up to date, not only SP/IP/FP (its default).
      set(vg_opts ${GORO_VALGRIND_OPTIONS} --vex-iropt-register-updates=allregs-at-mem-access)
      # Optional suppressions, kept with the tests.
      if(EXISTS ${PROJECT_SOURCE_DIR}/tests/valgrind.supp)
        list(APPEND vg_opts --suppressions=${PROJECT_SOURCE_DIR}/tests/valgrind.supp)
      endif()
      math(EXPR vg_timeout "${timeout} * ${GORO_VALGRIND_TIMEOUT_SCALE}")
      add_test(NAME ${name}.memcheck COMMAND ${GORO_VALGRIND} ${vg_opts} $<TARGET_FILE:${exe}>)
      set(vg_labels memcheck)
      if(variant STREQUAL "uring")
        list(APPEND vg_labels uring)
      endif()
      set_tests_properties(${name}.memcheck PROPERTIES
        ENVIRONMENT
          "GORO_MAXPROCS=2;GORO_TEST_SCALE=${GORO_VALGRIND_TEST_SCALE};${vg_env};${T_ENV}"
        TIMEOUT ${vg_timeout}
        LABELS "${vg_labels}")
    endif()
  endforeach()
endfunction()
