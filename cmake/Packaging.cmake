# Installation and the Debian package of pimapd (tools/package builds it with
# CPack): the daemon, its systemd unit, the sample configuration as
# /etc/pimapd/pimapd.conf (a conffile), and a man page made from --help by
# help2man. Nothing else of the build (tests, benchmarks, developer tools) is
# installed.
include(GNUInstallDirs)

# The version pimapd reports (core/base/version.h) is the package's.
file(STRINGS ${CMAKE_SOURCE_DIR}/core/base/version.h PIMAP_VERSION_LINE
     REGEX "kVersion\\[\\] = \"[^\"]+\"")
string(REGEX REPLACE ".*\"([^\"]+)\".*" "\\1" PIMAP_VERSION
       "${PIMAP_VERSION_LINE}")

# BoringSSL (android-libboringssl) lives outside the linker's search path: the
# installed binary keeps a RUNPATH to it, as the build tree's has.
get_filename_component(PIMAP_BORINGSSL_DIR ${BORINGSSL_SSL_LIBRARY} DIRECTORY)
set_target_properties(pimapd PROPERTIES INSTALL_RPATH ${PIMAP_BORINGSSL_DIR})
install(TARGETS pimapd RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
# The operator's CLI for the admin endpoint (README "pimapctl"), beside it.
install(TARGETS pimapctl RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
install(FILES ${CMAKE_SOURCE_DIR}/tools/systemd/pimapd.service
        DESTINATION lib/systemd/system)
install(FILES ${CMAKE_SOURCE_DIR}/tools/systemd/pimapd.conf
        DESTINATION /etc/pimapd PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
install(FILES ${CMAKE_SOURCE_DIR}/README.md DESTINATION share/doc/pimapd)

find_program(PIMAP_HELP2MAN help2man)
if(PIMAP_HELP2MAN)
  set(man ${CMAKE_BINARY_DIR}/pimapd.8)
  add_custom_command(
    OUTPUT ${man}.gz
    COMMAND ${PIMAP_HELP2MAN} --no-info --section=8 --no-discard-stderr
            "--name=P-IMAP push-mail gateway in front of an IMAP store"
            --output=${man} $<TARGET_FILE:pimapd>
    COMMAND gzip -9nf ${man}
    DEPENDS pimapd
    COMMENT "pimapd.8 from pimapd --help (help2man)")
  add_custom_target(pimapd_man ALL DEPENDS ${man}.gz)
  install(FILES ${man}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
else()
  message(STATUS "help2man not found: no man page (run tools/setup)")
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME pimapd)
set(CPACK_PACKAGE_VERSION ${PIMAP_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_CONTACT "pimap developers <pimap@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "P-IMAP push-mail gateway in front of an IMAP store")
set(CPACK_PACKAGE_DESCRIPTION
    "pimapd sits between mobile devices and an unmodified IMAP store (e.g. Dovecot) and pushes new mail to them (P-IMAP: in-band over TCP and HTTPS, out-of-band by Web Push, EMN or UDP), holding idle devices without store connections.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION mail)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# The shared libraries it links (BoringSSL, liburing, abseil, zstd, zlib,
# SQLite, nghttp2) become Depends, as dpkg-shlibdeps finds them.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${PIMAP_BORINGSSL_DIR})
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/tools/package.d/conffiles
    ${CMAKE_SOURCE_DIR}/tools/package.d/postinst
    ${CMAKE_SOURCE_DIR}/tools/package.d/prerm
    ${CMAKE_SOURCE_DIR}/tools/package.d/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_WARN_ON_ABSOLUTE_INSTALL_DESTINATION OFF)
include(CPack)
