# Integration tests: against the harness's real PostgreSQL.
