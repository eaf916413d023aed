"""Read user vectors to audit from the formats people have them in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from privrec.artifacts import load_embeddings
from privrec.errors import ConfigError, DataError

VECTOR_FORMATS = "a privrec run directory, .npz, .npy (with an ids file), .csv or .parquet"


def load_vectors(
    path: Path, ids_path: Path | None = None, id_column: str = "user_id"
) -> tuple[np.ndarray, np.ndarray]:
    """Load ``(user_ids, vectors)``.

    Supported:

    * a privrec run directory (its ``embeddings.npz``);
    * ``.npz`` with arrays ``user_ids`` and ``user_vectors`` (read without pickle);
    * ``.npy`` vectors plus ``ids_path``: a ``.npy`` array or a text file (``.txt``/``.csv``)
      with one id per line (a first line equal to ``id_column`` is taken as a header);
    * ``.csv`` / ``.parquet`` with the id column ``id_column`` and numeric vector columns
      (parquet needs pyarrow).

    Ids that are all integer literals are returned as int64, else as strings. The vectors are
    returned as read (validation of NaN/inf and duplicates happens in the audit).

    Raises:
        DataError: missing file, unknown format, missing arrays/columns, a non-numeric column,
            or ids that do not line up with the vectors.
        ConfigError: ``ids_path`` given for a format that carries its own ids, or missing for
            ``.npy``.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    suffix = path.suffix.lower()
    if ids_path is not None and (path.is_dir() or suffix != ".npy"):
        raise ConfigError(f"{path}: an ids file only goes with .npy vectors (this file has ids)")
    if path.is_dir():
        emb = load_embeddings(path)
        return _ids(emb.user_ids), np.asarray(emb.user_vectors)
    if suffix == ".npz":
        return _from_npz(path)
    if suffix == ".npy":
        return _from_npy(path, ids_path, id_column)
    if suffix in (".csv", ".parquet", ".pq"):
        return _from_table(path, id_column)
    raise DataError(
        f"{path}: unknown vectors format {suffix or '(no suffix)'}; expected {VECTOR_FORMATS}"
    )


def _from_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("user_ids", "user_vectors") if k not in z.files]
            if missing:
                raise DataError(
                    f"{path}: missing array(s) {', '.join(missing)}; it holds "
                    f"{', '.join(z.files) or 'nothing'}"
                )
            ids, vectors = z["user_ids"], z["user_vectors"]
    except ValueError as exc:  # object arrays would need pickle; or not a zip at all
        raise DataError(f"{path}: not a plain .npz of numeric/string arrays ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read as .npz ({exc})") from None
    return _ids(ids), _aligned(path, ids, vectors)


def _from_npy(path: Path, ids_path: Path | None, id_column: str) -> tuple[np.ndarray, np.ndarray]:
    if ids_path is None:
        raise ConfigError(f"{path}: a .npy holds no user ids; give the ids file (--ids)")
    vectors = _load_npy(path)
    ids_path = Path(ids_path)
    if not ids_path.is_file():
        raise DataError(f"{ids_path}: no such file")
    if ids_path.suffix.lower() == ".npy":
        ids = _load_npy(ids_path)
        if ids.ndim != 1:
            raise DataError(f"{ids_path}: ids must be a 1-D array, got shape {ids.shape}")
    else:
        try:
            lines = ids_path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise DataError(f"{ids_path}: not a UTF-8 text file of ids") from None
        lines = [ln.strip() for ln in lines]
        if lines and lines[0] == id_column:
            lines = lines[1:]
        if any("," in ln for ln in lines):
            raise DataError(f"{ids_path}: expected one id per line, found a line with commas")
        if any(ln == "" for ln in lines):
            raise DataError(
                f"{ids_path}:{lines.index('') + 1}: empty line; expected one id per line"
            )
        ids = np.array(lines, dtype=str)
    return _ids(ids), _aligned(ids_path, ids, vectors)


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"{path}: not a plain .npy array ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read as .npy ({exc})") from None


def _from_table(path: Path, id_column: str) -> tuple[np.ndarray, np.ndarray]:
    if path.suffix.lower() == ".csv":
        try:
            df = pd.read_csv(path)
        except pd.errors.EmptyDataError:
            raise DataError(f"{path}: file is empty, expected a CSV with a header line") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: not a valid CSV ({exc})") from None
    else:
        try:
            df = pd.read_parquet(path)
        except ImportError:
            raise DataError(
                f"{path}: reading parquet needs pyarrow, which is not installed "
                "(pip install 'privrec[parquet]'), or convert the file to .csv/.npz"
            ) from None
        except Exception as exc:  # pyarrow raises its own error types
            raise DataError(f"{path}: not a readable parquet file ({exc})") from None
    if id_column not in df.columns:
        raise DataError(
            f"{path}: no id column '{id_column}' (set by --id-column); columns are: "
            f"{', '.join(map(str, df.columns))}"
        )
    value_cols = [c for c in df.columns if c != id_column]
    if not value_cols:
        raise DataError(f"{path}: no vector columns besides the id column '{id_column}'")
    for c in value_cols:
        if not (pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])):
            bad = df[c][pd.to_numeric(df[c], errors="coerce").isna() & df[c].notna()]
            example = f" (e.g. {bad.iloc[0]!r})" if len(bad) else ""
            raise DataError(
                f"{path}: column '{c}' is not numeric{example}; every column except "
                f"'{id_column}' must hold vector components"
            )
    ids = df[id_column]
    if ids.isna().any():
        row = int(np.flatnonzero(ids.isna().to_numpy())[0])
        raise DataError(f"{path}: empty '{id_column}' in data row {row + 1}")
    return _ids(ids.to_numpy()), df[value_cols].to_numpy(dtype=np.float64)


def _aligned(path: Path, ids: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors)
    if vectors.ndim != 2:
        raise DataError(
            f"{path}: user vectors must be 2-D (users × dims), got shape {vectors.shape}"
        )
    if np.asarray(ids).ndim != 1 or len(ids) != len(vectors):
        raise DataError(
            f"{path}: {np.asarray(ids).size} user ids for {len(vectors)} vectors; "
            "need one id per vector"
        )
    return vectors


def _ids(values: np.ndarray) -> np.ndarray:
    """Integer ids when every id is an integer literal, else strings."""
    values = np.asarray(values)
    if np.issubdtype(values.dtype, np.integer):
        return values.astype(np.int64)
    as_str = values.astype(str)
    try:
        as_int = as_str.astype(np.int64)
    except (ValueError, TypeError, OverflowError):
        return as_str
    if np.array_equal(as_int.astype(str), as_str):
        return as_int
    return as_str
