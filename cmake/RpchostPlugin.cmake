# rpchost_add_plugin(NAME
#     PROTOS   a.proto [google/protobuf/timestamp.proto ...]
#     SOURCES  src.c ...
#     [IMPORT_DIRS dir ...]      extra proto search paths
#     [LIBRARIES lib ...])       extra link libraries
#
# Generates protobuf-c code for every listed proto (list the well-known
# types a proto imports too), embeds the FileDescriptorSet of all of them
# with their imports as the header "rpchost_descriptor_set.h", and builds
# <NAME>.so with only `rpchost_plugin` exported. Protos are looked up in the
# calling directory, IMPORT_DIRS, RPCHOST_GRPC_PROTO_DIR and
# RPCHOST_WKT_PROTO_DIR. The .so goes to RPCHOST_PLUGIN_OUTPUT_DIR if set,
# else <build dir>/plugins.
#
# Works from this repository and, once installed, from a plugin author's
# own project (find_package(rpchost), see examples/hello-plugin): it relies
# only on the target rpchost::headers, which both provide.
set(_RPCHOST_PLUGIN_CMAKE_DIR ${CMAKE_CURRENT_LIST_DIR})
if(NOT DEFINED RPCHOST_WKT_PROTO_DIR)
  set(RPCHOST_WKT_PROTO_DIR /usr/include)
endif()
if(NOT DEFINED RPCHOST_GRPC_PROTO_DIR)
  set(RPCHOST_GRPC_PROTO_DIR /usr/share/grpc-proto)
endif()
if(NOT CMAKE_C_COMPILER_LOADED)
  message(FATAL_ERROR "rpchost: plugins are C: enable the language first "
                      "(project(NAME LANGUAGES C) before find_package(rpchost))")
endif()
# Both are no-ops when the variable is already set (this tree, or -D).
find_program(PROTOC protoc)
find_program(PROTOC_C protoc-c)
if(NOT PROTOC OR NOT PROTOC_C)
  message(FATAL_ERROR "rpchost: need protoc and protoc-c (found: ${PROTOC}, "
    "${PROTOC_C}): install protobuf-compiler and protobuf-c-compiler, or pass "
    "-DPROTOC=... -DPROTOC_C=...")
endif()

# rpchost_protobuf_c(OUT_SRCS OUT_DIR IMPORT_DIRS dirs... PROTOS protos...)
# Generates protobuf-c sources into OUT_DIR; sets OUT_SRCS to the .c files.
function(rpchost_protobuf_c out_srcs out_dir)
  cmake_parse_arguments(G "" "" "IMPORT_DIRS;PROTOS" ${ARGN})
  set(_incs)
  foreach(_d IN LISTS G_IMPORT_DIRS)
    list(APPEND _incs -I${_d})
  endforeach()
  set(_srcs)
  foreach(_p IN LISTS G_PROTOS)
    set(_found)
    foreach(_d IN LISTS G_IMPORT_DIRS)
      if(NOT _found AND EXISTS ${_d}/${_p})
        set(_found ${_d}/${_p})
      endif()
    endforeach()
    if(NOT _found)
      message(FATAL_ERROR "rpchost: proto ${_p} not found in ${G_IMPORT_DIRS}")
    endif()
    string(REGEX REPLACE "\\.proto$" "" _stem ${_p})
    set(_c ${out_dir}/${_stem}.pb-c.c)
    add_custom_command(
      OUTPUT ${_c} ${out_dir}/${_stem}.pb-c.h
      COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
      COMMAND ${PROTOC_C} ${_incs} --c_out=${out_dir} ${_found}
      DEPENDS ${_found}
      COMMENT "protoc-c ${_p}" VERBATIM)
    list(APPEND _srcs ${_c})
  endforeach()
  set(${out_srcs} ${_srcs} PARENT_SCOPE)
endfunction()

# rpchost_descriptor_set_header(HEADER IMPORT_DIRS dirs... PROTOS protos...)
# Writes HEADER defining `static const uint8_t rh_descriptor_set[]`.
function(rpchost_descriptor_set_header header)
  cmake_parse_arguments(G "" "" "IMPORT_DIRS;PROTOS" ${ARGN})
  set(_incs)
  foreach(_d IN LISTS G_IMPORT_DIRS)
    list(APPEND _incs -I${_d})
  endforeach()
  set(_abs)
  foreach(_p IN LISTS G_PROTOS)
    foreach(_d IN LISTS G_IMPORT_DIRS)
      if(EXISTS ${_d}/${_p})
        list(APPEND _abs ${_d}/${_p})
        break()
      endif()
    endforeach()
  endforeach()
  set(_pb ${header}.pb)
  get_filename_component(_hdir ${header} DIRECTORY)
  add_custom_command(
    OUTPUT ${header}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${_hdir}
    COMMAND ${PROTOC} ${_incs} --include_imports --include_source_info --descriptor_set_out=${_pb} ${G_PROTOS}
    COMMAND ${CMAKE_COMMAND} -DIN=${_pb} -DOUT=${header}
            -P ${_RPCHOST_PLUGIN_CMAKE_DIR}/rpchost_embed.cmake
    DEPENDS ${_abs} ${_RPCHOST_PLUGIN_CMAKE_DIR}/rpchost_embed.cmake
    COMMENT "descriptor set ${header}" VERBATIM)
endfunction()

function(rpchost_add_plugin name)
  cmake_parse_arguments(P "" "" "PROTOS;SOURCES;IMPORT_DIRS;LIBRARIES" ${ARGN})
  if(NOT P_PROTOS OR NOT P_SOURCES)
    message(FATAL_ERROR "rpchost_add_plugin(${name}): give PROTOS and SOURCES")
  endif()
  if(NOT RPCHOST_PLUGIN_OUTPUT_DIR)
    set(RPCHOST_PLUGIN_OUTPUT_DIR ${CMAKE_BINARY_DIR}/plugins)
  endif()
  set(_gen ${CMAKE_CURRENT_BINARY_DIR}/${name}_gen)
  set(_dirs ${CMAKE_CURRENT_SOURCE_DIR} ${P_IMPORT_DIRS})
  foreach(_d ${RPCHOST_GRPC_PROTO_DIR} ${RPCHOST_WKT_PROTO_DIR})
    if(IS_DIRECTORY ${_d})
      list(APPEND _dirs ${_d})
    endif()
  endforeach()
  rpchost_protobuf_c(_pb_srcs ${_gen} IMPORT_DIRS ${_dirs} PROTOS ${P_PROTOS})
  rpchost_descriptor_set_header(${_gen}/rpchost_descriptor_set.h
                                IMPORT_DIRS ${_dirs} PROTOS ${P_PROTOS})
  # The ABI is one symbol: a version script keeps everything else local,
  # even symbols of static libraries built without hidden visibility.
  set(_map ${_gen}/exports.map)
  file(CONFIGURE OUTPUT ${_map} CONTENT "{ global: rpchost_plugin; local: *; };\n")
  add_library(${name} MODULE ${P_SOURCES} ${_pb_srcs} ${_gen}/rpchost_descriptor_set.h)
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    C_VISIBILITY_PRESET hidden
    LIBRARY_OUTPUT_DIRECTORY ${RPCHOST_PLUGIN_OUTPUT_DIR}
    LINK_DEPENDS ${_map})
  target_include_directories(${name} PRIVATE ${_gen})
  # rpchost::headers brings plugin.h and protobuf-c (headers and library).
  target_link_libraries(${name} PRIVATE rpchost::headers ${P_LIBRARIES})
  # Plugins resolve nothing from the host: fail the link on undefined symbols.
  target_link_options(${name} PRIVATE -Wl,--no-undefined -Wl,-z,now
                                      -Wl,--version-script=${_map})
endfunction()
