# cmake -DIN=page.md -DOUT=name.N -DNAME=name -DSECTION=N -DVERSION=V -P rpchost_manpage.cmake
# Turns one of docs/'s man-style pages ("# name(N) — summary" then
# "## SYNOPSIS" ...) into roff with go-md2man: the first heading becomes the
# .TH line and a NAME section, the rest is converted as it is.
file(READ ${IN} _md)
string(REGEX MATCH "^# [^\n]*— ([^\n]*)\n" _first "${_md}")
if(NOT _first)
  message(FATAL_ERROR "${IN}: the first line must be '# ${NAME}(${SECTION}) — summary'")
endif()
set(_summary "${CMAKE_MATCH_1}")
string(LENGTH "${_first}" _len)
string(SUBSTRING "${_md}" ${_len} -1 _body)
get_filename_component(_dir ${OUT} DIRECTORY)
set(_tmp ${_dir}/${NAME}.${SECTION}.md)
file(WRITE ${_tmp} "# NAME\n\n${NAME} - ${_summary}\n${_body}")
execute_process(COMMAND go-md2man -in ${_tmp} -out ${OUT}.body RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "go-md2man failed on ${IN}")
endif()
file(READ ${OUT}.body _roff)
# go-md2man emits its own .TH from the first heading; ours replaces it.
string(REGEX REPLACE "\\.TH [^\n]*\n" "" _roff "${_roff}")
string(TOUPPER ${NAME} _upper)
file(WRITE ${OUT} ".TH \"${_upper}\" \"${SECTION}\" \"\" \"rpchost ${VERSION}\" \"rpchost manual\"\n${_roff}")
file(REMOVE ${OUT}.body ${_tmp})
