# Debian packages with CPack (scripts/package configures with
# -DRPCHOST_PACKAGE=ON -DCMAKE_INSTALL_PREFIX=/usr, then runs cpack):
#   rpchost       bin/rpchost, bin/rpcall, the shipped plugins in
#                 /usr/lib/rpchost/plugins, /etc/rpchost/rpchost.ini (a
#                 conffile), the systemd units, rpchost(8) and rpcall(1),
#                 the docs; a system user "rpchost" made by postinst
#   rpchost-dev   the plugin SDK: plugin.h and the CMake package
# Only with RPCHOST_PACKAGE: the absolute /etc and /lib/systemd paths would
# otherwise escape `cmake --install --prefix P`.
option(RPCHOST_PACKAGE "Install the system files of the Debian package" OFF)
if(NOT RPCHOST_PACKAGE)
  return()
endif()

find_program(GO_MD2MAN go-md2man REQUIRED)
set(_man ${CMAKE_BINARY_DIR}/man)
set(_pages "rpchost 8 docs/rpchost.8.md" "rpcall 1 docs/rpcall.md"
           "rpchost-token 8 docs/rpchost-token.8.md")
foreach(_p IN LISTS _pages)
  separate_arguments(_p)
  list(GET _p 0 _name)
  list(GET _p 1 _sec)
  list(GET _p 2 _src)
  add_custom_command(OUTPUT ${_man}/${_name}.${_sec}.gz
    COMMAND ${CMAKE_COMMAND} -E make_directory ${_man}
    COMMAND python3 ${CMAKE_SOURCE_DIR}/cmake/rpchost_manpage.py ${CMAKE_SOURCE_DIR}/${_src}
            ${_man}/${_name}.${_sec} ${_name} ${_sec} ${PROJECT_VERSION}
    COMMAND gzip -9nf ${_man}/${_name}.${_sec}
    DEPENDS ${CMAKE_SOURCE_DIR}/${_src} ${CMAKE_SOURCE_DIR}/cmake/rpchost_manpage.py
    VERBATIM)
  list(APPEND _man_outputs ${_man}/${_name}.${_sec}.gz)
  install(FILES ${_man}/${_name}.${_sec}.gz
          DESTINATION ${CMAKE_INSTALL_MANDIR}/man${_sec} COMPONENT daemon)
endforeach()
add_custom_target(manpages ALL DEPENDS ${_man_outputs})

install(FILES packaging/rpchost.ini DESTINATION /etc/rpchost COMPONENT daemon)
install(FILES packaging/rpchost.service packaging/rpchost.socket
        DESTINATION /lib/systemd/system COMPONENT daemon)
install(PROGRAMS scripts/rpchost-token DESTINATION ${CMAKE_INSTALL_SBINDIR} COMPONENT daemon)
# changelog and copyright as Debian policy wants them in every package.
set(_doc ${CMAKE_INSTALL_DATADIR}/doc)
foreach(_pkg rpchost rpchost-dev)
  set(_comp daemon)
  if(_pkg STREQUAL "rpchost-dev")
    set(_comp dev)
  endif()
  add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/pkgdoc/${_pkg}/changelog.gz
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/pkgdoc/${_pkg}
    COMMAND sh -c "gzip -9nc < '${CMAKE_SOURCE_DIR}/packaging/changelog' > '${CMAKE_BINARY_DIR}/pkgdoc/${_pkg}/changelog.gz'"
    DEPENDS ${CMAKE_SOURCE_DIR}/packaging/changelog VERBATIM)
  list(APPEND _doc_outputs ${CMAKE_BINARY_DIR}/pkgdoc/${_pkg}/changelog.gz)
  install(FILES ${CMAKE_BINARY_DIR}/pkgdoc/${_pkg}/changelog.gz packaging/copyright
          DESTINATION ${_doc}/${_pkg} COMPONENT ${_comp})
endforeach()
add_custom_target(pkgdocs ALL DEPENDS ${_doc_outputs})
install(FILES README.md docs/configuration.md docs/hot-operations.md docs/plugin-guide.md
              docs/interceptors.md docs/transport.md docs/rides.md docs/deploy-debian.md
        DESTINATION ${_doc}/rpchost COMPONENT daemon)

set(CPACK_GENERATOR DEB)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL daemon dev)
set(CPACK_PACKAGE_NAME rpchost)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "rpchost maintainers <maintainers@rpchost.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "plugin-based gRPC host")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://rpchost.invalid/")
set(CPACK_DEBIAN_DAEMON_PACKAGE_NAME rpchost)
set(CPACK_DEBIAN_DAEMON_PACKAGE_SECTION net)
set(CPACK_DEBIAN_DAEMON_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_DAEMON_PACKAGE_DEPENDS "adduser, ssl-cert")
set(CPACK_COMPONENT_DAEMON_DESCRIPTION_SUMMARY "plugin-based gRPC host")
set(CPACK_DEBIAN_DAEMON_DESCRIPTION "rpchost serves gRPC services and interceptors loaded as shared-object
plugins at run time, over TLS HTTP/2. A plugin dropped into the plugin
directory serves at once; replacing or removing one drains its calls.
This package ships the daemon, the rpcall client, and the Rides,
authlog and interop plugins.")
set(CPACK_DEBIAN_DAEMON_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/packaging/debian/conffiles
    ${CMAKE_SOURCE_DIR}/packaging/debian/postinst
    ${CMAKE_SOURCE_DIR}/packaging/debian/prerm
    ${CMAKE_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_DAEMON_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_DEV_PACKAGE_NAME rpchost-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
    "rpchost (= ${PROJECT_VERSION}), cmake, pkg-config, libprotobuf-c-dev, protobuf-c-compiler, protobuf-compiler, libprotobuf-dev")
set(CPACK_COMPONENT_DEV_DESCRIPTION_SUMMARY "plugin SDK for rpchost")
set(CPACK_DEBIAN_DEV_DESCRIPTION "The plugin ABI header and the CMake package (find_package(rpchost),
rpchost_add_plugin()) for building rpchost plugins out of tree.")
include(CPack)
