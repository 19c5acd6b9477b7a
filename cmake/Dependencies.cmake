# Third-party dependencies, all from Debian packages (tools/setup installs them).
find_package(PkgConfig REQUIRED)
pkg_check_modules(URING REQUIRED IMPORTED_TARGET liburing>=2.3)
pkg_check_modules(NGHTTP2 REQUIRED IMPORTED_TARGET libnghttp2>=1.52)
find_package(absl REQUIRED CONFIG)
find_package(zstd REQUIRED CONFIG)
find_package(ZLIB REQUIRED)
find_package(Threads REQUIRED)
if(PIMAP_BUILD_TESTS)
  find_package(GTest REQUIRED CONFIG)
endif()
if(PIMAP_BUILD_BENCH)
  find_package(benchmark REQUIRED CONFIG)
endif()

# BoringSSL from android-libboringssl-dev. It has no pkg-config or CMake config, and
# OpenSSL 3 headers sit in /usr/include too: look only in the android folders so that
# OpenSSL can never slip in. Never call find_package(OpenSSL).
find_path(BORINGSSL_INCLUDE_DIR openssl/is_boringssl.h
  PATHS /usr/include/android NO_DEFAULT_PATH REQUIRED)
find_library(BORINGSSL_SSL_LIBRARY ssl
  PATHS /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/android NO_DEFAULT_PATH REQUIRED)
find_library(BORINGSSL_CRYPTO_LIBRARY crypto
  PATHS /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/android NO_DEFAULT_PATH REQUIRED)
add_library(boringssl::crypto SHARED IMPORTED)
set_target_properties(boringssl::crypto PROPERTIES
  IMPORTED_LOCATION ${BORINGSSL_CRYPTO_LIBRARY}
  INTERFACE_INCLUDE_DIRECTORIES ${BORINGSSL_INCLUDE_DIR})
add_library(boringssl::ssl SHARED IMPORTED)
set_target_properties(boringssl::ssl PROPERTIES
  IMPORTED_LOCATION ${BORINGSSL_SSL_LIBRARY}
  INTERFACE_INCLUDE_DIRECTORIES ${BORINGSSL_INCLUDE_DIR}
  INTERFACE_LINK_LIBRARIES boringssl::crypto)

# Sanitizer flags for the ASan builds of the parsers (tests/core/imap).
set(PIMAP_ASAN_FLAGS -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
