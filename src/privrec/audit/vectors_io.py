"""Read user vectors to audit from the formats people have them in."""

from __future__ import annotations

import io
import math
import zipfile
import zlib
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from privrec.artifacts import Embeddings, load_embeddings
from privrec.data.parsing import open_binary, read_bytes
from privrec.errors import ConfigError, DataError

VECTOR_FORMATS = "a privrec run directory, .npz, .npy (with an ids file), .csv or .parquet"
_NPZ_EXPECTED = "a .npz archive (numpy.savez) holding arrays user_ids and user_vectors"
_NPY_EXPECTED = "a .npy array (numpy.save)"
_MODEL_EXPECTED = (
    "a .npz archive (numpy.savez) holding arrays user_ids, user_vectors, item_ids, "
    "item_vectors and optionally item_bias"
)
#: errors of a damaged zip archive or of its compressed members
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError)


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

    Every ``.npy`` array (on its own or inside a ``.npz``) has its header checked against the
    bytes that follow it before anything is allocated, so a truncated file or a header claiming
    an absurd shape is a one-line :class:`DataError`, never a huge allocation.

    Raises:
        DataError: missing or unreadable file, unknown format, a truncated or corrupt
            ``.npz``/``.npy``, missing arrays/columns, a non-numeric column, vectors that are not
            2-D, or ids that do not line up with the vectors (each naming the file at fault).
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
        emb_file = path / "embeddings.npz"
        if emb_file.is_file():
            _check_npz(emb_file)  # headers against sizes, before load_embeddings allocates
        try:
            emb = load_embeddings(path)
        except _ZIP_ERRORS as exc:
            raise DataError(f"{emb_file}: {_zip_problem(exc)}; expected {_NPZ_EXPECTED}") from None
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


MODEL_ARRAYS = ("user_ids", "user_vectors", "item_ids", "item_vectors")
"""Arrays a model's ``.npz`` must hold (``item_bias`` is optional: zeros when absent)."""


def load_model_vectors(path: Path) -> Embeddings:
    """Load a whole model's vectors: a privrec run directory (its ``embeddings.npz``) or an
    ``.npz`` with arrays ``user_ids``, ``user_vectors``, ``item_ids``, ``item_vectors`` and
    optionally ``item_bias`` (zeros when absent), e.g. exported from another library. Scores
    are ``user · item + bias``. Never unpickles; every problem is a one-line
    :class:`DataError` naming the file and the array."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    if path.is_dir():
        emb_file = path / "embeddings.npz"
        if emb_file.is_file():
            _check_npz(emb_file)
        try:
            return load_embeddings(path)
        except _ZIP_ERRORS as exc:
            raise DataError(
                f"{emb_file}: {_zip_problem(exc)}; expected {_MODEL_EXPECTED}"
            ) from None
    if path.suffix.lower() != ".npz":
        raise DataError(f"{path}: expected a privrec run directory or {_MODEL_EXPECTED}")
    _check_npz(path)  # every member's header against its size, before anything is allocated
    with open_binary(path, _MODEL_EXPECTED) as f, zipfile.ZipFile(f) as zf:
        names = {n.removesuffix(".npy") for n in zf.namelist()}
    keys = MODEL_ARRAYS + (("item_bias",) if "item_bias" in names else ())
    missing = [k for k in MODEL_ARRAYS if k not in names]
    if missing:
        raise DataError(
            f"{path}: missing array(s) {', '.join(missing)}; expected {_MODEL_EXPECTED}"
        )
    arrays = _read_npz(path, keys)
    users = _aligned(path, arrays["user_ids"], arrays["user_vectors"])
    items = np.asarray(arrays["item_vectors"])
    if items.ndim != 2 or items.shape[1] != users.shape[1]:
        raise DataError(
            f"{path}: array 'item_vectors' must be items × {users.shape[1]} (the user vectors' "
            f"dimension), got shape {items.shape}"
        )
    item_ids = np.asarray(arrays["item_ids"])
    if item_ids.ndim != 1 or len(item_ids) != len(items):
        raise DataError(f"{path}: {item_ids.size} item ids for {len(items)} item vectors")
    bias = np.asarray(arrays.get("item_bias", np.zeros(len(items))))
    if bias.shape != (len(items),):
        raise DataError(
            f"{path}: array 'item_bias' must have one value per item ({len(items)}), "
            f"got shape {bias.shape}"
        )
    for name, arr in (("user_vectors", users), ("item_vectors", items), ("item_bias", bias)):
        if not np.issubdtype(arr.dtype, np.number):
            raise DataError(f"{path}: array '{name}' must be numeric, got dtype {arr.dtype}")
        if arr.size and not np.isfinite(arr).all():
            raise DataError(f"{path}: array '{name}' contains NaN or infinite values")
    return Embeddings(
        _ids(arrays["user_ids"]),
        users.astype(np.float32),
        _ids(item_ids),
        items.astype(np.float32),
        bias.astype(np.float32),
    )


def _from_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    arrays = _read_npz(path, ("user_ids", "user_vectors"))
    ids, vectors = arrays["user_ids"], arrays["user_vectors"]
    _check_2d(path, vectors)
    return _ids(ids), _aligned(path, ids, vectors)


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line (numpy's and pandas' may span several)."""
    return " ".join(str(exc).split())


def _zip_problem(exc: BaseException) -> str:
    return f"not a readable .npz, truncated or corrupt ({_one_line(exc)})"


def _check_npz(path: Path) -> None:
    """Check every member's header against its size (reads the headers only)."""
    _read_npz(path, None)


def _read_npz(path: Path, keys: tuple[str, ...] | None) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of a ``.npz`` (``None``: only check every member's header)."""
    with open_binary(path, _NPZ_EXPECTED) as f:
        try:
            zf = zipfile.ZipFile(f)
        except _ZIP_ERRORS as exc:
            raise DataError(f"{path}: {_zip_problem(exc)}; expected {_NPZ_EXPECTED}") from None
        with zf:
            members = {n.removesuffix(".npy"): n for n in zf.namelist()}
            wanted = tuple(members) if keys is None else keys
            missing = [k for k in wanted if k not in members]
            if missing:
                raise DataError(
                    f"{path}: missing array(s) {', '.join(missing)}; it holds "
                    f"{', '.join(members) or 'nothing'}"
                )
            out: dict[str, np.ndarray] = {}
            for key in wanted:
                info = zf.getinfo(members[key])
                where = f"{path}: array '{key}'"
                try:
                    with zf.open(info) as m:
                        _check_npy_header(m, info.file_size, where)
                        if keys is None:
                            continue
                        m.seek(0)
                        out[key] = np.lib.format.read_array(m, allow_pickle=False)
                except DataError:
                    raise
                except ValueError as exc:  # object arrays would need pickle
                    raise DataError(
                        f"{path}: not a plain .npz of numeric/string arrays ({_one_line(exc)})"
                    ) from None
                except _ZIP_ERRORS as exc:
                    raise DataError(
                        f"{where}: {_zip_problem(exc)}; expected {_NPZ_EXPECTED}"
                    ) from None
            return out


def _check_npy_header(fp: IO[bytes], size: int, where: str) -> None:
    """Read a ``.npy`` header from ``fp`` and check that the ``size``-byte file holds the data
    it announces: a truncated file or an absurd claimed shape → :class:`DataError`."""
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version in ((2, 0), (3, 0)):
            shape, _, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except (ValueError, SyntaxError, TypeError) as exc:
        raise DataError(
            f"{where}: not a valid .npy header ({_one_line(exc)}); expected {_NPY_EXPECTED}"
        ) from None
    if dtype.hasobject:
        return  # refused when read (allow_pickle=False), with its own message
    need = math.prod(shape) * dtype.itemsize
    have = size - fp.tell()
    if need > have:
        raise DataError(
            f"{where}: header claims shape {tuple(shape)} of {dtype} ({need:,} bytes) but only "
            f"{max(have, 0):,} bytes of data follow; expected a complete .npy array (the file is "
            "truncated, or its header is corrupt)"
        )


def _from_npy(path: Path, ids_path: Path | None, id_column: str) -> tuple[np.ndarray, np.ndarray]:
    if ids_path is None:
        raise ConfigError(f"{path}: a .npy holds no user ids; give the ids file (--ids)")
    vectors = _load_npy(path)
    _check_2d(path, vectors)
    ids_path = Path(ids_path)
    if not ids_path.is_file():
        raise DataError(f"{ids_path}: no such file")
    if ids_path.suffix.lower() == ".npy":
        ids = _load_npy(ids_path)
        if ids.ndim != 1:
            raise DataError(f"{ids_path}: ids must be a 1-D array, got shape {ids.shape}")
    else:
        raw = read_bytes(ids_path, "user ids, one per line")
        try:
            lines = raw.decode("utf-8").splitlines()
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
    return _ids(ids), _aligned(ids_path, ids, vectors, vectors_path=path)


def _load_npy(path: Path) -> np.ndarray:
    with open_binary(path, _NPY_EXPECTED) as f:
        try:
            size = path.stat().st_size
            _check_npy_header(f, size, str(path))
            f.seek(0)
            return np.lib.format.read_array(f, allow_pickle=False)
        except DataError:
            raise
        except ValueError as exc:
            raise DataError(f"{path}: not a plain .npy array ({_one_line(exc)})") from None
        except OSError as exc:
            raise DataError(f"{path}: cannot read as .npy ({_one_line(exc)})") from None


def _from_table(path: Path, id_column: str) -> tuple[np.ndarray, np.ndarray]:
    if path.suffix.lower() == ".csv":
        raw = read_bytes(path, "a CSV file with a header line")
        try:
            df = pd.read_csv(io.BytesIO(raw))
        except pd.errors.EmptyDataError:
            raise DataError(f"{path}: file is empty, expected a CSV with a header line") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: not a valid CSV ({_one_line(exc)})") from None
    else:
        try:
            with open_binary(path, "a parquet file") as f:
                df = pd.read_parquet(f)
        except ImportError:
            raise DataError(
                f"{path}: reading parquet needs pyarrow, which is not installed "
                "(pip install 'privrec[parquet]'), or convert the file to .csv/.npz"
            ) from None
        except DataError:
            raise
        except Exception as exc:  # pyarrow raises its own error types
            raise DataError(f"{path}: not a readable parquet file ({_one_line(exc)})") from None
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


def _check_2d(path: Path, vectors: np.ndarray) -> None:
    """Vectors must be a users × dims matrix; the message names the vector file."""
    vectors = np.asarray(vectors)
    if vectors.ndim != 2:
        raise DataError(
            f"{path}: user vectors must be 2-D (users × dims), got shape {vectors.shape}"
        )


def _aligned(
    path: Path, ids: np.ndarray, vectors: np.ndarray, *, vectors_path: Path | None = None
) -> np.ndarray:
    """Check one id per vector. ``path`` holds the ids; ``vectors_path`` the vectors if another
    file (a .npy beside an ids file)."""
    vectors = np.asarray(vectors)
    _check_2d(vectors_path or path, vectors)
    if np.asarray(ids).ndim != 1 or len(ids) != len(vectors):
        source = f" in {vectors_path}" if vectors_path is not None else ""
        raise DataError(
            f"{path}: {np.asarray(ids).size} user ids for {len(vectors)} vectors{source}; "
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
