"""Strict, vectorised parsing of data files with clear, one-line error messages.

Every reader of privrec's input files goes through this module, so every problem is reported
the same way: a :class:`~privrec.errors.DataError` whose message is one line,
``path:line: field 'name' = 'value', expected ...`` (or ``path: ...`` when no single line is
to blame).

* :func:`open_binary` / :func:`read_bytes`: a file that cannot be opened (missing, permission
  denied, a directory) is a ``DataError`` naming the file and what it should have held.
* :func:`read_fields` (headerless delimited files) and :func:`read_csv_strings` (CSV with a
  header) return every field as a string and record each row's line number, for messages.
* :func:`to_int` range-checks every integer field: a value outside the field's declared range
  or outside int64 (e.g. ``1e20`` or ``99999999999999999999``), a non-finite one (``nan``,
  ``inf``) or a non-integer is a ``DataError``; nothing is cast silently.
* :func:`to_float` parses a continuous field: missing markers become NaN, ``inf`` (also an
  overflow such as ``1e400``) and non-numbers are a ``DataError``.
* :func:`categorical_attribute` / :func:`continuous_attribute` build an attribute from a CSV
  column and warn (:class:`AttributeWarning`, at load time) about an attribute with a single
  class, or with classes of fewer than :data:`MIN_CLASS_USERS` users.

Missing values
    In attribute files, a value is missing when, after stripping surrounding whitespace, it is
    one of :data:`MISSING_MARKERS`, the spellings pandas reads as missing by default:
    the empty string, ``NA``, ``N/A``, ``n/a``, ``#N/A``, ``#N/A N/A``, ``#NA``, ``<NA>``,
    ``NaN``, ``nan``, ``-NaN``, ``-nan``, ``None``, ``NULL``, ``null``, ``1.#IND``,
    ``-1.#IND``, ``1.#QNAN``, ``-1.#QNAN``. So ``NaN``, ``nan``, ``NA``, ``N/A``, ``None``,
    ``null`` and an empty field are all one thing, "unknown", never a class of their own. The
    match is case-sensitive, as in pandas: lower-case ``none`` stays a class (MovieLens 100K
    has an occupation "none").
"""

from __future__ import annotations

import io
import math
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, NoReturn

import numpy as np
import pandas as pd

from privrec.data.attributes import Attribute
from privrec.errors import DataError

__all__ = [
    "MIN_CLASS_USERS",
    "MISSING_MARKERS",
    "AttributeWarning",
    "attribute_columns",
    "categorical_attribute",
    "check_unique_pairs",
    "continuous_attribute",
    "is_missing",
    "line_of",
    "open_binary",
    "read_bytes",
    "read_csv_strings",
    "read_fields",
    "to_float",
    "to_int",
    "warn_thin_attribute",
]

#: Spellings of "no value" in attribute files (compared after ``strip()``, case-sensitively):
#: pandas' default ``na_values``.
MISSING_MARKERS: frozenset[str] = frozenset(
    {
        "", "NA", "N/A", "n/a", "#N/A", "#N/A N/A", "#NA", "<NA>", "NaN", "nan", "-NaN", "-nan",
        "None", "NULL", "null", "1.#IND", "-1.#IND", "1.#QNAN", "-1.#QNAN",
    }
)  # fmt: skip

#: A class with fewer users than this makes an attribute's leakage scores unreliable.
MIN_CLASS_USERS = 5

_INT64_MIN = int(np.iinfo(np.int64).min)
_INT64_MAX = int(np.iinfo(np.int64).max)
_INT_LITERAL = r"[+-]?[0-9]+"
_NONFINITE_WORDS = frozenset({"nan", "inf", "infinity"})
_WHITESPACE = np.frombuffer(b" \t\r\x0b\x0c", dtype=np.uint8)


class AttributeWarning(UserWarning):
    """An attribute loads but is a poor audit/training target (one class, very rare classes)."""


_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])


def _warn(message: str) -> None:
    """Emit an :class:`AttributeWarning` attributed to the first caller outside privrec."""
    level = 1
    frame = sys._getframe(0)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    warnings.warn(message, AttributeWarning, stacklevel=level)


def _users(n: int) -> str:
    return f"{n} user" if n == 1 else f"{n} users"


# ---------------------------------------------------------------------------- opening files
def open_binary(path: str | Path, expected: str) -> BinaryIO:
    """Open ``path`` for binary reading; any ``OSError`` → one-line :class:`DataError`.

    ``expected`` says what the file should hold (it ends the message), e.g. ``"a CSV file"``.
    """
    path = Path(path)
    try:
        return open(path, "rb")  # noqa: SIM115 - the caller closes it
    except FileNotFoundError:
        raise DataError(f"{path}: no such file; expected {expected}") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory; expected {expected}") from None
    except OSError as exc:
        raise _unreadable(path, exc, expected) from None


def _unreadable(path: str | Path, exc: OSError, expected: str) -> DataError:
    return DataError(
        f"{path}: cannot read ({exc.strerror or exc}); expected {expected}, readable by this user"
    )


def read_bytes(path: str | Path, expected: str) -> bytes:
    """The whole content of ``path``; an unreadable file → :class:`DataError` (see above)."""
    with open_binary(path, expected) as f:
        try:
            return f.read()
        except OSError as exc:
            raise _unreadable(path, exc, expected) from None


def _line_spans(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive, at the newline) of every line of a byte buffer."""
    ends = np.flatnonzero(buf == 10)
    if len(buf) and buf[-1] != 10:
        ends = np.append(ends, len(buf))
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
    return starts, ends


# ---------------------------------------------------------------------------- headerless files
def read_fields(
    path: Path, sep: str, names: list[str], *, encoding: str = "latin-1"
) -> pd.DataFrame:
    """Read a headerless file whose lines hold exactly ``len(names)`` ``sep``-separated fields.

    All fields come back as strings. A line with another field count is a :class:`DataError`
    naming the file and line.
    """
    path = Path(path)
    raw = read_bytes(path, f"lines of {len(names)} {sep!r}-separated fields ({', '.join(names)})")
    if not raw.strip():
        raise DataError(f"{path}: file is empty, expected lines of {len(names)} fields")
    if len(sep) > 1:
        raw = raw.replace(sep.encode(encoding), b"\t")
        sep = "\t"
    try:
        df = pd.read_csv(
            io.BytesIO(raw),
            sep=sep,
            header=None,
            names=names,
            dtype=str,
            keep_default_na=False,
            encoding=encoding,
            engine="c",
            skip_blank_lines=True,
            quoting=3,
            on_bad_lines="error",
        )
    except pd.errors.ParserError as exc:
        msg = str(exc).strip().replace("\n", " ")
        line = _line_from_message(msg)
        where = f"{path}:{line}" if line else str(path)
        raise DataError(
            f"{where}: expected {len(names)} fields ({', '.join(names)}); {msg}"
        ) from None
    # pandas pads lines with too few fields: count separators per line, vectorised.
    buf = np.frombuffer(raw, dtype=np.uint8)
    starts, ends = _line_spans(buf)
    lengths = ends - starts
    has_cr = (lengths > 0) & (buf[np.clip(ends - 1, 0, None)] == 13)
    nonblank = (lengths - has_cr) > 0
    seps = np.flatnonzero(buf == ord(sep))
    counts = np.bincount(np.searchsorted(ends, seps), minlength=len(ends))[: len(ends)]
    bad = np.flatnonzero(nonblank & (counts != len(names) - 1))
    if len(bad):
        i = int(bad[0])
        text = raw[starts[i] : min(ends[i], starts[i] + 80)].decode(encoding, "replace")
        raise DataError(
            f"{path}:{i + 1}: expected {len(names)} fields ({', '.join(names)}), "
            f"got {counts[i] + 1}: {text!r}"
        )
    line_no = np.flatnonzero(nonblank) + 1
    df.attrs["line_numbers"] = line_no
    df.attrs["path"] = str(path)
    return df


def _line_from_message(msg: str) -> int | None:
    m = re.search(r"line (\d+)", msg)
    return int(m.group(1)) if m else None


# ---------------------------------------------------------------------------- CSV with a header
def read_csv_strings(path: str | Path) -> pd.DataFrame:
    """Read a CSV with a header as strings; a missing, unreadable, empty or malformed file →
    :class:`DataError`.

    ``df.attrs["path"]`` and ``df.attrs["line_numbers"]`` (the file line of each row) are set for
    :func:`line_of` and the converters below.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a directory; expected a CSV file with a header line")
    raw = read_bytes(path, "a CSV file with a header line")
    try:
        df = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file is empty, expected a CSV with a header line") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        msg = str(exc).strip().replace("\n", " ")
        raise DataError(f"{path}: not a valid CSV ({msg})") from None
    if df.empty:
        raise DataError(f"{path}: no data rows after the header")
    df.attrs["path"] = str(path)
    df.attrs["line_numbers"] = _csv_line_numbers(raw, len(df))
    return df


def _csv_line_numbers(raw: bytes, n_rows: int) -> np.ndarray:
    """File line of each data row: the non-blank lines after the header (pandas skips blank
    ones). Quoted fields spanning lines make that count differ; then rows are numbered as if
    each took one line."""
    buf = np.frombuffer(raw, dtype=np.uint8)
    starts, ends = _line_spans(buf)
    # only an empty line or one starting with white space can be blank: check those few
    first = buf[np.clip(starts, 0, max(len(buf) - 1, 0))] if len(buf) else buf
    maybe = np.flatnonzero((ends == starts) | np.isin(first, _WHITESPACE))
    blank = [int(i) for i in maybe if not raw[starts[i] : ends[i]].strip()]
    nonblank = np.delete(np.arange(1, len(ends) + 1), blank)
    if len(nonblank) == n_rows + 1:
        return nonblank[1:]
    return np.arange(n_rows) + 2


# ---------------------------------------------------------------------------- field converters
def _lines(df: pd.DataFrame) -> np.ndarray:
    return np.asarray(df.attrs.get("line_numbers", np.arange(len(df)) + 1))


def line_of(df: pd.DataFrame, row: int) -> str:
    """``path:line`` of a parsed row, for error messages."""
    return f"{df.attrs.get('path', '<data>')}:{int(_lines(df)[row])}"


def is_missing(text: pd.Series) -> np.ndarray:
    """Mask of values that are missing-value markers (:data:`MISSING_MARKERS`)."""
    return text.astype(str).str.strip().isin(MISSING_MARKERS).to_numpy(dtype=bool)


def to_int(
    df: pd.DataFrame, column: str, *, lo: int | None = None, hi: int | None = None
) -> np.ndarray:
    """Convert a string column to int64, range-checked.

    A value that is not an integer (``1.5``, ``x``, empty), not finite (``nan``, ``inf``), or
    outside ``lo..hi`` (each bound defaulting to, and clipped at, the int64 limits) is a
    :class:`DataError` naming ``path:line``, the field and the expected range. Integer literals
    are converted exactly; ``1e3`` and ``7.0`` are accepted as the integers they denote.
    """
    s = df[column].astype(str).str.strip()
    low = _INT64_MIN if lo is None else max(int(lo), _INT64_MIN)
    high = _INT64_MAX if hi is None else min(int(hi), _INT64_MAX)
    vals = pd.to_numeric(s, errors="coerce").to_numpy()
    if vals.dtype.kind == "i":  # every value an integer literal that fits int64: the fast path
        ints = vals.astype(np.int64)
        bad = (ints < low) | (ints > high)
        if bad.any():
            _int_error(df, column, int(np.flatnonzero(bad)[0]), lo, hi, "range")
        return ints
    # Some value is a float, beyond int64 or not a number: find the first bad one, vectorised,
    # converting integer literals too large for a float's 53-bit mantissa exactly.
    f = vals.astype(np.float64)
    literal = s.str.fullmatch(_INT_LITERAL).to_numpy(dtype=bool)
    ok = np.isfinite(f) & (f == np.floor(f)) & (f >= -(2.0**63)) & (f < 2.0**63)
    out = np.where(ok, f, 0).astype(np.int64)
    texts = s.to_numpy(dtype=object)
    for j in np.flatnonzero(literal & ~(np.abs(f) < 2.0**53)).tolist():
        v = int(texts[j])
        ok[j] = _INT64_MIN <= v <= _INT64_MAX
        out[j] = v if ok[j] else 0
    bad = ~ok | (out < low) | (out > high)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        word = str(texts[i]).lower().lstrip("+-")
        if ok[i]:
            why = "range"  # an int64, outside lo..hi
        elif literal[i] or (np.isfinite(f[i]) and f[i] == math.floor(f[i])):
            why = "int64"  # an integer, beyond int64
        elif np.isinf(f[i]) or word in _NONFINITE_WORDS:
            why = "finite"
        else:
            why = "integer"
        _int_error(df, column, i, lo, hi, why)
    return out


def _int_error(
    df: pd.DataFrame, column: str, row: int, lo: int | None, hi: int | None, why: str
) -> NoReturn:
    rng = ""
    if lo is not None or hi is not None or why == "int64":
        low = _INT64_MIN if lo is None else max(int(lo), _INT64_MIN)
        high = _INT64_MAX if hi is None else min(int(hi), _INT64_MAX)
        rng = f" in {low}..{high}"
        if why == "int64":
            rng += " (it must fit in a 64-bit integer)"
    kind = "a finite integer" if why == "finite" else "an integer"
    raise DataError(
        f"{line_of(df, row)}: field '{column}' = {df[column].iloc[row]!r}, expected {kind}{rng}"
    )


def to_float(df: pd.DataFrame, column: str, *, label: str = "column") -> np.ndarray:
    """Convert a string column to float64; missing markers → NaN.

    A value that is not a number, or not finite (``inf``, or too large: ``1e400``) is a
    :class:`DataError` naming ``path:line`` and the column.
    """
    text = df[column].astype(str).str.strip()
    missing = is_missing(text)
    num = pd.to_numeric(text.mask(missing), errors="coerce").to_numpy(dtype=np.float64, copy=True)
    bad = ~np.isfinite(num) & ~missing
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        expected = "a finite number" if np.isinf(num[i]) else "a number"
        raise DataError(
            f"{line_of(df, i)}: {label} '{column}' = {text.iloc[i]!r}, expected {expected} "
            "(continuous attribute; leave it empty or NA when unknown)"
        )
    return num


# ---------------------------------------------------------------------------- attributes
def categorical_attribute(df: pd.DataFrame, column: str, *, warn: bool = True) -> Attribute:
    """A categorical :class:`Attribute` from a CSV column: one value per row, missing markers
    → missing. Warns (:func:`warn_thin_attribute`) about a single class or very rare classes."""
    text = df[column].astype(str).str.strip()
    missing = is_missing(text)
    where = df.attrs.get("path", "<data>")
    if missing.all():
        raise DataError(
            f"{where}: column '{column}' has no values (every entry is empty or a missing "
            f"marker such as NA); expected class labels"
        )
    raw = text.to_numpy(dtype=object)
    raw[missing] = None
    attr = Attribute.categorical(column, raw)
    if warn:
        warn_thin_attribute(attr, where)
    return attr


def continuous_attribute(df: pd.DataFrame, column: str, *, warn: bool = True) -> Attribute:
    """A continuous :class:`Attribute` from a CSV column (see :func:`to_float`). Warns
    (:func:`warn_thin_attribute`) when it has fewer than two distinct known values."""
    attr = Attribute(column, "continuous", to_float(df, column))
    if warn:
        warn_thin_attribute(attr, df.attrs.get("path", "<data>"))
    return attr


def warn_thin_attribute(
    attr: Attribute, source: str | Path, *, min_users: int = MIN_CLASS_USERS
) -> None:
    """Warn (:class:`AttributeWarning`) when an attribute cannot be a meaningful target: a
    categorical one with a single class or with classes of fewer than ``min_users`` users, a
    continuous one with fewer than two distinct values.

    Called at load time, before any training or audit uses the attribute.
    """
    if attr.kind == "continuous":
        known = attr.values[attr.known]
        distinct = len(np.unique(known))
        if distinct < 2:
            what = "no known values" if distinct == 0 else f"a single value ({known[0]:g})"
            _warn(
                f"{source}: continuous attribute '{attr.name}' has {what}; there is nothing to "
                "infer, so its leakage scores are meaningless"
            )
        return
    counts = np.bincount(attr.values[attr.known], minlength=attr.n_classes)
    present = [(c, int(n)) for c, n in zip(attr.classes, counts, strict=True) if n > 0]
    if len(present) == 1:
        c, n = present[0]
        _warn(
            f"{source}: attribute '{attr.name}' has a single class ({c!r}, {_users(n)}); there "
            "is nothing to infer, so its leakage scores are meaningless"
        )
        return
    thin = [(c, n) for c, n in present if n < min_users]
    if thin:
        listed = ", ".join(f"{c!r} ({n})" for c, n in thin[:5])
        more = f" and {len(thin) - 5} more" if len(thin) > 5 else ""
        _warn(
            f"{source}: attribute '{attr.name}' has {len(thin)} "
            f"{'class' if len(thin) == 1 else 'classes'} with fewer than "
            f"{min_users} users: {listed}{more}; scores on them are noise: merge or drop rare "
            "classes, or mark unknown values as empty/NA"
        )


def attribute_columns(
    df: pd.DataFrame, columns: Sequence[str], continuous: Sequence[str] = ()
) -> dict[str, Attribute]:
    """Attributes for ``columns`` of a CSV read by :func:`read_csv_strings` (rows = users).

    Every column is parsed (and any :class:`DataError` raised) before any warning is given.
    """
    attrs = {
        c: continuous_attribute(df, c, warn=False)
        if c in continuous
        else categorical_attribute(df, c, warn=False)
        for c in columns
    }
    for attr in attrs.values():
        warn_thin_attribute(attr, df.attrs.get("path", "<data>"))
    return attrs


# ---------------------------------------------------------------------------- checks
def check_unique_pairs(df: pd.DataFrame, users: np.ndarray, items: np.ndarray) -> None:
    """Reject duplicate (user, item) rows, naming both lines."""
    pairs = pd.DataFrame({"u": users, "i": items})
    dup = pairs.duplicated(keep=False).to_numpy()
    if dup.any():
        rows = np.flatnonzero(dup)
        first = rows[0]
        same = (users[rows] == users[first]) & (items[rows] == items[first])
        second = rows[np.flatnonzero(same)[1]]
        raise DataError(
            f"{line_of(df, second)}: duplicate (user, item) pair ({users[first]}, {items[first]}) "
            f"already at line {line_of(df, first).rsplit(':', 1)[1]}; each pair may appear once"
        )
