# deploy/: the alert rules (promtool check + unit tests), the dashboard and
# the alerts against the names the service exports, the systemd unit
# (systemd-analyze verify). Fast, no services.
pi_script_test(deploy alert_rules TIMEOUT 60)
pi_script_test(deploy dashboard_names TIMEOUT 60)
pi_script_test(deploy systemd_verify TIMEOUT 60)
pi_script_test(deploy completion TIMEOUT 60)
pi_script_test(deploy package TIMEOUT 600)
pi_script_test(deploy dashboard_sql TIMEOUT 120 FIXTURES pg)
# presence-ingest(1): renders (man -l), lists every option, is installed.
pi_script_test(deploy manpage TIMEOUT 60 ENV "PI_BUILD_DIR=${CMAKE_BINARY_DIR}")
