# End-to-end tests: against the real Kafka broker and PostgreSQL.
pi_c_test(e2e kafka_smoke TIMEOUT 120 FIXTURES kafka)
pi_c_test(e2e mock_faults TIMEOUT 300 FIXTURES pg)
pi_script_test(e2e run_exactly_once TIMEOUT 300 FIXTURES "pg;kafka")
# The same, the service logging in as a member of presence_writer only.
pi_script_test(e2e run_exactly_once_writer SCRIPT run_exactly_once TIMEOUT 300
               FIXTURES "pg;kafka" ENV PI_E2E_PG_ROLE=writer)
pi_script_test(e2e pg_tls TIMEOUT 300 FIXTURES "pg;kafka")
pi_script_test(e2e pg_roles TIMEOUT 300 FIXTURES "pg;kafka")
pi_script_test(e2e run_kill9 TIMEOUT 300 FIXTURES "pg;kafka")
pi_script_test(e2e run_pg_outage SERIAL TIMEOUT 300 FIXTURES "pg;kafka")
pi_script_test(e2e run_two_instances TIMEOUT 400 FIXTURES "pg;kafka")
# The same with two writers per instance (--writers 2).
pi_script_test(e2e run_kill9 SUFFIX writers2 ENV PI_E2E_WRITERS=2
               TIMEOUT 300 FIXTURES "pg;kafka")
pi_script_test(e2e run_pg_outage SUFFIX writers2 ENV PI_E2E_WRITERS=2 SERIAL
               TIMEOUT 300 FIXTURES "pg;kafka")
pi_script_test(e2e run_two_instances SUFFIX writers2 ENV PI_E2E_WRITERS=2
               TIMEOUT 400 FIXTURES "pg;kafka")
pi_script_test(e2e run_malformed TIMEOUT 300 FIXTURES "pg;kafka")
pi_script_test(e2e run_shutdown SERIAL TIMEOUT 300 FIXTURES "pg;kafka")
pi_script_test(e2e run_hostile_messages TIMEOUT 300 FIXTURES "pg;kafka")
pi_script_test(e2e run_pg_back_in_time SERIAL TIMEOUT 400 FIXTURES "pg;kafka")
pi_script_test(e2e run_frozen_instance TIMEOUT 300 FIXTURES "pg;kafka")
pi_script_test(e2e run_new_partitions TIMEOUT 200 FIXTURES "pg;kafka")
pi_script_test(e2e run_kafka_errors TIMEOUT 200 FIXTURES "pg;kafka")
pi_script_test(e2e replay_backfill TIMEOUT 300 FIXTURES "pg;kafka")
pi_script_test(e2e replay_beside_run TIMEOUT 300 FIXTURES "pg;kafka")
pi_script_test(e2e run_metrics SERIAL TIMEOUT 400 FIXTURES "pg;kafka")
pi_script_test(e2e run_migrate_partitions TIMEOUT 300 FIXTURES "pg;kafka")
pi_script_test(e2e run_retention TIMEOUT 300 FIXTURES "pg;kafka")
pi_script_test(e2e run_sasl_ssl TIMEOUT 200 FIXTURES "pg;kafka")
pi_script_test(e2e secrets_not_shown TIMEOUT 200 FIXTURES "pg;kafka")
pi_script_test(e2e run_writers_shared_ids TIMEOUT 300 FIXTURES "pg;kafka")
pi_script_test(e2e run_fleet_gauges TIMEOUT 200 FIXTURES "pg;kafka")
pi_script_test(e2e pgbouncer TIMEOUT 300 FIXTURES "pg;kafka")
