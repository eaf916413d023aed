"""Exception types raised by privrec.

All are ``ValueError`` subclasses where the cause is bad input, so callers that only know the
standard library still catch them.
"""

from __future__ import annotations


class PrivrecError(Exception):
    """Base class of privrec's own errors."""


class DataError(PrivrecError, ValueError):
    """Input data is malformed: the message names the file, line or field and what was expected."""


class ConfigError(PrivrecError, ValueError):
    """A configuration value or command-line option is out of range or unknown."""


class FitError(PrivrecError, RuntimeError):
    """Training diverged (non-finite or exploding loss, collapsing validation accuracy).

    ``history`` holds the per-epoch metrics recorded before the failure and ``reason`` a short
    machine-readable cause (``"nan_loss"``, ``"exploding_norm"``, ``"collapse"``).
    """

    def __init__(self, message: str, *, reason: str, history: list[dict] | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.history = list(history or [])
