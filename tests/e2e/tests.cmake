# End-to-end tests: against the real Kafka broker and PostgreSQL.
