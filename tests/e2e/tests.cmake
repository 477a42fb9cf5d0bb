# End-to-end tests: against the real Kafka broker and PostgreSQL.
pi_c_test(e2e kafka_smoke TIMEOUT 120 FIXTURES kafka)
pi_c_test(e2e mock_faults TIMEOUT 300 FIXTURES pg)
pi_script_test(e2e run_exactly_once TIMEOUT 300 FIXTURES "pg;kafka")
pi_script_test(e2e run_kill9 TIMEOUT 300 FIXTURES "pg;kafka")
pi_script_test(e2e run_pg_outage SERIAL TIMEOUT 300 FIXTURES "pg;kafka")
pi_script_test(e2e run_two_instances TIMEOUT 400 FIXTURES "pg;kafka")
pi_script_test(e2e run_malformed TIMEOUT 300 FIXTURES "pg;kafka")
pi_script_test(e2e run_shutdown SERIAL TIMEOUT 300 FIXTURES "pg;kafka")
