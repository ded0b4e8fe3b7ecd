# Installs what a plugin author outside this repository needs:
#   find_package(rpchost REQUIRED)   then   rpchost_add_plugin(...)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
install(FILES include/rpchost/plugin.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/rpchost)
install(TARGETS rpchost_headers EXPORT rpchostTargets)
install(EXPORT rpchostTargets NAMESPACE rpchost::
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/rpchost)
install(FILES cmake/RpchostPlugin.cmake cmake/rpchost_embed.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/rpchost)
file(WRITE ${CMAKE_BINARY_DIR}/rpchost-config.cmake [=[
include(CMakeFindDependencyMacro)
find_dependency(PkgConfig)
pkg_check_modules(PROTOBUFC REQUIRED IMPORTED_TARGET libprotobuf-c)
include(${CMAKE_CURRENT_LIST_DIR}/rpchostTargets.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/RpchostPlugin.cmake)
]=])
write_basic_package_version_file(${CMAKE_BINARY_DIR}/rpchost-config-version.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/rpchost-config.cmake
              ${CMAKE_BINARY_DIR}/rpchost-config-version.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/rpchost)
