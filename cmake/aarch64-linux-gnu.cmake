# Cross-compiles for 64-bit ARM Linux with Debian's cross toolchain
# (gcc-aarch64-linux-gnu, libc6-dev-arm64-cross) and runs tests through qemu-user:
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(GORO_CROSS_TRIPLE aarch64-linux-gnu)
set(GORO_CROSS_ROOT /usr/${GORO_CROSS_TRIPLE})

set(CMAKE_C_COMPILER ${GORO_CROSS_TRIPLE}-gcc)
set(CMAKE_ASM_COMPILER ${GORO_CROSS_TRIPLE}-gcc)

# Debian's cross gcc already knows where its headers and libraries are (not a --sysroot
# layout), so only find_* calls are pointed at the target's tree.
set(CMAKE_FIND_ROOT_PATH ${GORO_CROSS_ROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# add_test(... COMMAND <target>) is prefixed with this, so ctest runs tests under qemu.
# -L: where qemu finds the target's dynamic loader and libc.
find_program(GORO_QEMU NAMES qemu-${CMAKE_SYSTEM_PROCESSOR} qemu-${CMAKE_SYSTEM_PROCESSOR}-static)
if(NOT GORO_QEMU)
  set(GORO_QEMU qemu-${CMAKE_SYSTEM_PROCESSOR})
endif()
set(CMAKE_CROSSCOMPILING_EMULATOR ${GORO_QEMU};-L;${GORO_CROSS_ROOT})
