# Unit tests: one cmocka executable per module.
pi_c_test(unit config)
pi_c_test(unit decode)
pi_c_test(unit batch)
pi_script_test(unit migrations_embedded TIMEOUT 30)
pi_c_test(unit log)
pi_c_test(unit kafka)
pi_c_test(unit report)
