/*
 * version.c - the version of the library a program runs with.
 *
 * GORO_VERSION_STRING in goro.h is the version a program was compiled against;
 * goro_version() is the one of the libgoro it is running with, which differs when the
 * shared library was upgraded underneath the program (the same ABI version, a later
 * release). The numbers live only in goro.h; CMakeLists.txt reads them from there.
 */
#include <goro.h>

const char *goro_version(void) {
    return GORO_VERSION_STRING;
}
