"""Benchmarks: the service's hot webhooks against a bare Flask baseline."""
