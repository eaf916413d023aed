"""A JSON-ready summary of a dataset: counts, split, attribute distributions, baselines."""

from __future__ import annotations

from typing import Any

import numpy as np

from privrec.data.dataset import Dataset
from privrec.data.split import leave_last_out


def dataset_info(ds: Dataset) -> dict:
    inter = ds.interactions
    info: dict[str, Any] = {
        "dataset": ds.name,
        "counts": inter.summary(),
        "split": leave_last_out(inter).summary(),
        "attributes": {},
        "notes": list(ds.notes),
    }
    for name, a in ds.attributes.columns.items():
        entry: dict = {"kind": a.kind, "known": int(a.known.sum())}
        if a.kind == "categorical":
            entry["distribution"] = a.distribution()
            entry["majority_class"], entry["majority_share"] = a.majority()
        else:
            v = a.values[a.known]
            entry.update(
                mean=float(np.mean(v)),
                std=float(np.std(v)),
                min=float(np.min(v)),
                max=float(np.max(v)),
            )
        info["attributes"][name] = entry
    return info
