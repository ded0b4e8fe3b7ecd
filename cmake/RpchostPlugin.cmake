# rpchost_add_plugin(NAME
#     PROTOS   a.proto [google/protobuf/timestamp.proto ...]
#     SOURCES  src.c ...
#     [IMPORT_DIRS dir ...]      extra proto search paths
#     [LIBRARIES lib ...])       extra link libraries
#
# Generates protobuf-c code for every listed proto (list the well-known
# types a proto imports too), embeds the FileDescriptorSet of all of them
# with their imports as the header "rpchost_descriptor_set.h", and builds
# <NAME>.so with only `rpchost_plugin` exported. Works from this repository
# and, once installed, from a plugin author's own project
# (find_package(rpchost)).
set(_RPCHOST_PLUGIN_CMAKE_DIR ${CMAKE_CURRENT_LIST_DIR})
if(NOT DEFINED RPCHOST_WKT_PROTO_DIR)
  set(RPCHOST_WKT_PROTO_DIR /usr/include)
endif()
if(NOT DEFINED RPCHOST_GRPC_PROTO_DIR)
  set(RPCHOST_GRPC_PROTO_DIR /usr/share/grpc-proto)
endif()
if(NOT PROTOC)
  find_program(PROTOC protoc REQUIRED)
endif()
if(NOT PROTOC_C)
  find_program(PROTOC_C protoc-c REQUIRED)
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
    COMMAND ${PROTOC} ${_incs} --include_imports --descriptor_set_out=${_pb} ${G_PROTOS}
    COMMAND ${CMAKE_COMMAND} -DIN=${_pb} -DOUT=${header}
            -P ${_RPCHOST_PLUGIN_CMAKE_DIR}/rpchost_embed.cmake
    DEPENDS ${_abs} ${_RPCHOST_PLUGIN_CMAKE_DIR}/rpchost_embed.cmake
    COMMENT "descriptor set ${header}" VERBATIM)
endfunction()

function(rpchost_add_plugin name)
  cmake_parse_arguments(P "" "" "PROTOS;SOURCES;IMPORT_DIRS;LIBRARIES" ${ARGN})
  if(NOT RPCHOST_PLUGIN_OUTPUT_DIR)
    set(RPCHOST_PLUGIN_OUTPUT_DIR ${CMAKE_BINARY_DIR}/plugins)
  endif()
  set(_gen ${CMAKE_CURRENT_BINARY_DIR}/${name}_gen)
  set(_dirs ${CMAKE_CURRENT_SOURCE_DIR} ${P_IMPORT_DIRS}
            ${RPCHOST_GRPC_PROTO_DIR} ${RPCHOST_WKT_PROTO_DIR})
  rpchost_protobuf_c(_pb_srcs ${_gen} IMPORT_DIRS ${_dirs} PROTOS ${P_PROTOS})
  rpchost_descriptor_set_header(${_gen}/rpchost_descriptor_set.h
                                IMPORT_DIRS ${_dirs} PROTOS ${P_PROTOS})
  add_library(${name} MODULE ${P_SOURCES} ${_pb_srcs} ${_gen}/rpchost_descriptor_set.h)
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    C_VISIBILITY_PRESET hidden
    LIBRARY_OUTPUT_DIRECTORY ${RPCHOST_PLUGIN_OUTPUT_DIR})
  target_include_directories(${name} PRIVATE ${_gen})
  if(TARGET rpchost::headers)
    target_link_libraries(${name} PRIVATE rpchost::headers)
  endif()
  target_link_libraries(${name} PRIVATE PkgConfig::PROTOBUFC ${P_LIBRARIES})
  # Plugins resolve nothing from the host: fail the link on undefined symbols.
  target_link_options(${name} PRIVATE -Wl,--no-undefined -Wl,-z,now)
endfunction()
