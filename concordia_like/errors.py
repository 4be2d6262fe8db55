"""User-facing errors. The CLI prints these as one line and exits non-zero; anything
else is a bug and keeps its traceback."""

from __future__ import annotations


class ConcordiaError(Exception):
    """Base of every error that is the user's input or environment, not our bug."""


class ConfigError(ConcordiaError):
    """A bad flag, file or field: the message names which and what is wrong."""
