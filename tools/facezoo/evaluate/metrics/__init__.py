"""Metrics: pure functions, arrays in, numbers out."""
