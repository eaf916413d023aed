"""Load a dataset by name from wherever its files are."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from privrec.data.dataset import Dataset
from privrec.errors import ConfigError

DATASETS: tuple[str, ...] = ("synthetic", "ml-100k", "ml-1m", "csv")


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    *,
    download: bool = True,
    progress: bool = True,
    synthetic: dict | None = None,
    csv: dict | None = None,
    data_url: str | None = None,
) -> Dataset:
    """Load ``name`` (one of :data:`DATASETS`).

    MovieLens files are looked up in ``data_dir``, then ``$PRIVREC_DATA_DIR/<name>/``, then the
    user cache, and downloaded (verified) if absent, from ``data_url`` (a mirror's base URL or
    the zip's URL), else ``$PRIVREC_DATA_URL``, else GroupLens; see
    :func:`~privrec.data.download.archive_url`. ``synthetic`` holds
    :class:`~privrec.data.synthetic.SyntheticConfig` fields; ``csv`` the keyword arguments of
    :func:`~privrec.data.tabular.load_csv`.
    """
    if name == "synthetic":
        from privrec.data.synthetic import SyntheticConfig, make_synthetic

        try:
            return make_synthetic(SyntheticConfig(**(synthetic or {})))
        except TypeError as exc:
            raise ConfigError(f"synthetic dataset: {exc}") from None
    if name == "csv":
        from privrec.data.tabular import load_csv

        opts = dict(csv or {})
        if "interactions_path" not in opts:
            raise ConfigError("dataset 'csv' needs an interactions file (CLI: --interactions FILE)")
        recorded = {k: str(v) if isinstance(v, Path) else v for k, v in opts.items()}
        return replace(load_csv(**opts), options=recorded)
    if name in ("ml-1m", "ml-100k"):
        from privrec.data.download import resolve_dataset_dir
        from privrec.data.movielens import load_ml1m, load_ml100k

        folder = resolve_dataset_dir(
            name, data_dir, download=download, progress=progress, url=data_url
        )
        return load_ml1m(folder) if name == "ml-1m" else load_ml100k(folder)
    raise ConfigError(f"unknown dataset {name!r}; expected one of: {', '.join(DATASETS)}")
