# Unit tests: one cmocka executable per module.
pi_c_test(unit config)
pi_c_test(unit decode)
# The limits, with a counting allocator replacing malloc in this program.
pi_c_test(unit decode_limits)
target_sources(test_decode_limits PRIVATE
  ${CMAKE_SOURCE_DIR}/tests/support/alloc_count/alloc_count.c)
target_include_directories(test_decode_limits PRIVATE
  ${CMAKE_SOURCE_DIR}/tests/support/alloc_count)
pi_c_test(unit batch)
pi_c_test(unit lines)
pi_c_test(unit migrate_embedded)
pi_c_test(unit log)
pi_c_test(unit kafka)
pi_c_test(unit json_strict)
pi_c_test(unit commit_log)
pi_c_test(unit replay)
pi_c_test(unit report)
pi_c_test(unit metrics)
pi_c_test(unit http)
pi_c_test(unit watch_pending)
