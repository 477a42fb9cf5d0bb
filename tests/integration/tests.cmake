# Integration tests: against the harness's real PostgreSQL.
pi_c_test(integration pg_smoke FIXTURES pg)
pi_script_test(integration cli_errors TIMEOUT 120 FIXTURES pg)
pi_c_test(integration writer FIXTURES pg TIMEOUT 120)
pi_c_test(integration migrate FIXTURES pg TIMEOUT 120)
pi_script_test(integration load_cli TIMEOUT 180 FIXTURES pg)
pi_script_test(integration load_pg_restart SERIAL TIMEOUT 300 FIXTURES pg)
pi_c_test(integration pipeline FIXTURES pg)
pi_script_test(integration report_cli TIMEOUT 180 FIXTURES pg)
