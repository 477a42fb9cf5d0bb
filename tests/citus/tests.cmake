# Citus tests: the service and the reports on a real cluster (a coordinator
# and two workers, tests/support/citus.sh), against a single server (the
# `pg` fixture) for the same data. Without the vendored Citus source the
# fixture does nothing and every test skips with one line (exit 77).
add_test(NAME service_citus_start
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/citus/service.sh start
                 ${PI_SERVICES_DIR}/citus)
add_test(NAME service_citus_stop
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/citus/service.sh stop
                 ${PI_SERVICES_DIR}/citus)
# Building Citus the first time on a machine takes a few minutes.
set_tests_properties(service_citus_start PROPERTIES FIXTURES_SETUP citus
                     TIMEOUT 900 LABELS service)
set_tests_properties(service_citus_stop PROPERTIES FIXTURES_CLEANUP citus
                     TIMEOUT 60 LABELS service)

pi_script_test(citus report TIMEOUT 300 FIXTURES "pg;citus")
pi_script_test(citus load_replay TIMEOUT 300 FIXTURES "pg;citus")
pi_script_test(citus roles TIMEOUT 300 FIXTURES "pg;citus")
pi_script_test(citus retention_watch TIMEOUT 300 FIXTURES "pg;citus")
# Restarts one of the cluster's workers: nothing else on the cluster beside it.
pi_script_test(citus run_exactly_once TIMEOUT 400 FIXTURES "pg;kafka;citus"
               SERIAL)
set_tests_properties(citus_report citus_load_replay citus_roles
                     citus_retention_watch
                     citus_run_exactly_once
                     PROPERTIES SKIP_RETURN_CODE 77)
