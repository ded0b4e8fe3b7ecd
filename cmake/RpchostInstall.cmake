# `cmake --install build --prefix P` installs:
#   bin/rpchost, bin/rpcall                  the host and the client
#   lib/rpchost/plugins/*.so                 the shipped plugins (not test ones)
#   include/rpchost/plugin.h                 the plugin ABI
#   lib/cmake/rpchost/                       the CMake package a plugin author
#                                            uses: find_package(rpchost), then
#                                            rpchost_add_plugin(...)
# (examples/hello-plugin is a project built that way.)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
set(_rh_cmakedir ${CMAKE_INSTALL_LIBDIR}/cmake/rpchost)

install(FILES include/rpchost/plugin.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/rpchost)
# Imported by the package as rpchost::headers, the name used in this tree.
set_target_properties(rpchost_headers PROPERTIES EXPORT_NAME headers)
install(TARGETS rpchost_headers EXPORT rpchostTargets)
install(EXPORT rpchostTargets NAMESPACE rpchost:: DESTINATION ${_rh_cmakedir})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/rpchost-config-version.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES cmake/rpchost-config.cmake cmake/RpchostPlugin.cmake
              cmake/rpchost_embed.cmake
              ${CMAKE_BINARY_DIR}/rpchost-config-version.cmake
        DESTINATION ${_rh_cmakedir})

foreach(_t rpchost rpcall)
  if(TARGET ${_t})
    install(TARGETS ${_t} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
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
        install(TARGETS ${_t} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/rpchost/plugins)
      endif()
    endforeach()
  endif()
endforeach()
