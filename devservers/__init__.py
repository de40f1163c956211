"""Real servers for development, tests and the benchmark: Redis, Prism, gunicorn, PostgreSQL."""
