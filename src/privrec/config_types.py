"""One generic checker for the frozen configuration dataclasses, driven by their type hints.

Every configuration (:class:`~privrec.training.config.TrainConfig`,
:class:`~privrec.defences.adversarial.AdversarySpec`, :class:`~privrec.defences.DependenceSpec`,
:class:`~privrec.data.synthetic.SyntheticConfig`, the run and sweep specs) declares its fields
with precise types — ``Literal[...]`` for a choice, ``int``, ``float``, ``bool``, ``str``,
``X | None``, ``tuple[X, ...]``, ``Mapping[str, X]`` — and:

* :func:`check_fields` validates an instance against those types (called from
  ``__post_init__``), so a wrong value fails with the field's name and what was expected;
* :func:`build` makes an instance from a plain mapping (a TOML table, a JSON record),
  converting where it is lossless (an integer where a float is expected, a list where a tuple
  is) and naming unknown keys with a suggestion;
* :func:`choices` lists the values of a ``Literal`` field (the CLI's ``--help`` shows them).

Floats must be finite everywhere: NaN and infinity are rejected as hyper-parameters.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import types
import typing
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, Literal, Union, get_args, get_origin

from privrec.errors import ConfigError


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def field_names(cls: type) -> list[str]:
    """The dataclass fields of ``cls``, in order."""
    return [f.name for f in dataclasses.fields(cls)]


def choices(cls: type, name: str) -> tuple[str, ...]:
    """The values of the ``Literal`` field ``name`` of ``cls`` (e.g. the optimizers)."""
    tp = _hints(cls)[name]
    found = _literals(tp)
    if not found:
        raise TypeError(f"{cls.__name__}.{name} is not a Literal field")
    return tuple(str(v) for v in found)


def _literals(tp: Any) -> tuple[Any, ...]:
    if get_origin(tp) is Literal:
        return get_args(tp)
    if _is_union(tp):
        return tuple(v for arg in get_args(tp) for v in _literals(arg))
    return ()


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def unknown_key(key: str, where: str, allowed: Sequence[str]) -> ConfigError:
    """The error for an unknown ``key`` in the table ``where`` (with a close match, if any)."""
    close = difflib.get_close_matches(key, list(allowed), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    name = f"{where}.{key}" if where else key
    return ConfigError(f"unknown key '{name}'{hint}; allowed: {', '.join(allowed)}")


def check_keys(d: Any, allowed: Sequence[str], where: str) -> None:
    """``d`` must be a mapping whose keys are all in ``allowed``."""
    if not isinstance(d, Mapping):
        raise ConfigError(f"'{where}' must be a table of keys, got {type(d).__name__}")
    for key in d:
        if key not in allowed:
            raise unknown_key(str(key), where, allowed)


def convert(value: Any, tp: Any, where: str) -> Any:
    """``value`` as type ``tp`` (lossless conversions only), else a ConfigError naming
    ``where``."""
    if tp is Any:
        return value
    origin = get_origin(tp)
    if _is_union(tp):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"'{where}' may not be empty")
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return convert(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"'{where}': {'; or '.join(errors)}")
    if value is None:
        raise ConfigError(f"'{where}' may not be empty")
    if origin is Literal:
        allowed = get_args(tp)
        if isinstance(value, bool) or value not in allowed:
            shown = ", ".join(repr(a) for a in allowed)
            raise ConfigError(f"'{where}' must be one of {shown}, got {value!r}")
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"'{where}' must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"'{where}' must be an integer, got a boolean")
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"'{where}' must be an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ConfigError(f"'{where}' must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"'{where}' must be a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"'{where}' must be a string, got {value!r}")
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise ConfigError(f"'{where}' must be a list, got {value!r}")
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"'{where}' must have {len(args)} entries, got {len(value)}")
        return tuple(
            convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
    if origin in (Mapping, dict, typing.Mapping, typing.Dict):  # noqa: UP006
        if not isinstance(value, Mapping):
            raise ConfigError(f"'{where}' must be a table, got {value!r}")
        key_t, val_t = get_args(tp) or (Any, Any)
        return {
            convert(k, key_t, where): convert(v, val_t, f"{where}.{k}") for k, v in value.items()
        }
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise ConfigError(f"'{where}' must be a {tp.__name__}, got {value!r}")
    return value  # an annotation this checker does not know: left to the class


def check_fields(obj: Any, where: str = "") -> None:
    """Validate (and normalise: lists to tuples, ints to floats) every field of the frozen
    dataclass instance ``obj`` against its type hint."""
    cls: type = type(obj)
    hints = _hints(cls)
    prefix = where or _label(cls)
    for f in dataclasses.fields(cls):
        value = getattr(obj, f.name)
        checked = convert(value, hints[f.name], f"{prefix}.{f.name}")
        if checked is not value:
            object.__setattr__(obj, f.name, checked)


def build(cls: type, data: Mapping, where: str, defaults: Mapping | None = None) -> Any:
    """An instance of the dataclass ``cls`` from ``data`` (unknown keys are errors naming
    ``where``), over ``defaults``."""
    names = field_names(cls)
    check_keys(data, names, where)
    hints = _hints(cls)
    kwargs = {**dict(defaults or {}), **dict(data)}
    kwargs = {k: convert(v, hints[k], f"{where}.{k}") for k, v in kwargs.items()}
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        message = str(exc)
        raise ConfigError(
            message if message.startswith(f"'{where}") else f"{where}: {message}"
        ) from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _label(cls: type) -> str:
    return {
        "TrainConfig": "train",
        "AdversarySpec": "adversary",
        "DependenceSpec": "dependence",
        "SyntheticConfig": "data",
    }.get(cls.__name__, cls.__name__)
