# pimap-bench: the device-fleet load generator (bench/loadgen/), built to build/bin/pimap-bench.
# Included by bench/CMakeLists.txt.
add_executable(pimap-bench
  ${CMAKE_CURRENT_LIST_DIR}/loadgen/blocking_io.cc
  ${CMAKE_CURRENT_LIST_DIR}/loadgen/connect.cc
  ${CMAKE_CURRENT_LIST_DIR}/loadgen/fleet.cc
  ${CMAKE_CURRENT_LIST_DIR}/loadgen/http_client.cc
  ${CMAKE_CURRENT_LIST_DIR}/loadgen/lmtp.cc
  ${CMAKE_CURRENT_LIST_DIR}/loadgen/main.cc
  ${CMAKE_CURRENT_LIST_DIR}/loadgen/options.cc
  ${CMAKE_CURRENT_LIST_DIR}/loadgen/probes.cc
  ${CMAKE_CURRENT_LIST_DIR}/loadgen/resume.cc
  ${CMAKE_CURRENT_LIST_DIR}/loadgen/tls_client.cc
)
set_target_properties(pimap-bench PROPERTIES OUTPUT_NAME pimap-bench)
# boringssl::ssl: client TLS for --binding tls (Debian android-libboringssl; headers
# from /usr/include/android). Nothing here may pull OpenSSL 3.
target_link_libraries(pimap-bench PRIVATE pimap_engine pimap_imap pimap_base pimap_tls pimap_compress boringssl::ssl
  absl::strings absl::str_format absl::status absl::statusor)

if(PIMAP_BUILD_TESTS)
  # A small run of every scenario that works today (idle, push, relay, resume), each with the
  # direct-to-Dovecot baseline; fails if the bench reports any error.
  add_test(NAME bench_smoke
           COMMAND ${CMAKE_SOURCE_DIR}/bench/run-scenario --smoke
                   --bench $<TARGET_FILE:pimap-bench>
                   --pimapd $<TARGET_FILE:pimapd>
                   --out ${CMAKE_BINARY_DIR}/bench-smoke)
  set_tests_properties(bench_smoke PROPERTIES TIMEOUT 120)
  # Issue 16: a small failover (3 nodes, etcd, HAProxy; SIGKILL one node, mail meanwhile):
  # every dropped device back in IDLE, no push missing. Needs etcd and HAProxy
  # (tools/setup), hence the integration label.
  add_test(NAME bench_cluster_smoke
           COMMAND ${CMAKE_SOURCE_DIR}/bench/cluster-failover --phase failover --devices 60
                   --settle 1 --pimapd $<TARGET_FILE:pimapd>
                   --out ${CMAKE_BINARY_DIR}/bench-cluster-smoke)
  set_tests_properties(bench_cluster_smoke PROPERTIES TIMEOUT 120 LABELS integration)
endif()
