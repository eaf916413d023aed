"""Run artifacts on disk: atomic writes, run directories, embeddings without pickle.

A run directory holds ``config.json``, ``metrics.json`` and ``embeddings.npz`` (arrays
``user_ids``, ``user_vectors``, ``item_ids``, ``item_vectors``, ``item_bias``). It is written
under a temporary name (``.NAME.<host>-<pid>-<hex>.partial``) and renamed into place at the end,
with ``config.json`` written last, holding a manifest of every other file's size and SHA-256
(:func:`file_manifest`), so a directory that exists and matches its manifest is complete.

Safety of what is already on disk:

* :func:`atomic_dir` replaces (``overwrite``) only a directory privrec wrote (a ``config.json``
  with ``schema_version`` / ``privrec_version``; an empty directory too), never another
  directory or a file;
* the swap of an overwrite (old directory renamed to ``.NAME.old-<host>-<pid>-<hex>``, new one
  renamed into place, old one removed) is recoverable: :func:`recover_swap` (called before every
  write and read of that path) puts the old directory back when a killed process left no new one
  in place, removes a leftover old directory otherwise, and removes temporary directories of
  that path left by processes that no longer run;
* :func:`check_writable` tells, before any work, whether an output path can be written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import secrets
import shutil
import socket
import stat
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from privrec.errors import DataError

EMBEDDING_ARRAYS = ("user_ids", "user_vectors", "item_ids", "item_vectors", "item_bias")

_MANIFEST_VERSION = 1
_PRIVREC_CONFIG_KEYS = ("schema_version", "privrec_version")

_IMPORTED_AT = time.time()
"""Anything this process writes is newer than this (an upper bound of the process's start)."""


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
    atomic_write_files({Path(path): data})


def atomic_write_files(files: Mapping[Path, bytes]) -> None:
    """Write several files, all or none: each goes to a temporary file beside it (flushed to
    disk) first, and only when all are written are they renamed into place.

    Raises:
        DataError: one line naming the file that could not be written (nothing is replaced).
    """
    for target in files:
        if Path(target).is_dir():  # checked first: a rename onto it would fail half-way
            raise DataError(f"{target}: is a directory, cannot write a file there")
    temps: list[tuple[str, Path]] = []
    try:
        for target, data in files.items():
            path = Path(target)
            _make_parent(path)
            fd, tmp = _new_temporary(path)
            temps.append((tmp, path))
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
            except OSError as exc:
                raise DataError(f"{path}: cannot write ({_reason(exc)})") from None
        for tmp, path in temps:
            try:
                os.replace(tmp, path)
            except OSError as exc:
                raise DataError(f"{path}: cannot write ({_reason(exc)})") from None
    except BaseException:
        for tmp, _ in temps:
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
        except OSError as exc:
            raise DataError(f"{path}: cannot write in {path.parent} ({_reason(exc)})") from None
    raise DataError(f"{path.parent}: cannot create a temporary file")  # pragma: no cover


def _new_temporary_dir(path: Path) -> Path:
    """A new hidden directory beside ``path`` with an ordinary directory's permissions, named
    after this host and process (``.NAME.<host>-<pid>-<hex>.partial``) so that another process
    can tell a leftover from one in use (:func:`recover_swap`)."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{_owner_tag()}-{secrets.token_hex(6)}.partial"
        try:
            os.mkdir(tmp, 0o777)
            return tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise DataError(f"{path}: cannot write in {path.parent} ({_reason(exc)})") from None
    raise DataError(f"{path.parent}: cannot create a temporary directory")  # pragma: no cover


def _make_parent(path: Path) -> None:
    """Create ``path``'s parent directories; a one-line :class:`DataError` naming ``path`` if
    that is impossible (a parent is a file, no permission)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{path}: cannot create {path.parent} ({_reason(exc)})") from None


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def check_writable(path: str | Path, *, overwrite: bool | None = None) -> None:
    """Check, cheaply and before any work, that ``path`` can be written: its parent exists or
    can be created, and a file can be created (and is deleted again) in it.

    Nothing is left behind (no parent directory is created). With ``overwrite`` given, also
    check what :func:`atomic_dir` would refuse: an existing ``path`` without ``overwrite``, or
    one privrec did not write (after :func:`recover_swap`, so a swap a killed process left
    half done counts as the directory it will be).

    Raises:
        DataError: one line naming ``path`` and why it cannot be written.
    """
    path = Path(path)
    parent = path.parent
    existing = next((p for p in (parent, *parent.parents) if os.path.lexists(p)), Path("."))
    if not existing.is_dir():
        raise DataError(f"{path}: cannot write here ({existing} is a file, not a directory)")
    probe = existing / f".{path.name}.{secrets.token_hex(6)}.probe"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise DataError(f"{path}: cannot write in {existing} ({_reason(exc)})") from None
    with contextlib.suppress(OSError):
        os.unlink(probe)
    if overwrite is not None:
        recover_swap(path)
        _check_replaceable(path, overwrite)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj) -> None:
    atomic_write_text(path, json.dumps(jsonable(obj), indent=2, allow_nan=False) + "\n")


def read_json(path: str | Path) -> Any:
    """The JSON content of ``path``; a one-line :class:`DataError` naming it if it is missing,
    unreadable, not UTF-8 or not valid JSON (truncated, say)."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text (corrupt JSON file)") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({_reason(exc)})") from None


@contextlib.contextmanager
def atomic_dir(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling directory that becomes ``path`` when the block succeeds.

    If the block fails nothing appears at ``path`` (and an existing ``path`` is untouched).
    An existing ``path`` is an error unless ``overwrite``, and even then only a directory that
    privrec wrote is replaced (one with a ``config.json`` holding ``schema_version`` or
    ``privrec_version``, or an empty one); anything else is a one-line :class:`DataError`
    naming ``path``, and is left untouched. A swap that a killed process left half done, and
    temporary directories of ``path`` left by processes that no longer run, are dealt with
    first (:func:`recover_swap`).
    """
    path = Path(path)
    recover_swap(path)
    _check_replaceable(path, overwrite)
    _make_parent(path)
    tmp = _new_temporary_dir(path)
    try:
        yield tmp
    except BaseException:
        _remove_tree(tmp)
        raise
    _into_place(tmp, path, overwrite)


def _into_place(tmp: Path, path: Path, overwrite: bool) -> None:
    """Rename ``tmp`` to ``path``, replacing a directory privrec wrote there.

    The old directory is renamed aside first (``.NAME.old-<host>-<pid>-<hex>``) and removed
    once the new one is in place; if anything interrupts the two renames in this process the
    old one is put back, and if the process is killed between them :func:`recover_swap` puts
    it back the next time ``path`` is written or read."""
    old: Path | None = None
    try:
        try:
            if os.path.lexists(path):
                _check_replaceable(path, overwrite)  # it may have appeared while the block ran
                old = path.with_name(f".{path.name}.old-{_owner_tag()}-{secrets.token_hex(6)}")
                os.replace(path, old)
                try:
                    os.replace(tmp, path)
                except BaseException:
                    if not os.path.lexists(path):
                        os.replace(old, path)
                        old = None
                    raise
            else:
                os.replace(tmp, path)
        except OSError as exc:
            raise DataError(f"{path}: cannot move the new directory in ({_reason(exc)})") from None
    except BaseException:
        _remove_tree(tmp)
        raise
    if old is not None:
        _remove_tree(old)


def _check_replaceable(path: Path, overwrite: bool) -> None:
    if not os.path.lexists(path):
        return
    if not overwrite:
        raise DataError(f"{path} already exists (use --overwrite to replace it)")
    if not _written_by_privrec(path):
        what = "a directory" if path.is_dir() else "a file"
        raise DataError(
            f"{path}: refusing to overwrite {what} that is not a privrec run directory "
            "(no config.json of privrec in it); remove it yourself or choose another path"
        )


def _written_by_privrec(path: Path) -> bool:
    """Whether ``path`` is a directory privrec wrote (a ``config.json`` with ``schema_version``
    or ``privrec_version``, as every run directory since privrec 0.1 has), or an empty
    directory (nothing to lose)."""
    if not path.is_dir():
        return False
    try:
        if next(os.scandir(path), None) is None:
            return True
        record = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(record, dict) and any(k in record for k in _PRIVREC_CONFIG_KEYS)


def _remove_tree(path: Path) -> None:
    """Remove a directory tree (or a link or file) if it exists, ignoring errors."""
    if os.path.islink(path) or os.path.isfile(path):
        with contextlib.suppress(OSError):
            os.unlink(path)
    else:
        shutil.rmtree(path, ignore_errors=True)


# --- recovering from a killed writer ------------------------------------------------------------


def _owner_tag() -> str:
    """``<host>-<pid>`` of this process: a short hash of the host name and the process id."""
    host = hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]
    return f"{host}-{os.getpid()}"


def _pid_running(pid: int) -> bool:
    """Whether process ``pid`` of this host still runs (a zombie does not)."""
    if pid == os.getpid():
        return True
    if pid <= 0 or os.name == "nt":  # pragma: no cover - no signal 0 on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: it exists, owned by someone else
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _leftover_of_dead_process(entry: os.DirEntry, host: str | None, pid: str | None) -> bool:
    """Whether a temporary directory named with owner ``host``/``pid`` is a dead process's.

    Named by this host: its process no longer runs. Named by another host (a shared file
    system), or by privrec before names carried the owner: it is older than this process."""
    if pid is not None and (host is None or host == _owner_tag().split("-")[0]):
        return not _pid_running(int(pid))
    try:
        return entry.stat(follow_symlinks=False).st_mtime < _IMPORTED_AT
    except OSError:
        return False


def recover_swap(path: str | Path) -> list[str]:
    """Repair what a killed writer left beside ``path``; returns what was done (for logs).

    * ``path`` missing and an old directory set aside by a process that no longer runs
      (``.NAME.old-…``, an overwrite killed between its two renames): the old directory is put
      back (the newest, when there are several);
    * ``path`` in place and old directories beside it: they are removed (the swap finished);
    * temporary directories of ``path`` (``.NAME.….partial``) of processes that no longer run:
      removed.

    Called by :func:`atomic_dir` and by the readers of run directories; never raises (a path
    that cannot be repaired is then reported by the reader or writer)."""
    path = Path(path)
    done: list[str] = []
    name = re.escape(path.name)
    old_re = re.compile(rf"\.{name}\.old-(?:(?P<host>[0-9a-f]{{8}})-)?(?P<pid>\d+)(?:-[0-9a-f]+)?")
    tmp_re = re.compile(
        rf"\.{name}\.(?:(?P<host>[0-9a-f]{{8}})-(?P<pid>\d+)-)?[0-9a-f]{{12}}\.partial"
    )
    try:
        prefix = f".{path.name}."
        entries = [e for e in os.scandir(path.parent) if e.name.startswith(prefix)]
    except OSError:
        return done
    dead: list[tuple[float, Path]] = []  # (-mtime, old directory) of processes that are gone
    olds: list[Path] = []
    for entry in entries:
        m = tmp_re.fullmatch(entry.name)
        if m and _leftover_of_dead_process(entry, m["host"], m["pid"]):
            _remove_tree(Path(entry.path))
            done.append(f"removed the leftover temporary directory {entry.path}")
            continue
        m = old_re.fullmatch(entry.name)
        if m:
            olds.append(Path(entry.path))
            if _leftover_of_dead_process(entry, m["host"], m["pid"]):
                with contextlib.suppress(OSError):
                    dead.append((-entry.stat(follow_symlinks=False).st_mtime, olds[-1]))
    if dead and len(dead) == len(olds) and not os.path.lexists(path):
        # killed between its two renames (no live process is in the middle of a swap)
        old = min(dead)[1]
        with contextlib.suppress(OSError):
            os.replace(old, path)
            olds.remove(old)
            done.append(f"restored {path} from {old.name} (an overwrite was interrupted)")
    if os.path.lexists(path):
        # an old directory beside a directory in place: its swap finished (or was restored)
        for old in olds:
            _remove_tree(old)
            done.append(f"removed the leftover old directory {old}")
    return done


# --- manifest -------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_manifest(directory: str | Path, *, exclude: tuple[str, ...] = ()) -> dict:
    """``{"format": 1, "files": {relative path: {"bytes": size, "sha256": digest}}}`` of every
    file under ``directory`` (relative POSIX paths, sorted) but those in ``exclude``.

    A writer records it last (a run directory: inside ``config.json``, the file written last),
    so that a reader can tell a complete directory from one a file of which has gone missing,
    been truncated or changed (:func:`manifest_mismatches`)."""
    directory = Path(directory)
    files = {}
    for file in sorted(directory.rglob("*")):
        rel = file.relative_to(directory).as_posix()
        if rel in exclude or file.is_symlink() or not file.is_file():
            continue
        files[rel] = {"bytes": file.stat().st_size, "sha256": _sha256(file)}
    return {"format": _MANIFEST_VERSION, "files": files}


@dataclass(frozen=True)
class Mismatch:
    """A file that does not match its manifest: ``kind`` is ``"malformed"`` (the manifest
    itself; ``file`` is where it is kept), ``"missing"``, ``"truncated"`` (shorter than
    recorded) or ``"changed"`` (another size or SHA-256); ``message`` is one line naming
    ``file``."""

    kind: str
    file: Path
    message: str


def manifest_mismatches(
    directory: str | Path, manifest: Any, where: str | Path, *, hashes: bool = True
) -> list[Mismatch]:
    """The files of ``directory`` that do not match ``manifest`` (a :func:`file_manifest`
    record read back from the file ``where``), in the manifest's order; empty when all match.

    ``hashes=False`` compares sizes only (cheap: no file is read). A malformed manifest is one
    ``"malformed"`` mismatch naming ``where``."""
    directory = Path(directory)
    where = Path(where)
    listed = f"the manifest in {where}"
    files = manifest.get("files") if isinstance(manifest, dict) else None
    version = manifest.get("format") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not isinstance(version, int):
        return [Mismatch("malformed", where, f"{where}: malformed manifest (corrupt or edited)")]
    if version > _MANIFEST_VERSION:
        message = f"{where}: manifest format {version} is newer than this privrec reads"
        return [Mismatch("malformed", where, message)]
    out: list[Mismatch] = []
    for rel, entry in files.items():
        parts = Path(rel).parts
        if (
            not parts
            or Path(rel).is_absolute()
            or ".." in parts
            or not isinstance(entry, dict)
            or not isinstance(entry.get("bytes"), int)
            or not isinstance(entry.get("sha256"), str)
        ):
            message = f"{where}: malformed manifest entry {rel!r} (corrupt or edited)"
            return [Mismatch("malformed", where, message)]
        file = directory / rel
        try:
            st = file.stat()
        except OSError:
            message = f"{file}: missing (listed in {listed}; the directory is incomplete)"
            out.append(Mismatch("missing", file, message))
            continue
        if not stat.S_ISREG(st.st_mode):
            message = f"{file}: not a regular file (listed in {listed} as one)"
            out.append(Mismatch("missing", file, message))
            continue
        want = entry["bytes"]
        if st.st_size < want:
            message = f"{file}: truncated ({st.st_size} of {want} bytes, per {listed})"
            out.append(Mismatch("truncated", file, message))
        elif st.st_size != want:
            message = (
                f"{file}: changed since it was written ({st.st_size} bytes, {want} in {listed})"
            )
            out.append(Mismatch("changed", file, message))
        elif hashes:
            try:
                digest = _sha256(file)
            except OSError as exc:
                out.append(Mismatch("missing", file, f"{file}: cannot read ({_reason(exc)})"))
                continue
            if digest != entry["sha256"]:
                message = f"{file}: changed since it was written (SHA-256 differs from {listed})"
                out.append(Mismatch("changed", file, message))
    return out


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

    def replace_items(self, item_vectors: np.ndarray, item_bias: np.ndarray) -> Embeddings:
        if item_vectors.shape != self.item_vectors.shape or item_bias.shape != self.item_bias.shape:
            raise DataError(
                f"new item arrays have shapes {item_vectors.shape} and {item_bias.shape}, "
                f"expected {self.item_vectors.shape} and {self.item_bias.shape}"
            )
        return Embeddings(
            self.user_ids,
            self.user_vectors,
            self.item_ids,
            item_vectors.astype(np.float32),
            item_bias.astype(np.float32),
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
    with open_npz(path) as z:
        missing = [k for k in EMBEDDING_ARRAYS if k not in z.files]
        if missing:
            raise DataError(f"{path}: missing array(s) {', '.join(missing)}")
        try:
            return Embeddings(*(z[k] for k in EMBEDDING_ARRAYS))
        except DataError as exc:
            raise DataError(f"{path}: {exc}") from None
        except TypeError as exc:  # e.g. a 0-d array where a vector belongs
            raise DataError(f"{path}: malformed embeddings ({exc})") from None


@contextlib.contextmanager
def open_npz(path: str | Path) -> Iterator[Any]:
    """``np.load(path)`` of an ``.npz`` (never unpickling) in a block: a missing, truncated or
    corrupt file, or one with object arrays, is a one-line :class:`DataError` naming it, also
    when the damage shows only while an array of it is read inside the block."""
    import zipfile
    import zlib

    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise DataError(f"{path}: not an .npz archive")
        try:
            yield z
        finally:
            z.close()
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise DataError(
            f"{path}: truncated or corrupt .npz ({str(exc) or type(exc).__name__})"
        ) from None
    except ValueError as exc:  # object arrays would need pickle; a malformed .npy header
        raise DataError(f"{path}: not a plain .npz of numeric/string arrays ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({_reason(exc)})") from None


def _plain_ids(ids: np.ndarray) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.dtype == object:
        return ids.astype(str)
    return ids
