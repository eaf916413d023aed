"""Read user attributes from a CSV on their own (no interactions needed for a vector audit).

Parsing is :mod:`privrec.data.parsing`'s: after stripping whitespace, pandas' missing-value
spellings (:data:`~privrec.data.parsing.MISSING_MARKERS`: the empty string, ``NA``, ``N/A``,
``n/a``, ``#N/A``, ``<NA>``, ``NaN``, ``nan``, ``None``, ``NULL``, ``null``, ...) mean
"unknown", never a class of their own;
continuous values must be finite numbers; an attribute with a single class, or with classes of
fewer than :data:`~privrec.data.parsing.MIN_CLASS_USERS` users, loads with an
:class:`~privrec.data.parsing.AttributeWarning` (at load time, before any audit uses it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from privrec.audit.vectors_io import _ids
from privrec.data.attributes import UserAttributes
from privrec.data.parsing import attribute_columns, line_of, read_csv_strings
from privrec.errors import DataError


def read_attributes_csv(
    path: Path,
    user_col: str = "user",
    continuous: Sequence[str] = (),
    names: Sequence[str] | None = None,
) -> UserAttributes:
    """Attributes from a CSV with a header: one user per row, ``user_col`` and attribute columns.

    Values are categorical (class = the text; a missing marker such as empty, ``NA`` or ``null``
    = missing) unless the column is named in ``continuous`` (finite numbers; a missing marker =
    missing).

    Args:
        path: the CSV file.
        user_col: user-id column.
        continuous: columns to read as numbers.
        names: columns to read (default: every column except ``user_col``).

    Raises:
        DataError: missing or unreadable file, missing column, duplicate user id, empty user id,
            a column with no values, or a non-numeric or non-finite value in a continuous column
            (naming the line).

    Warns:
        AttributeWarning: an attribute with a single class or very rare classes.
    """
    path = Path(path)
    df = read_csv_strings(path)
    if user_col not in df.columns:
        raise DataError(
            f"{path}: no user column '{user_col}' (set by --user-col); columns are: "
            f"{', '.join(df.columns)}"
        )
    if df.empty:
        raise DataError(f"{path}: no data rows after the header")
    raw_ids = df[user_col].str.strip()
    empty = (raw_ids == "").to_numpy()
    if empty.any():
        raise DataError(f"{line_of(df, int(np.flatnonzero(empty)[0]))}: empty '{user_col}'")
    dup = raw_ids.duplicated().to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise DataError(f"{line_of(df, i)}: duplicate user id {raw_ids.iloc[i]!r}")
    cols = list(names) if names else [c for c in df.columns if c != user_col]
    unknown = [c for c in [*cols, *continuous] if c not in df.columns]
    if unknown:
        raise DataError(f"{path}: no column '{unknown[0]}'; columns are: {', '.join(df.columns)}")
    if not cols:
        raise DataError(f"{path}: no attribute columns besides the user column '{user_col}'")
    attrs = attribute_columns(df, cols, list(continuous))
    return UserAttributes(_ids(raw_ids.to_numpy()), attrs)
