# `cmake --install build --prefix P` installs:
#   bin/rpchost, bin/rpcall                  the host and the client
#   lib/rpchost/plugins/*.so                 the shipped plugins (not test ones;
#                                            RPCHOST_PLUGIN_INSTALL_DIR)
#   include/rpchost/plugin.h                 the plugin ABI
#   lib/cmake/rpchost/                       the CMake package a plugin author
#                                            uses: find_package(rpchost), then
#                                            rpchost_add_plugin(...)
# (examples/hello-plugin is a project built that way.)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
set(_rh_cmakedir ${CMAKE_INSTALL_LIBDIR}/cmake/rpchost)
# Not LIBDIR: on Debian that is multiarch (lib/x86_64-linux-gnu), while
# plugins are looked for in one well-known place, /usr/lib/rpchost/plugins.
set(RPCHOST_PLUGIN_INSTALL_DIR lib/rpchost/plugins CACHE STRING
    "where the shipped plugins are installed, relative to the prefix")
# Components: "daemon" (package rpchost) and "dev" (package rpchost-dev).

install(FILES include/rpchost/plugin.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/rpchost
        COMPONENT dev)
# Imported by the package as rpchost::headers, the name used in this tree.
set_target_properties(rpchost_headers PROPERTIES EXPORT_NAME headers)
install(TARGETS rpchost_headers EXPORT rpchostTargets COMPONENT dev)
install(EXPORT rpchostTargets NAMESPACE rpchost:: DESTINATION ${_rh_cmakedir}
        COMPONENT dev)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/rpchost-config-version.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES cmake/rpchost-config.cmake cmake/RpchostPlugin.cmake
              cmake/rpchost_embed.cmake
              ${CMAKE_BINARY_DIR}/rpchost-config-version.cmake
        DESTINATION ${_rh_cmakedir} COMPONENT dev)

foreach(_t rpchost rpcall)
  if(TARGET ${_t})
    install(TARGETS ${_t} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT daemon)
  endif()
endforeach()

# Every plugin target defined under plugins/ (test plugins live elsewhere).
file(GLOB _rh_plugin_dirs LIST_DIRECTORIES true ${CMAKE_SOURCE_DIR}/plugins/*)
foreach(_d IN LISTS _rh_plugin_dirs)
  if(EXISTS ${_d}/CMakeLists.txt)
    get_property(_targets DIRECTORY ${_d} PROPERTY BUILDSYSTEM_TARGETS)
    foreach(_t IN LISTS _targets)
      get_target_property(_type ${_t} TYPE)
      if(_type STREQUAL "MODULE_LIBRARY")
        install(TARGETS ${_t} LIBRARY DESTINATION ${RPCHOST_PLUGIN_INSTALL_DIR}
                COMPONENT daemon)
      endif()
    endforeach()
  endif()
endforeach()
