"""Resilience: a circuit breaker per service K2 depends on."""
