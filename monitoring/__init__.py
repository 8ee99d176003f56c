"""Metrics every Qoima process exports, Prometheus configuration and alert rules, status."""
