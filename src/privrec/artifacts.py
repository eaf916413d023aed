"""Run artifacts on disk: atomic writes, run directories, embeddings without pickle.

A run directory holds ``config.json``, ``metrics.json`` and ``embeddings.npz`` (arrays
``user_ids``, ``user_vectors``, ``item_ids``, ``item_vectors``, ``item_bias``). It is written
under a temporary name and renamed into place at the end, so a directory that exists is complete.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from privrec.errors import DataError

EMBEDDING_ARRAYS = ("user_ids", "user_vectors", "item_ids", "item_vectors", "item_bias")


def jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON values: mappings with string keys, lists, numbers (NumPy scalars
    and arrays converted; NaN and infinities → null), strings (paths as strings)."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _new_temporary(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _new_temporary(path: Path) -> tuple[int, str]:
    """A new hidden file beside ``path``, opened for writing with the permissions of an
    ordinary file (``0o666`` less the process umask, applied by the OS)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise DataError(f"{path.parent}: cannot create a temporary file")  # pragma: no cover


def _new_temporary_dir(path: Path) -> Path:
    """A new hidden directory beside ``path`` with an ordinary directory's permissions."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.partial"
        try:
            os.mkdir(tmp, 0o777)
            return tmp
        except FileExistsError:
            continue
    raise DataError(f"{path.parent}: cannot create a temporary directory")  # pragma: no cover


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj) -> None:
    atomic_write_text(path, json.dumps(jsonable(obj), indent=2, allow_nan=False) + "\n")


def read_json(path: str | Path) -> dict:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None


@contextlib.contextmanager
def atomic_dir(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling directory that becomes ``path`` when the block succeeds.

    If the block fails nothing appears at ``path`` (and an existing ``path`` is untouched).
    An existing ``path`` is an error unless ``overwrite``.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise DataError(f"{path} already exists (use --overwrite to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temporary_dir(path)
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@dataclass(frozen=True, eq=False)
class Embeddings:
    """User and item vectors with their original ids (the content of ``embeddings.npz``)."""

    user_ids: np.ndarray
    user_vectors: np.ndarray
    item_ids: np.ndarray
    item_vectors: np.ndarray
    item_bias: np.ndarray

    def __post_init__(self) -> None:
        if self.user_vectors.ndim != 2 or len(self.user_vectors) != len(self.user_ids):
            raise DataError("embeddings: user_vectors must be (n_users, dim) aligned to user_ids")
        if len(self.item_vectors) != len(self.item_ids) or len(self.item_bias) != len(
            self.item_ids
        ):
            raise DataError("embeddings: item arrays must be aligned to item_ids")

    def replace_users(self, user_vectors: np.ndarray) -> Embeddings:
        if user_vectors.shape != self.user_vectors.shape:
            raise DataError(
                f"new user vectors have shape {user_vectors.shape}, "
                f"expected {self.user_vectors.shape}"
            )
        return Embeddings(
            self.user_ids,
            user_vectors.astype(np.float32),
            self.item_ids,
            self.item_vectors,
            self.item_bias,
        )


def save_embeddings(path: str | Path, emb: Embeddings) -> None:
    """Write ``embeddings.npz`` (float32 vectors, no object arrays, atomically).

    The zip entries carry a fixed date, so the same arrays always give the same bytes.
    """
    import io
    import zipfile

    arrays = {
        "user_ids": _plain_ids(emb.user_ids),
        "user_vectors": np.asarray(emb.user_vectors, dtype=np.float32),
        "item_ids": _plain_ids(emb.item_ids),
        "item_vectors": np.asarray(emb.item_vectors, dtype=np.float32),
        "item_bias": np.asarray(emb.item_bias, dtype=np.float32),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, arr, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue())
    atomic_write_bytes(path, buf.getvalue())


def load_embeddings(path: str | Path) -> Embeddings:
    """Read an ``embeddings.npz`` (never unpickles)."""
    path = Path(path)
    if path.is_dir():
        path = path / "embeddings.npz"
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in EMBEDDING_ARRAYS if k not in z.files]
            if missing:
                raise DataError(f"{path}: missing array(s) {', '.join(missing)}")
            return Embeddings(*(z[k] for k in EMBEDDING_ARRAYS))
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except ValueError as exc:  # object arrays would need pickle
        raise DataError(f"{path}: not a plain .npz of numeric/string arrays ({exc})") from None


def _plain_ids(ids: np.ndarray) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.dtype == object:
        return ids.astype(str)
    return ids
