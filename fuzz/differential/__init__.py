"""The differential test of the default rule pack against PostgreSQL itself (runner.py)."""
