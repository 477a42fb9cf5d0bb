# Unit tests: one cmocka executable per module.
