"""Strict, vectorised parsing of delimited interaction files with clear error messages."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from privrec.errors import DataError


def read_fields(
    path: Path, sep: str, names: list[str], *, encoding: str = "latin-1"
) -> pd.DataFrame:
    """Read a headerless file whose lines hold exactly ``len(names)`` ``sep``-separated fields.

    All fields come back as strings. A line with another field count is a :class:`DataError`
    naming the file and line.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
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
        msg = str(exc)
        line = _line_from_message(msg)
        where = f"{path}:{line}" if line else str(path)
        raise DataError(
            f"{where}: expected {len(names)} fields ({', '.join(names)}); {msg}"
        ) from None
    # pandas pads lines with too few fields: count separators per line, vectorised.
    buf = np.frombuffer(raw, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10)
    if len(buf) and buf[-1] != 10:
        ends = np.append(ends, len(buf))
    starts = np.concatenate([[0], ends[:-1] + 1])
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
    import re

    m = re.search(r"line (\d+)", msg)
    return int(m.group(1)) if m else None


def to_int(
    df: pd.DataFrame, column: str, *, lo: int | None = None, hi: int | None = None
) -> np.ndarray:
    """Convert a string column to int64; non-integers or out-of-range values → DataError."""
    s = df[column].str.strip()
    vals = pd.to_numeric(s, errors="coerce")
    bad = vals.isna().to_numpy() | (vals.to_numpy() != np.floor(vals.to_numpy()))
    if lo is not None:
        bad |= vals.to_numpy() < lo
    if hi is not None:
        bad |= vals.to_numpy() > hi
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        line = int(df.attrs.get("line_numbers", np.arange(len(df)) + 1)[i])
        rng = ""
        if lo is not None or hi is not None:
            rng = f" in {lo if lo is not None else '-inf'}..{hi if hi is not None else 'inf'}"
        raise DataError(
            f"{df.attrs.get('path', '<data>')}:{line}: field '{column}' = {df[column].iloc[i]!r}, "
            f"expected an integer{rng}"
        )
    return vals.to_numpy().astype(np.int64)


def line_of(df: pd.DataFrame, row: int) -> str:
    """``path:line`` of a parsed row, for error messages."""
    lines = df.attrs.get("line_numbers", np.arange(len(df)) + 1)
    return f"{df.attrs.get('path', '<data>')}:{int(lines[row])}"


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
