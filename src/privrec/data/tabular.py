"""Generic loader: an interactions CSV plus a user-attributes CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from privrec.data.attributes import Attribute, UserAttributes
from privrec.data.dataset import Dataset
from privrec.data.interactions import Interactions
from privrec.errors import DataError


def read_csv_strings(path: Path) -> pd.DataFrame:
    """Read a CSV with a header as strings; a missing, empty or malformed file → DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file is empty, expected a CSV with a header line") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a valid CSV ({exc})") from None
    if df.empty:
        raise DataError(f"{path}: no data rows after the header")
    return df


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
        time_col: timestamp column (integers); if absent from the file, file order is used.
        attribute_cols: attribute columns to load (default: every other column).
        continuous: attribute columns to treat as continuous numbers (others are categorical).
        name: dataset name recorded in results.
    """
    ipath = Path(interactions_path)
    df = read_csv_strings(ipath)
    _need(df, ipath, user_col, "--user-col")
    _need(df, ipath, item_col, "--item-col")
    lines = np.arange(len(df)) + 2  # header is line 1
    for col in (user_col, item_col):
        empty = (df[col].str.strip() == "").to_numpy()
        if empty.any():
            raise DataError(f"{ipath}:{lines[np.flatnonzero(empty)[0]]}: empty '{col}'")
    users = df[user_col].str.strip().to_numpy()
    items = df[item_col].str.strip().to_numpy()
    ts = None
    if time_col and time_col in df.columns:
        t = pd.to_numeric(df[time_col].str.strip(), errors="coerce").to_numpy()
        bad = np.isnan(t) | (t != np.floor(t))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{ipath}:{lines[i]}: field '{time_col}' = {df[time_col].iloc[i]!r}, "
                "expected an integer timestamp"
            )
        ts = t.astype(np.int64)
    dup = pd.DataFrame({"u": users, "i": items}).duplicated().to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise DataError(
            f"{ipath}:{lines[i]}: duplicate (user, item) pair ({users[i]}, {items[i]}); "
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
    if len(np.unique(a_users)) != len(a_users):
        vals, counts = np.unique(a_users, return_counts=True)
        raise DataError(f"{apath}: duplicate user id {vals[counts > 1][0]}")
    unknown = ~np.isin(a_users, user_ids)
    if unknown.any():
        raise DataError(
            f"{apath}:{int(np.flatnonzero(unknown)[0]) + 2}: user {a_users[unknown][0]} has no "
            f"interactions in {ipath} ({int(unknown.sum())} such users)"
        )
    all_users = np.unique(user_ids)
    inter = Interactions.from_ids(user_ids, item_ids, ts, all_user_ids=all_users)
    cols = attribute_cols or [c for c in adf.columns if c != user_col]
    continuous_cols = set(continuous or [])
    attrs: dict[str, Attribute] = {}
    pos = {u: i for i, u in enumerate(a_users.tolist())}
    take = np.array([pos.get(u, -1) for u in inter.user_ids.tolist()])
    for col in cols:
        _need(adf, apath, col, "--attribute")
        raw = adf[col].str.strip().to_numpy().astype(object)
        aligned = np.where(take >= 0, raw[take.clip(min=0)], "")
        if col in continuous_cols:
            values = pd.Series(aligned)
            num = pd.to_numeric(values.mask(values == ""), errors="coerce")  # empty → NaN
            badmask = num.isna().to_numpy() & (aligned != "")
            if badmask.any():
                raise DataError(
                    f"{apath}: column '{col}' has non-numeric value "
                    f"{str(aligned[badmask][0])!r}; expected a number (continuous)"
                )
            attrs[col] = Attribute(col, "continuous", num.to_numpy(dtype=float))
        else:
            attrs[col] = Attribute.categorical(col, aligned)
    return Dataset(name, inter, UserAttributes(inter.user_ids, attrs))


def _maybe_int(values: np.ndarray) -> np.ndarray:
    """Integer ids when every id is an integer literal, else strings."""
    try:
        as_int = values.astype(np.int64)
    except (ValueError, TypeError):
        return values.astype(str)
    if np.array_equal(as_int.astype(str), values.astype(str)):
        return as_int
    return values.astype(str)
