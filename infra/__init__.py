"""Local and production infrastructure for Qoima."""
