# pimap_compress_bench: COMPRESS=DEFLATE on pushed-event traffic: bytes on the
# wire per event, CPU per event, and zlib state per connection, for the
# gateway's settings against zlib's defaults. Included by bench/CMakeLists.txt.
add_executable(pimap_compress_bench ${CMAKE_CURRENT_LIST_DIR}/compress_bench.cc)
target_link_libraries(pimap_compress_bench PRIVATE pimap_compress
                      pimap_session_engine benchmark::benchmark_main)
# The recorded pushes it measures (bench/capture-events).
target_compile_definitions(pimap_compress_bench PRIVATE
                           PIMAP_BENCH_EVENTS_DIR="${CMAKE_CURRENT_LIST_DIR}/events")
