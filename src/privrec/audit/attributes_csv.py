"""Read user attributes from a CSV on their own (no interactions needed for a vector audit)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from privrec.audit.vectors_io import _ids
from privrec.data.attributes import Attribute, UserAttributes
from privrec.data.tabular import read_csv_strings
from privrec.errors import DataError


def read_attributes_csv(
    path: Path,
    user_col: str = "user",
    continuous: Sequence[str] = (),
    names: Sequence[str] | None = None,
) -> UserAttributes:
    """Attributes from a CSV with a header: one user per row, ``user_col`` and attribute columns.

    Values are categorical (class = the text, empty = missing) unless the column is named in
    ``continuous`` (numbers, empty = missing).

    Args:
        path: the CSV file.
        user_col: user-id column.
        continuous: columns to read as numbers.
        names: columns to read (default: every column except ``user_col``).

    Raises:
        DataError: missing file/column, duplicate user id, empty user id, or a non-numeric value
            in a continuous column (naming the line).
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
        raise DataError(f"{path}:{int(np.flatnonzero(empty)[0]) + 2}: empty '{user_col}'")
    dup = raw_ids.duplicated().to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise DataError(f"{path}:{i + 2}: duplicate user id {raw_ids.iloc[i]!r}")
    cols = list(names) if names else [c for c in df.columns if c != user_col]
    unknown = [c for c in [*cols, *continuous] if c not in df.columns]
    if unknown:
        raise DataError(f"{path}: no column '{unknown[0]}'; columns are: {', '.join(df.columns)}")
    if not cols:
        raise DataError(f"{path}: no attribute columns besides the user column '{user_col}'")
    attrs: dict[str, Attribute] = {}
    for col in cols:
        text = df[col].str.strip()
        if col in continuous:
            num = pd.to_numeric(text.mask(text == ""), errors="coerce")  # empty → NaN
            bad = (num.isna() & (text != "")).to_numpy()
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise DataError(
                    f"{path}:{i + 2}: column '{col}' = {text.iloc[i]!r}, expected a number "
                    "(continuous attribute)"
                )
            attrs[col] = Attribute(col, "continuous", num.to_numpy(dtype=float))
        else:
            attrs[col] = Attribute.categorical(col, text.to_numpy(dtype=object))
    return UserAttributes(_ids(raw_ids.to_numpy()), attrs)
