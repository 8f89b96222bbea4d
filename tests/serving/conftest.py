"""Serving tests use the shared registry fixtures of tests/conftest.py."""
