# rpchost_add_fuzz_target(NAME SOURCES src.c ... [LIBS lib ...] [INCLUDES dir ...]
#                         [CORPUS dir])
#
# Always: fuzz_<NAME>_regress, the harness linked with driver.c, registered
# with ctest as fuzz_<NAME> (label unit): it runs the built-in cases and
# every file of CORPUS (default: the target's corpus/ directory).
# With -DRPCHOST_FUZZ=ON (tests/fuzz/run, clang): also the libFuzzer binary
# bin/fuzz_<NAME>.
include_guard(GLOBAL)
option(RPCHOST_FUZZ "Build the libFuzzer harnesses (clang only)" OFF)
set(RPCHOST_FUZZ_COMMON ${CMAKE_CURRENT_LIST_DIR} CACHE INTERNAL "tests/fuzz/common")

function(rpchost_add_fuzz_target name)
  cmake_parse_arguments(F "" "CORPUS" "SOURCES;LIBS;INCLUDES" ${ARGN})
  if(NOT F_CORPUS)
    set(F_CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/corpus)
  endif()
  set(_exes fuzz_${name}_regress)
  add_executable(fuzz_${name}_regress ${F_SOURCES} ${RPCHOST_FUZZ_COMMON}/driver.c)
  add_test(NAME fuzz_${name} COMMAND fuzz_${name}_regress ${F_CORPUS})
  set_tests_properties(fuzz_${name} PROPERTIES LABELS unit TIMEOUT 300)
  if(RPCHOST_FUZZ)
    add_executable(fuzz_${name} ${F_SOURCES})
    target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
    list(APPEND _exes fuzz_${name})
  endif()
  foreach(_e IN LISTS _exes)
    target_include_directories(${_e} PRIVATE ${RPCHOST_FUZZ_COMMON} ${F_INCLUDES})
    target_link_libraries(${_e} PRIVATE ${F_LIBS})
  endforeach()
endfunction()
