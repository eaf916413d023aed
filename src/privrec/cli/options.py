"""Parsers of the CLI's composite option values (``ATTRIBUTE=WEIGHT``, comma lists)."""

from __future__ import annotations

import math
import types
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Union, get_args, get_origin

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


BOOLEAN_WORDS: dict[str, bool] = {
    "true": True,
    "false": False,
    "1": True,
    "0": False,
    "yes": True,
    "no": False,
    "on": True,
    "off": False,
}
"""The spellings of a boolean option value (case-insensitive); anything else is an error."""


def parse_key_values(items: Sequence[str], flag: str, types: Mapping[str, Any]) -> dict[str, Any]:
    """``["n_iterations=5", "shrinkage=off"]`` → ``{"n_iterations": 5, "shrinkage": False}``,
    each value converted strictly by its option's type (``types``): booleans from
    :data:`BOOLEAN_WORDS` only, integers, finite numbers, ``none``/``null`` only where the
    option may be empty, a choice only among its values. Unknown keys are kept as strings
    (the library names them with the valid ones)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not key:
            raise ConfigError(f"{flag} expects KEY=VALUE, got {item!r}")
        out[key] = _value(raw, types[key], f"{flag} {key}") if key in types else raw
    return out


def _value(raw: str, tp: Any, where: str) -> Any:
    low = raw.lower()
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if low in ("none", "null") and len(args) < len(get_args(tp)):
            return None
        tp = args[0] if len(args) == 1 else str
    if get_origin(tp) is tuple:  # tuple[X, ...]: comma-separated values
        parts = [p.strip() for p in raw.split(",") if p.strip()]
        if not parts:
            raise ConfigError(f"{where}: expected comma-separated values, got {raw!r}")
        return tuple(_value(p, get_args(tp)[0], where) for p in parts)
    if get_origin(tp) is Literal:
        if raw not in get_args(tp):
            shown = ", ".join(map(str, get_args(tp)))
            raise ConfigError(f"{where}: expected one of {shown}, got {raw!r}")
        return raw
    if tp is bool:
        if low not in BOOLEAN_WORDS:
            words = "/".join(BOOLEAN_WORDS)
            raise ConfigError(f"{where}: expected a boolean ({words}), got {raw!r}")
        return BOOLEAN_WORDS[low]
    if tp is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{where}: expected an integer, got {raw!r}") from None
    if tp is float:
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{where}: expected a number, got {raw!r}") from None
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {raw!r}")
        return value
    return raw
