"""Real servers for development, tests and the benchmark: Redis, Prism, gunicorn, PostgreSQL.

Neither the service nor its tests own them: tests/ and bench/ both start them
from here, and nothing the service runs imports this package.
"""
