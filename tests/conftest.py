"""Shared fixtures of the test suite."""

from server_fixture import openai_server  # noqa: F401 - a session fixture for server tests
