# GoroHttp.cmake - llhttp, and the HTTP request handling of examples/hello_server built as a
# library (goro_http_conn), for examples/, bench/ and tests/. Included from each of them;
# the targets are defined once, by whichever comes first.
#
# llhttp (the HTTP parser of Node.js) is not vendored: Debian's node-llhttp package ships
# its C sources in /usr/share/llhttp/ and its header in /usr/share/include/llhttp/, and they
# are compiled from there into the static library llhttp_sys, in llhttp's strict mode and
# with warnings off for those files only (they are generated code that is not ours to fix).
# Without them (node-llhttp not installed) hello_server and the HTTP tests are skipped with
# a warning: consumers test `if(TARGET goro_http_conn)`.
#
# GORO_FUZZ=ON (scripts/fuzz.sh, clang only) compiles both libraries with libFuzzer's
# coverage instrumentation, so the fuzzer (tests/fuzz_http.c) sees into the parser too.
include_guard(GLOBAL)

set(GORO_LLHTTP_SOURCE_DIR /usr/share/llhttp CACHE PATH
    "Directory with llhttp's api.c, http.c and llhttp.c (Debian: node-llhttp)")
set(GORO_LLHTTP_INCLUDE_DIR /usr/share/include/llhttp CACHE PATH
    "Directory with llhttp.h (Debian: node-llhttp)")
option(GORO_FUZZ "Build the libFuzzer targets (needs clang)" OFF)
option(GORO_REQUIRE_LLHTTP "Fail instead of skipping hello_server when llhttp is missing" OFF)

set(GORO_LLHTTP_SOURCES
    ${GORO_LLHTTP_SOURCE_DIR}/api.c ${GORO_LLHTTP_SOURCE_DIR}/http.c
    ${GORO_LLHTTP_SOURCE_DIR}/llhttp.c)
set(found ON)
foreach(f IN LISTS GORO_LLHTTP_SOURCES ITEMS ${GORO_LLHTTP_INCLUDE_DIR}/llhttp.h)
  if(NOT EXISTS ${f})
    set(found OFF)
  endif()
endforeach()

if(NOT found AND GORO_REQUIRE_LLHTTP)
  message(FATAL_ERROR "goro: llhttp not found (${GORO_LLHTTP_SOURCE_DIR}/llhttp.c, "
                      "${GORO_LLHTTP_INCLUDE_DIR}/llhttp.h); install Debian's node-llhttp "
                      "(scripts/setup.sh run)")
elseif(NOT found)
  message(WARNING "goro: llhttp not found (${GORO_LLHTTP_SOURCE_DIR}/llhttp.c, "
                  "${GORO_LLHTTP_INCLUDE_DIR}/llhttp.h): hello_server and the HTTP tests are "
                  "not built. Install Debian's node-llhttp (scripts/setup.sh run).")
  return()
endif()

if(GORO_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "goro: GORO_FUZZ needs clang (libFuzzer), not ${CMAKE_C_COMPILER_ID}")
  endif()
  set(GORO_FUZZ_COVERAGE -fsanitize=fuzzer-no-link)
else()
  set(GORO_FUZZ_COVERAGE "")
endif()

add_library(llhttp_sys STATIC ${GORO_LLHTTP_SOURCES})
target_include_directories(llhttp_sys SYSTEM PUBLIC ${GORO_LLHTTP_INCLUDE_DIR})
# Strict mode: CRLF line ends only, stricter tokens and versions, no data after a message
# that said Connection: close. http_conn.c adds the checks llhttp does not make.
target_compile_definitions(llhttp_sys PUBLIC LLHTTP_STRICT_MODE=1)
target_compile_options(llhttp_sys PRIVATE -w ${GORO_FUZZ_COVERAGE})

add_library(goro_http_conn STATIC ${PROJECT_SOURCE_DIR}/examples/http_conn.c)
target_include_directories(goro_http_conn PUBLIC ${PROJECT_SOURCE_DIR}/examples)
target_link_libraries(goro_http_conn PUBLIC llhttp_sys)
target_compile_options(goro_http_conn PRIVATE ${GORO_FUZZ_COVERAGE})
