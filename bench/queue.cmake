# pimap_queue_bench: micro-benchmarks of pimap::MpscQueue (core/base/mpsc_queue.h):
# single-thread push+pop, and 1-3 producer threads with one consumer.
# Included by bench/CMakeLists.txt.
add_executable(pimap_queue_bench ${CMAKE_CURRENT_LIST_DIR}/queue_bench.cc)
target_link_libraries(pimap_queue_bench PRIVATE pimap_base absl::any_invocable
                      benchmark::benchmark_main)
