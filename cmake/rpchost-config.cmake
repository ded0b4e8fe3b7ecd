# The rpchost CMake package (installed into lib/cmake/rpchost/).
#
#   find_package(rpchost 0.1 REQUIRED)      # CMAKE_PREFIX_PATH=<install prefix>
#   rpchost_add_plugin(hello PROTOS hello.proto SOURCES hello.c)
#
# Provides rpchost::headers (include/rpchost/plugin.h and the protobuf-c
# headers and library it needs) and rpchost_add_plugin() (RpchostPlugin.cmake).
# Needs on the build machine: pkg-config, libprotobuf-c-dev, protoc
# (protobuf-compiler) and protoc-c (protobuf-c-compiler).
include(CMakeFindDependencyMacro)
find_dependency(PkgConfig)
if(NOT TARGET PkgConfig::PROTOBUFC)
  pkg_check_modules(PROTOBUFC IMPORTED_TARGET libprotobuf-c)
  if(NOT PROTOBUFC_FOUND)
    set(${CMAKE_FIND_PACKAGE_NAME}_FOUND FALSE)
    set(${CMAKE_FIND_PACKAGE_NAME}_NOT_FOUND_MESSAGE
        "libprotobuf-c not found by pkg-config: install libprotobuf-c-dev")
    return()
  endif()
endif()
include(${CMAKE_CURRENT_LIST_DIR}/rpchostTargets.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/RpchostPlugin.cmake)
