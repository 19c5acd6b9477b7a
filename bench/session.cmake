# pimap_session_bench: micro-benchmarks of the P-IMAP session model (journal
# append/render/ack, MSN lookups on a 100k-range view, appends/erases at the
# end of a view). Included by bench/CMakeLists.txt.
add_executable(pimap_session_bench ${CMAKE_CURRENT_LIST_DIR}/session_bench.cc)
target_link_libraries(pimap_session_bench PRIVATE pimap_session
                      benchmark::benchmark_main)
