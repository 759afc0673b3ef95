# Installation and package files: headers, libferry (with its SOVERSION), the
# exported target ferry::ferry with ferryConfig.cmake/ferryConfigVersion.cmake,
# and ferry.pc. Plugins install themselves (ferry_add_plugin) into
# <libdir>/ferry/, where the loader looks next to the installed libferry.
include(CMakePackageConfigHelpers)

set(FERRY_CMAKE_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/ferry
    CACHE STRING "Where ferryConfig.cmake is installed (relative to the prefix)")
set(FERRY_PKGCONFIG_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig
    CACHE STRING "Where ferry.pc is installed (relative to the prefix)")

install(TARGETS ferry EXPORT ferryTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
          COMPONENT runtime NAMELINK_COMPONENT development
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT development
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# The public headers only. DLPack's own header is used privately and never
# installed: frameworks ship their copies, and the first one included wins.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/ferry
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT development
  FILES_MATCHING PATTERN "*.h" PATTERN "dlpack*" EXCLUDE)

install(EXPORT ferryTargets NAMESPACE ferry::
  FILE ferryTargets.cmake
  DESTINATION ${FERRY_CMAKE_INSTALL_DIR} COMPONENT development)

# PACKAGE_PREFIX_DIR is computed from the config file's own location, so the
# installed tree can be moved.
configure_package_config_file(
  ${PROJECT_SOURCE_DIR}/cmake/ferryConfig.cmake.in
  ${PROJECT_BINARY_DIR}/cmake/ferryConfig.cmake
  INSTALL_DESTINATION ${FERRY_CMAKE_INSTALL_DIR}
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_LIBDIR)
# 0.x releases make no compatibility promise between minor versions.
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/cmake/ferryConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cmake/ferryConfig.cmake
              ${PROJECT_BINARY_DIR}/cmake/ferryConfigVersion.cmake
  DESTINATION ${FERRY_CMAKE_INSTALL_DIR} COMPONENT development)

# ferry.pc locates the prefix from its own directory (${pcfiledir}, known to
# pkgconf and pkg-config alike), so it too survives a moved prefix. Absolute
# install dirs cannot be expressed that way and are written as they are.
function(ferry_pc_path var dir)
  if(IS_ABSOLUTE "${dir}")
    set(${var} "${dir}" PARENT_SCOPE)
  else()
    set(${var} "\${prefix}/${dir}" PARENT_SCOPE)
  endif()
endfunction()
if(IS_ABSOLUTE "${FERRY_PKGCONFIG_INSTALL_DIR}")
  set(FERRY_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH ferry_pc_up /${FERRY_PKGCONFIG_INSTALL_DIR} /)
  string(REGEX REPLACE "/$" "" ferry_pc_up "${ferry_pc_up}")
  set(FERRY_PC_PREFIX "\${pcfiledir}/${ferry_pc_up}")
endif()
set(FERRY_PC_DL "")
foreach(lib IN LISTS CMAKE_DL_LIBS)
  string(APPEND FERRY_PC_DL " -l${lib}")
endforeach()
string(STRIP "${FERRY_PC_DL}" FERRY_PC_DL)
ferry_pc_path(FERRY_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
ferry_pc_path(FERRY_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/ferry.pc.in
  ${PROJECT_BINARY_DIR}/ferry.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/ferry.pc
  DESTINATION ${FERRY_PKGCONFIG_INSTALL_DIR} COMPONENT development)
