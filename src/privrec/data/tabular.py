"""Generic loader: an interactions CSV plus a user-attributes CSV.

Both files are read by :mod:`privrec.data.parsing`, so every problem is a one-line
:class:`~privrec.errors.DataError` naming ``file:line`` and the field: timestamps are
range-checked integers (int64; ``1e20``, ``inf`` and non-integers are rejected, never cast).

Attribute values: after stripping whitespace, pandas' missing-value spellings
(:data:`~privrec.data.parsing.MISSING_MARKERS`: the empty string, ``NA``, ``N/A``, ``n/a``,
``#N/A``, ``<NA>``, ``NaN``, ``nan``, ``None``, ``NULL``, ``null``, ...) mean "unknown",
never a class of their own.
Continuous values must be finite numbers. An attribute with a single class, or with classes of
fewer than :data:`~privrec.data.parsing.MIN_CLASS_USERS` users, loads with an
:class:`~privrec.data.parsing.AttributeWarning`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from privrec.data.attributes import Attribute, UserAttributes
from privrec.data.dataset import Dataset
from privrec.data.interactions import Interactions
from privrec.data.parsing import attribute_columns, line_of, read_csv_strings, to_int
from privrec.errors import DataError

__all__ = ["load_csv", "read_csv_strings"]


def _need(df: pd.DataFrame, path: Path, col: str, option: str) -> None:
    if col not in df.columns:
        raise DataError(
            f"{path}: no column '{col}' (set by {option}); columns are: {', '.join(df.columns)}"
        )


def load_csv(
    interactions_path: str | Path,
    attributes_path: str | Path | None = None,
    *,
    user_col: str = "user",
    item_col: str = "item",
    time_col: str | None = "timestamp",
    attribute_cols: list[str] | None = None,
    continuous: list[str] | None = None,
    name: str = "csv",
) -> Dataset:
    """Load interactions (``user, item[, timestamp]``) and optional user attributes.

    Args:
        interactions_path: CSV with a header; one interaction per row.
        attributes_path: CSV with a header holding ``user_col`` and attribute columns.
        user_col: user-id column name (both files).
        item_col: item-id column name.
        time_col: timestamp column (integers that fit in int64); if absent from the file, file
            order is used.
        attribute_cols: attribute columns to load (default: every other column).
        continuous: attribute columns to treat as continuous numbers (others are categorical).
        name: dataset name recorded in results.

    Raises:
        DataError: an unreadable or malformed file, a missing column, an empty id, a duplicate
            pair or user, a timestamp that is not an int64 integer, a non-finite or non-numeric
            continuous value (each naming the file and line).

    Warns:
        AttributeWarning: an attribute with a single class or very rare classes.
    """
    ipath = Path(interactions_path)
    df = read_csv_strings(ipath)
    _need(df, ipath, user_col, "--user-col")
    _need(df, ipath, item_col, "--item-col")
    for col in (user_col, item_col):
        empty = (df[col].str.strip() == "").to_numpy()
        if empty.any():
            raise DataError(f"{line_of(df, int(np.flatnonzero(empty)[0]))}: empty '{col}'")
    users = df[user_col].str.strip().to_numpy()
    items = df[item_col].str.strip().to_numpy()
    ts = None
    if time_col and time_col in df.columns:
        ts = to_int(df, time_col)
    dup = pd.DataFrame({"u": users, "i": items}).duplicated().to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise DataError(
            f"{line_of(df, i)}: duplicate (user, item) pair ({users[i]}, {items[i]}); "
            "each pair may appear once"
        )
    user_ids = _maybe_int(users)
    item_ids = _maybe_int(items)

    if attributes_path is None:
        inter = Interactions.from_ids(user_ids, item_ids, ts)
        return Dataset(name, inter, UserAttributes(inter.user_ids, {}))

    apath = Path(attributes_path)
    adf = read_csv_strings(apath)
    _need(adf, apath, user_col, "--user-col")
    a_users = _maybe_int(adf[user_col].str.strip().to_numpy())
    dup_user = pd.Series(a_users).duplicated().to_numpy()
    if dup_user.any():
        i = int(np.flatnonzero(dup_user)[0])
        raise DataError(f"{line_of(adf, i)}: duplicate user id {a_users[i]}")
    unknown = ~np.isin(a_users, user_ids)
    if unknown.any():
        raise DataError(
            f"{line_of(adf, int(np.flatnonzero(unknown)[0]))}: user {a_users[unknown][0]} has "
            f"no interactions in {ipath} ({int(unknown.sum())} such users)"
        )
    all_users = np.unique(user_ids)
    inter = Interactions.from_ids(user_ids, item_ids, ts, all_user_ids=all_users)
    cols = attribute_cols or [c for c in adf.columns if c != user_col]
    for col in cols:
        _need(adf, apath, col, "--attribute")
    pos = {u: i for i, u in enumerate(a_users.tolist())}
    take = np.array([pos.get(u, -1) for u in inter.user_ids.tolist()], dtype=np.int64)
    attrs: dict[str, Attribute] = {}
    # one value per attribute-file row (checked, with line numbers), then aligned to the index:
    # users without an attribute row get missing values
    for col, a in attribute_columns(adf, cols, continuous or []).items():
        fill = -1 if a.kind == "categorical" else np.nan
        values = np.where(take >= 0, a.values[take.clip(min=0)], fill)
        attrs[col] = Attribute(col, a.kind, values, a.classes)
    return Dataset(name, inter, UserAttributes(inter.user_ids, attrs))


def _maybe_int(values: np.ndarray) -> np.ndarray:
    """Integer ids when every id is an integer literal that fits in int64, else strings."""
    try:
        as_int = values.astype(np.int64)
    except (ValueError, TypeError, OverflowError):
        return values.astype(str)
    if np.array_equal(as_int.astype(str), values.astype(str)):
        return as_int
    return values.astype(str)
