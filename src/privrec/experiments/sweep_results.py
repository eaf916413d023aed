"""A sweep's results table: built from its runs' rows, written and read back."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from privrec.errors import DataError
from privrec.runs.run_spec import jsonable


def results_frame(points, summaries: Mapping, errors: Mapping):
    """One row per grid point (finished, diverged or failed), reversals flagged."""
    import pandas as pd

    rows = []
    for values, s in points:
        row = dict(summaries.get(s.run_id) or {})
        if not row:
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
    df = pd.DataFrame(rows)
    from privrec.experiments.pareto import flag_reversals

    df = flag_reversals(df)
    first = [
        c
        for c in ("run_id", "dataset", "method", "embedding_size", "lambda", "seed", "status")
        if c in df.columns
    ]
    return df[first + [c for c in df.columns if c not in first]]


def write_results(results, out_dir: str | Path) -> list[Path]:
    """Write ``results.csv``, ``results.json`` and (with pyarrow) ``results.parquet``."""
    import io

    from privrec.artifacts import atomic_write_bytes, atomic_write_json, atomic_write_text

    out_dir = Path(out_dir)
    written = [out_dir / "results.csv", out_dir / "results.json"]
    atomic_write_text(written[0], results.to_csv(index=False))
    atomic_write_json(written[1], jsonable(results.to_dict(orient="records")))
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return written
    buf = io.BytesIO()
    frame = results.copy()
    for col in frame.columns:
        if frame[col].dtype == object:
            frame[col] = frame[col].map(
                lambda v: None if v is None or (isinstance(v, float) and v != v) else str(v)
            )
    frame.to_parquet(buf, index=False)
    atomic_write_bytes(out_dir / "results.parquet", buf.getvalue())
    written.append(out_dir / "results.parquet")
    return written


def load_results(sweep_dir: str | Path):
    """The results table of a sweep directory (``results.json``) as a DataFrame."""
    import pandas as pd

    from privrec.artifacts import read_json

    path = Path(sweep_dir) / "results.json"
    if not path.exists():
        raise DataError(f"{sweep_dir}: no results.json (is this a sweep directory?)")
    data = read_json(path)
    return pd.DataFrame(data)
