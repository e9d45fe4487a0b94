# GoroInstall.cmake - what `make install` (cmake --install) puts where, and the Debian
# packages CPack makes of it.
#
# Two install components, which are also the two Debian packages:
#   lib  libgoroN      libgoro.so.<release> and its SONAME link libgoro.so.N (N: the ABI
#                      version, GORO_SOVERSION)
#   dev  libgoro-dev   goro.h, libgoro.a, the libgoro.so link the linker looks for,
#                      goro.pc (pkg-config), the CMake package (find_package(goro CONFIG):
#                      goro::goro, goro::shared, goro::static), the gdb extension
#
# Every path is relative to the prefix, so one build installs anywhere: `cmake --install
# build --prefix P` (what `make install PREFIX=P` runs), with DESTDIR honoured. The CMake
# package finds itself from its own location. goro.pc, which cannot, is written at install
# time with the prefix actually installed to (below).
#
# Included from the top-level CMakeLists.txt after the library targets are defined.

include(CMakePackageConfigHelpers)

set(GORO_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/goro)

install(TARGETS goro_shared EXPORT goroTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT lib NAMELINK_COMPONENT dev)
install(TARGETS goro_static EXPORT goroTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
install(FILES ${PROJECT_SOURCE_DIR}/include/goro.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)

# ---------------------------------------------------------------- CMake package

install(EXPORT goroTargets NAMESPACE goro:: DESTINATION ${GORO_CMAKE_DIR} COMPONENT dev)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/goroConfig.cmake.in
  ${PROJECT_BINARY_DIR}/goroConfig.cmake INSTALL_DESTINATION ${GORO_CMAKE_DIR})
# 0.x releases may change the API at every minor release (the CHANGELOG says which did).
write_basic_package_version_file(${PROJECT_BINARY_DIR}/goroConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/goroConfig.cmake ${PROJECT_BINARY_DIR}/goroConfigVersion.cmake
  DESTINATION ${GORO_CMAKE_DIR} COMPONENT dev)

# ---------------------------------------------------------------- pkg-config
# The template is filled twice: now with everything but the prefix, then at install time
# with CMAKE_INSTALL_PREFIX as the install step sees it (cmake --install --prefix, or /usr
# for the packages), so the same build serves every prefix.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(GORO_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  set(GORO_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(GORO_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(GORO_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
# What a static link needs besides libgoro.a: libc and the threads library. -pthread is
# right with every glibc (since 2.34 the threads functions are in libc itself, which is why
# CMAKE_THREAD_LIBS_INIT is empty there). The shared library carries its own dependencies.
set(GORO_PC_LIBS_PRIVATE "-pthread")
set(GORO_PC_PREFIX "@GORO_PC_PREFIX@") # kept for the install-time pass
configure_file(${PROJECT_SOURCE_DIR}/cmake/goro.pc.in ${PROJECT_BINARY_DIR}/goro.pc.in @ONLY)
install(CODE "
  set(GORO_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  configure_file(\"${PROJECT_BINARY_DIR}/goro.pc.in\" \"${PROJECT_BINARY_DIR}/goro.pc\" @ONLY)
" COMPONENT dev)
install(FILES ${PROJECT_BINARY_DIR}/goro.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

# ---------------------------------------------------------------- gdb extension
# tools/gdb/goro.py: `source <prefix>/share/goro/gdb/goro.py` in gdb (a static program), and
# as <objfile>-gdb.py under gdb's auto-load directory, which gdb loads by itself for a
# program that uses the shared library (docs/DEBUGGING.md).
install(FILES ${PROJECT_SOURCE_DIR}/tools/gdb/goro.py
  DESTINATION ${CMAKE_INSTALL_DATADIR}/goro/gdb COMPONENT dev)
install(FILES ${PROJECT_SOURCE_DIR}/tools/gdb/goro.py
  DESTINATION ${CMAKE_INSTALL_DATADIR}/gdb/auto-load${CMAKE_INSTALL_FULL_LIBDIR}
  RENAME libgoro.so.${PROJECT_VERSION}-gdb.py COMPONENT dev)

# ---------------------------------------------------------------- Debian packages
# cpack -G DEB in a build configured with CMAKE_INSTALL_PREFIX=/usr (so that the libraries
# go to the multiarch directory): scripts/test_package.sh.

set(CPACK_PACKAGE_NAME goro)
set(CPACK_PACKAGE_VENDOR goro)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
# Empty, so each package's description (below) starts with its own synopsis line instead
# of CPack prepending the same one to both.
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "")
set(CPACK_PACKAGE_CONTACT "goro maintainers <goro@localhost>")
set(CPACK_GENERATOR DEB)
set(CPACK_COMPONENTS_ALL lib dev)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# Install with DESTDIR and the real prefix, so the install-time pass above writes /usr
# into goro.pc, not the staging directory.
set(CPACK_SET_DESTDIR ON)
set(GORO_DEB_VERSION ${PROJECT_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE})

set(CPACK_DEBIAN_LIB_PACKAGE_NAME libgoro${GORO_SOVERSION})
set(CPACK_DEBIAN_LIB_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_LIB_DESCRIPTION "${PROJECT_DESCRIPTION} - shared library
goro runs goroutines, channels, select, timers, sync primitives and an epoll netpoller on
an M:N work-stealing scheduler modelled on Go's runtime.")
# dpkg-shlibdeps computes Depends (libc6), and the package carries a shlibs file naming
# itself for programs linked against libgoro.so.N.
set(CPACK_DEBIAN_LIB_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
# With GENERATE_SHLIBS CPack also adds postinst/postrm scripts that run ldconfig.
set(CPACK_DEBIAN_LIB_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libgoro-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_DESCRIPTION "${PROJECT_DESCRIPTION} - development files
The header goro.h, the static library, the pkg-config file goro.pc and the CMake package
(find_package(goro CONFIG) gives goro::goro).")
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
    "${CPACK_DEBIAN_LIB_PACKAGE_NAME} (= ${GORO_DEB_VERSION})")

include(CPack)
