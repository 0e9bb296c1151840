"""Staying up under failure and overload: circuit breakers and degradation."""
