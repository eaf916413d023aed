"""Parsers of the CLI's composite option values (``ATTRIBUTE=WEIGHT``, comma lists)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from privrec.errors import ConfigError


def parse_weights(items: Sequence[str], flag: str = "--adv") -> dict[str, float]:
    """Parse ``["gender=0.1", "age=1"]`` (the values of a repeatable ``flag``) into
    ``{"gender": 0.1, "age": 1.0}``; a malformed item or a non-finite weight is an error
    naming ``flag``."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"{flag} expects ATTRIBUTE=WEIGHT, got {item!r}")
        try:
            weight = float(value)
        except ValueError:
            raise ConfigError(f"{flag} {item!r}: weight {value!r} is not a number") from None
        if not math.isfinite(weight):
            raise ConfigError(f"{flag} {item!r}: the weight must be a finite number")
        out[name.strip()] = weight
    return out
