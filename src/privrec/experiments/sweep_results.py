"""A sweep's results: the long table of every measurement, and the wide view derived from it.

``results_long.csv|json|parquet`` is the stored form: one record per measurement of every run
(columns :data:`privrec.runs.result_records.RECORD_COLUMNS`). ``results.csv|json|parquet`` is
the wide view (one row per grid point, ``<attr>_max_roc_auc``-style columns), *derived* from
the records by :func:`privrec.runs.result_records.wide_row` for people and spreadsheets; the
report and the Pareto front read the attributes and attackers from the long table, never from
column names.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from privrec.artifacts import jsonable
from privrec.errors import DataError
from privrec.runs.result_records import RECORD_COLUMNS, wide_row


def results_frame(
    points: list, stored: Mapping[str, dict], errors: Mapping[str, str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(wide, long)`` tables of a sweep: one wide row per grid point (finished, diverged or
    failed; reversals flagged) and every record of the finished runs."""
    from privrec.experiments.pareto import flag_reversals

    rows = []
    records: list[dict] = []
    for values, s in points:
        got = stored.get(s.run_id)
        if got:
            row = wide_row(got["run"], got["records"])
            records += got["records"]
        else:
            row = {
                "run_id": s.run_id,
                "dataset": s.dataset,
                "method": s.method,
                "embedding_size": s.train.embedding_size,
                "seed": s.seed,
                "status": "error",
                "reason": errors.get(s.run_id, "not run"),
            }
        for k, v in values.items():  # grid values under their grid key (unless standard)
            row.setdefault(k, jsonable(v))
        rows.append(row)
    long = pd.DataFrame(records, columns=list(RECORD_COLUMNS))
    df = flag_reversals(pd.DataFrame(rows), leakage_attributes(long))
    first = [
        c
        for c in ("run_id", "dataset", "method", "embedding_size", "lambda", "seed", "status")
        if c in df.columns
    ]
    return df[first + [c for c in df.columns if c not in first]], long


def leakage_attributes(long: pd.DataFrame, stage: str = "final") -> list[str]:
    """The categorical attributes audited in a long results table, in order."""
    if long.empty:
        return []
    audited = long[(long["stage"] == stage) & (long["kind"] == "categorical")]
    return list(dict.fromkeys(audited["attribute"]))


def attackers_of(long: pd.DataFrame, attribute: str, stage: str = "final") -> list[str]:
    """The attackers that audited ``attribute`` in a long results table, in suite order."""
    if long.empty:
        return []
    rows = long[(long["stage"] == stage) & (long["attribute"] == attribute)]
    return list(dict.fromkeys(a for a in rows["attacker"] if a))


def write_results(
    results: pd.DataFrame, out_dir: str | Path, records: pd.DataFrame | None = None
) -> list[Path]:
    """Write the wide view (``results.csv|json|parquet``) and, when given, the long table
    (``results_long.csv|json|parquet``); parquet only when pyarrow is importable."""
    out_dir = Path(out_dir)
    written = _write_table(results, out_dir / "results")
    if records is not None:
        written += _write_table(records, out_dir / "results_long")
    return written


def _write_table(frame: pd.DataFrame, stem: Path) -> list[Path]:
    from privrec.artifacts import atomic_write_bytes, atomic_write_json, atomic_write_text

    csv, js = stem.with_suffix(".csv"), stem.with_suffix(".json")
    atomic_write_text(csv, frame.to_csv(index=False))
    atomic_write_json(js, jsonable(frame.to_dict(orient="records")))
    written = [csv, js]
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return written
    buf = io.BytesIO()
    table = frame.copy()
    for col in table.columns:
        if table[col].dtype == object:
            table[col] = table[col].map(_plain)
    table.to_parquet(buf, index=False)
    atomic_write_bytes(stem.with_suffix(".parquet"), buf.getvalue())
    written.append(stem.with_suffix(".parquet"))
    return written


def _plain(v: Any) -> str | None:
    return None if v is None or (isinstance(v, float) and v != v) else str(v)


def load_results(sweep_dir: str | Path) -> pd.DataFrame:
    """The wide results table of a sweep directory (``results.json``)."""
    from privrec.artifacts import read_json

    path = Path(sweep_dir) / "results.json"
    if not path.exists():
        raise DataError(f"{sweep_dir}: no results.json (is this a sweep directory?)")
    return pd.DataFrame(read_json(path))


def load_records(sweep_dir: str | Path) -> pd.DataFrame:
    """The long results table of a sweep directory (``results_long.json``); empty (with the
    record columns) for a sweep written before it existed."""
    from privrec.artifacts import read_json

    path = Path(sweep_dir) / "results_long.json"
    if not path.exists():
        return pd.DataFrame(columns=list(RECORD_COLUMNS))
    return pd.DataFrame(read_json(path), columns=list(RECORD_COLUMNS))
