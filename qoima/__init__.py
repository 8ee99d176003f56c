"""Qoima: change-data-capture into the unified data warehouse (command line and settings)."""
