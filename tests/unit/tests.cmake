# Unit tests: one cmocka executable per module.
pi_c_test(unit config)
pi_c_test(unit decode)
