"""Locate MovieLens files for a user, downloading and verifying them when needed.

MovieLens is © GroupLens Research and may not be redistributed, so privrec never ships it: this
module finds a local copy or fetches the genuine zip from GroupLens into a per-user cache.

Resolution order of :func:`resolve_dataset_dir`:

1. an explicit ``data_dir`` (the ``--data-dir`` option);
2. ``$PRIVREC_DATA_DIR/<name>/``;
3. the per-user cache ``<cache>/<name>/`` (``cache_dir`` argument, else ``$PRIVREC_CACHE_DIR``,
   else :func:`platformdirs.user_cache_dir`);
4. a download of the GroupLens zip into that cache, verified file by file before it is moved
   into place atomically.

The download source (step 4 only) is, in order: the ``url`` argument (the CLI's
``--data-url``), ``$PRIVREC_DATA_URL``, then GroupLens (:func:`archive_url`). The option and
the variable each take a base URL, the folder of a mirror that holds ``ml-1m.zip`` and
``ml-100k.zip`` as GroupLens' ``https://files.grouplens.org/datasets/movielens`` does, or the
full URL of one ``.zip`` (``https://``, ``http://`` or ``file://``). Whatever the source, the files are checked against
the GroupLens originals' sizes and digests, so a mirror serving other bytes is refused. Sweep
workers are separate processes: they see ``$PRIVREC_DATA_URL`` (inherited), not an option.

Local copies (1-3) are verified too; a file that differs from the GroupLens original still
loads, with one :class:`DataIntegrityWarning` per differing file. A download that differs is
rejected with a :class:`~privrec.errors.DataError` and leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import uuid
import warnings
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import platformdirs

from privrec.errors import ConfigError, DataError

__all__ = [
    "DATA_DIR_ENV",
    "DATA_URL_ENV",
    "CACHE_DIR_ENV",
    "KNOWN_DATASETS",
    "DataIntegrityWarning",
    "DatasetSource",
    "FileCheck",
    "archive_url",
    "git_blob_sha1",
    "resolve_dataset_dir",
    "sha256_file",
    "verify_dir",
]

DATA_DIR_ENV = "PRIVREC_DATA_DIR"
DATA_URL_ENV = "PRIVREC_DATA_URL"
CACHE_DIR_ENV = "PRIVREC_CACHE_DIR"

_CHUNK = 1 << 20  # bytes read per step when hashing or copying
_TIMEOUT_S = 60.0  # socket timeout of a download


class DataIntegrityWarning(UserWarning):
    """A local dataset file differs from the GroupLens original (it is still loaded)."""


@dataclass(frozen=True)
class FileCheck:
    """Expected size and digests of one dataset file.

    A file passes when its size matches and every digest that is given (not ``None``) matches.

    Attributes:
        name: file name inside the dataset folder (e.g. ``"ratings.dat"``).
        size: size in bytes.
        sha256: hex SHA-256 of the content, or ``None`` if unknown.
        git_blob: git blob id (``git hash-object``) of the content, or ``None`` if unknown.
    """

    name: str
    size: int
    sha256: str | None
    git_blob: str | None


@dataclass(frozen=True)
class DatasetSource:
    """Where a dataset comes from and how to recognise its genuine files.

    Attributes:
        name: dataset name, also the folder name under a data or cache root (``"ml-1m"``).
        url: URL of the GroupLens zip.
        zip_folder: folder inside the zip that holds the files.
        files: the files the loaders need, with their expected size and digests.
    """

    name: str
    url: str
    zip_folder: str
    files: tuple[FileCheck, ...]

    @property
    def archive(self) -> str:
        """File name of the zip (the last segment of ``url``, e.g. ``"ml-1m.zip"``); a mirror
        given as a base URL serves it under that name."""
        return PurePosixPath(urllib.parse.urlsplit(self.url).path).name or f"{self.name}.zip"


_GROUPLENS = "https://files.grouplens.org/datasets/movielens"

KNOWN_DATASETS: dict[str, DatasetSource] = {
    "ml-1m": DatasetSource(
        name="ml-1m",
        url=f"{_GROUPLENS}/ml-1m.zip",
        zip_folder="ml-1m",
        files=(
            FileCheck(
                "users.dat",
                134368,
                "1dc3a95300cb19f7c10e027daf29b8cdf1d908dab65b5edfb45950aa389a10a3",
                None,
            ),
            FileCheck(
                "movies.dat",
                171308,
                "0140fc2356357c1a851d0f52e893a1e4d3696df632c4141cea8d5bc3d621f0b9",
                None,
            ),
            # The SHA-256 of the genuine ratings.dat is not known; its git blob id is (the same
            # id in many unrelated public copies), so that is what is checked.
            FileCheck("ratings.dat", 24594131, None, "77a7c4b150f588c23bb9e1f068aa996c0b413695"),
        ),
    ),
    "ml-100k": DatasetSource(
        name="ml-100k",
        url=f"{_GROUPLENS}/ml-100k.zip",
        zip_folder="ml-100k",
        files=(
            FileCheck(
                "u.data",
                1979173,
                "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
                None,
            ),
            FileCheck(
                "u.user",
                22628,
                "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
                None,
            ),
            FileCheck(
                "u.item",
                236344,
                "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
                None,
            ),
        ),
    ),
}


# --------------------------------------------------------------------------------------------
# Hashing
# --------------------------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    """Return the hex SHA-256 of a file, read in chunks.

    Args:
        path: file to hash.

    Returns:
        The 64-character lowercase hex digest.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def git_blob_sha1(path: Path) -> str:
    """Return the git blob id of a file (what ``git hash-object`` prints), read in chunks.

    The id is the SHA-1 of ``b"blob <size>\\0"`` followed by the content.

    Args:
        path: file to hash.

    Returns:
        The 40-character lowercase hex digest.
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        h = hashlib.sha1(f"blob {size}\0".encode("ascii"), usedforsecurity=False)
        read = 0
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            read += len(chunk)
    if read != size:
        raise DataError(f"{path}: file changed while it was hashed ({read} of {size} bytes read)")
    return h.hexdigest()


# (resolved path, size, mtime_ns) -> {"sha256": hex, "git_blob": hex}; only the digests that were
# asked for are present. Filled by _digests so that repeated loads in one process do not rehash.
_DIGEST_CACHE: dict[tuple[str, int, int], dict[str, str]] = {}


def _cache_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def _digests(path: Path, kinds: Iterable[str]) -> dict[str, str]:
    """Return the requested digests (``"sha256"``, ``"git_blob"``) of ``path``, memoised."""
    key = _cache_key(path)
    known = _DIGEST_CACHE.setdefault(key, {})
    for kind in kinds:
        if kind not in known:
            known[kind] = sha256_file(path) if kind == "sha256" else git_blob_sha1(path)
    return known


def _short(digest: str) -> str:
    return f"{digest[:7]}…"


def _mismatch(path: Path, check: FileCheck) -> tuple[str, str, str] | None:
    """Compare one file with its check.

    Returns:
        ``None`` if it passes, else ``(what, actual, expected)`` for the first difference found,
        where ``what`` is ``"size"``, ``"sha256"`` or ``"git blob"``.
    """
    size = path.stat().st_size
    if size != check.size:
        return ("size", f"{size} bytes", f"{check.size} bytes")
    kinds = [k for k in ("sha256", "git_blob") if getattr(check, k) is not None]
    got = _digests(path, kinds)
    for kind in kinds:
        expected = getattr(check, kind).lower()
        if got[kind] != expected:
            return (kind.replace("_", " "), got[kind], expected)
    return None


def _missing_files(path: Path, source: DatasetSource) -> list[str]:
    return [fc.name for fc in source.files if not (path / fc.name).is_file()]


def verify_dir(path: Path, source: DatasetSource) -> list[str]:
    """Check the dataset files in a folder against the GroupLens originals.

    Digests are memoised per (path, size, mtime), so verifying the same unchanged files again
    in one process does not rehash them.

    Args:
        path: folder that holds the dataset's files.
        source: the dataset whose ``files`` are checked.

    Returns:
        One human-readable line per file that differs from the original; empty if all pass.

    Raises:
        DataError: a needed file is missing (the message names the folder and the files).
    """
    path = Path(path)
    missing = _missing_files(path, source)
    if missing:
        raise DataError(
            f"{path} lacks the {source.name} file(s) {', '.join(missing)} "
            f"(needed: {', '.join(fc.name for fc in source.files)})"
        )
    lines = []
    for fc in source.files:
        diff = _mismatch(path / fc.name, fc)
        if diff is None:
            continue
        what, actual, expected = diff
        if what != "size":
            actual, expected = _short(actual), _short(expected)
        lines.append(
            f"{source.name}/{fc.name} differs from the GroupLens original ({what} {actual}, "
            f"expected {expected}); results may differ from published ones"
        )
    return lines


# --------------------------------------------------------------------------------------------
# Resolution
# --------------------------------------------------------------------------------------------


def _source(name: str) -> DatasetSource:
    try:
        return KNOWN_DATASETS[name]
    except KeyError:
        known = ", ".join(sorted(KNOWN_DATASETS))
        raise DataError(f"unknown dataset {name!r}; known datasets: {known}") from None


def _use_local(path: Path, source: DatasetSource) -> Path:
    """Verify a complete local copy, warn once per differing file, and return it."""
    for line in verify_dir(path, source):
        warnings.warn(line, DataIntegrityWarning, stacklevel=3)
    return path


_URL_SCHEMES = ("https", "http", "file")


def archive_url(name: str, url: str | None = None) -> str:
    """Return the URL the zip of dataset ``name`` is downloaded from.

    The source is, in order: ``url`` (the ``--data-url`` option), ``$PRIVREC_DATA_URL`` (unset
    or empty: skipped), then GroupLens (:attr:`DatasetSource.url`). A value whose path ends in
    ``.zip`` is the URL of the archive itself and is used as is; any other value is a base URL
    (a mirror's folder) under which the archive has its GroupLens name:
    ``<base>/ml-1m.zip``, ``<base>/ml-100k.zip``.

    Args:
        name: dataset name, a key of :data:`KNOWN_DATASETS`.
        url: base URL or archive URL given explicitly; ``None`` to fall back as above.

    Returns:
        The archive's URL (``https://``, ``http://`` or ``file://``).

    Raises:
        DataError: the dataset is unknown.
        ConfigError: the URL is not an ``http(s)://`` or ``file://`` URL, or it names the
            archive of another dataset.
    """
    source = _source(name)
    if url is not None:
        return _mirror_url(source, url.strip(), "--data-url")
    env = os.environ.get(DATA_URL_ENV, "").strip()
    if env:
        return _mirror_url(source, env, DATA_URL_ENV)
    return source.url


def _mirror_url(source: DatasetSource, value: str, origin: str) -> str:
    """``value`` (from ``origin``) as the URL of ``source``'s archive; see :func:`archive_url`."""
    archives = ", ".join(sorted(s.archive for s in KNOWN_DATASETS.values()))
    hint = (
        f"expected an https://, http:// or file:// URL: a base URL holding {archives} "
        "(like https://files.grouplens.org/datasets/movielens) or the URL of one .zip"
    )
    try:
        parts = urllib.parse.urlsplit(value)
    except ValueError as exc:
        raise ConfigError(f"{origin} {value!r} is not a URL ({exc}); {hint}") from None
    scheme = parts.scheme.lower()
    if scheme not in _URL_SCHEMES:
        got = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        raise ConfigError(f"{origin} {value!r} has {got}; {hint}")
    if scheme != "file" and not parts.netloc:
        raise ConfigError(f"{origin} {value!r} has no host; {hint}")
    last = PurePosixPath(urllib.parse.unquote(parts.path)).name
    if last.lower().endswith(".zip"):
        others = {s.archive: s.name for s in KNOWN_DATASETS.values() if s.name != source.name}
        if last in others and last != source.archive:
            raise ConfigError(
                f"{origin} {value!r} is the {others[last]} archive, but {source.name} is being "
                f"loaded; give the URL of {source.archive} or a base URL holding {archives}"
            )
        return value
    path = parts.path.rstrip("/") + "/" + urllib.parse.quote(source.archive)
    return urllib.parse.urlunsplit(parts._replace(path=path))


def _cache_root(cache_dir: str | Path | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("privrec"))


def resolve_dataset_dir(
    name: str,
    data_dir: str | Path | None = None,
    *,
    download: bool = True,
    progress: bool = True,
    cache_dir: str | Path | None = None,
    url: str | None = None,
) -> Path:
    """Find the folder holding a MovieLens dataset, downloading it into the cache if needed.

    Places looked at, in order: ``data_dir``; ``$PRIVREC_DATA_DIR/<name>/``; the cache
    ``<cache>/<name>/``; then, if ``download``, the zip is fetched into the cache from
    :func:`archive_url` (``url``, else ``$PRIVREC_DATA_URL``, else GroupLens). A local copy
    (the first three) whose files differ from the originals is still returned, with one
    :class:`DataIntegrityWarning` per differing file; a download that differs is refused,
    whatever its source.

    Args:
        name: dataset name, a key of :data:`KNOWN_DATASETS` (``"ml-1m"``, ``"ml-100k"``).
        data_dir: folder that holds the dataset's files (``--data-dir``). For convenience a
            folder whose ``<name>/`` subfolder holds them (like ``PRIVREC_DATA_DIR``) is
            accepted too.
        download: fetch the dataset into the cache when no local copy is found.
        progress: show a Rich progress bar (on stderr) while downloading.
        cache_dir: cache root; defaults to ``$PRIVREC_CACHE_DIR``, else the per-user cache
            folder of ``platformdirs.user_cache_dir("privrec")``.
        url: download from this mirror instead of ``$PRIVREC_DATA_URL`` or GroupLens: a base
            URL holding ``<name>.zip``, or the URL of the zip itself (path ending in ``.zip``);
            ``https://``, ``http://`` or ``file://``. Checked even when no download is needed.

    Returns:
        The folder holding the dataset's files.

    Raises:
        DataError: the dataset is unknown; ``data_dir`` or ``$PRIVREC_DATA_DIR/<name>`` lacks
            files; nothing was found and ``download`` is false; or the download failed, was
            not a readable zip (corrupt compressed data included), was unsafe to extract or
            did not match the expected checksums.
        ConfigError: ``url`` or ``$PRIVREC_DATA_URL`` is not a usable URL.
    """
    source = _source(name)
    # A malformed URL is reported even when a local copy makes the download unnecessary.
    source_url = archive_url(name, url)

    if data_dir is not None:
        folder = Path(data_dir).expanduser()
        missing = _missing_files(folder, source)
        if missing and not _missing_files(folder / name, source):
            folder, missing = folder / name, []
        if missing:
            where = "does not exist" if not folder.is_dir() else f"lacks {', '.join(missing)}"
            raise DataError(
                f"data dir {folder} {where}: the {name} files "
                f"{', '.join(fc.name for fc in source.files)} are needed there"
            )
        return _use_local(folder, source)

    env_dir = os.environ.get(DATA_DIR_ENV)
    if env_dir:
        folder = Path(env_dir).expanduser() / name
        missing = _missing_files(folder, source)
        if missing:
            where = "does not exist" if not folder.is_dir() else f"lacks {', '.join(missing)}"
            raise DataError(
                f"{DATA_DIR_ENV}={env_dir} is set but {folder} {where}; put the {name} files "
                f"({', '.join(fc.name for fc in source.files)}) there or unset {DATA_DIR_ENV}"
            )
        return _use_local(folder, source)

    root = _cache_root(cache_dir)
    cached = root / name
    if not _missing_files(cached, source):
        return _use_local(cached, source)

    if not download:
        raise DataError(
            f"MovieLens {name} not found. Looked at: (1) --data-dir: not given; "
            f"(2) {DATA_DIR_ENV}: not set; (3) the cache {cached}: "
            f"{'missing' if not cached.is_dir() else 'incomplete'}. Fix: pass --data-dir "
            f"pointing at a folder holding {', '.join(fc.name for fc in source.files)}, "
            f"or set {DATA_DIR_ENV} to a folder containing {name}/, or allow the download."
        )

    return _download(source, root, source_url, progress=progress)


# --------------------------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------------------------


def _fetch(url: str, dest: Path, *, label: str, progress: bool) -> None:
    """Stream ``url`` into ``dest``, with a Rich progress bar if ``progress``.

    urllib rather than pooch: urllib handles ``file://`` and ``http(s)://`` alike with no extra
    dependency (pooch has no ``file://`` downloader and its HTTP one needs ``requests``), and
    the verification, safe extraction and atomic placement here are our own anyway.
    """
    # A fresh opener per download picks up the current proxy environment.
    opener = urllib.request.build_opener()
    try:
        with opener.open(url, timeout=_TIMEOUT_S) as response, open(dest, "wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if not progress:
                shutil.copyfileobj(response, out, _CHUNK)
                return
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            with Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            ) as bar:
                task = bar.add_task(f"downloading {label}", total=total)
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    bar.advance(task, len(chunk))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DataError(
            f"could not download {label} from {url}: {exc}. Download it by hand, unzip it and "
            f"pass --data-dir or set {DATA_DIR_ENV}, or name a reachable mirror with "
            f"--data-url or {DATA_URL_ENV}"
        ) from exc


def _safe_member_path(info: zipfile.ZipInfo) -> PurePosixPath:
    """Return the relative path of a zip member, or raise if extracting it would be unsafe."""
    raw = info.filename
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise DataError(f"zip member {raw!r} is a symbolic link; refusing to extract")
    norm = raw.replace("\\", "/")
    rel = PurePosixPath(norm)
    if norm.startswith("/") or rel.is_absolute() or (len(norm) > 1 and norm[1] == ":"):
        raise DataError(f"zip member {raw!r} has an absolute path; refusing to extract")
    if ".." in rel.parts:
        raise DataError(f"zip member {raw!r} points outside its folder; refusing to extract")
    return rel


try:  # zipfile's LZMA members raise lzma.LZMAError on bad data (the module may be absent)
    from lzma import LZMAError as _LZMAError
except ImportError:  # pragma: no cover - Python built without lzma

    class _LZMAError(Exception):  # type: ignore[no-redef]
        """Stand-in: never raised."""


# What reading a damaged member can raise: bad CRC or header (BadZipFile), corrupt deflate
# (zlib.error), truncated streams (EOFError), bz2 (OSError), lzma, an unsupported compression
# method (NotImplementedError) and encryption (RuntimeError).
_MEMBER_READ_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    _LZMAError,
    NotImplementedError,
    RuntimeError,
    ValueError,
)


def _one_line(exc: BaseException) -> str:
    """``exc`` as ``"zlib.error: message"`` on one line."""
    kind = type(exc).__name__
    if type(exc).__module__ != "builtins":
        kind = f"{type(exc).__module__}.{kind}"
    text = " ".join(str(exc).split())
    return f"{kind}: {text}" if text else kind


def _copy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, what: str) -> None:
    """Decompress one member to ``target``; damaged data is a one-line DataError."""
    with contextlib.ExitStack() as stack:
        try:
            out = stack.enter_context(open(target, "wb"))
        except OSError as exc:
            raise DataError(f"could not write {target} while extracting {what}: {exc}") from exc
        try:
            src = stack.enter_context(zf.open(info))
        except _MEMBER_READ_ERRORS as exc:
            raise _corrupt(info, what, exc) from exc
        while True:
            try:
                chunk = src.read(_CHUNK)
            except _MEMBER_READ_ERRORS as exc:
                raise _corrupt(info, what, exc) from exc
            if not chunk:
                break
            try:
                out.write(chunk)
            except OSError as exc:
                raise DataError(f"could not write {target} while extracting {what}: {exc}") from exc


def _corrupt(info: zipfile.ZipInfo, what: str, exc: BaseException) -> DataError:
    return DataError(
        f"{what} is corrupt: member {info.filename!r} does not decompress intact "
        f"({_one_line(exc)}); expected {info.file_size} bytes with CRC-32 {info.CRC:08x}. "
        "Nothing of it was kept in the cache; download it again, or unzip a good copy and pass "
        f"--data-dir or set {DATA_DIR_ENV}"
    )


def _extract(zip_path: Path, folder: str, dest: Path, *, what: str = "the downloaded zip") -> Path:
    """Safely extract the members under ``folder/`` of a zip into ``dest``.

    Every member is checked before anything is written: absolute paths, ``..`` components and
    symbolic links anywhere in the zip make the whole zip rejected. A member whose compressed
    data is damaged (bad deflate stream, CRC mismatch, truncation) raises :class:`DataError`
    naming ``what`` (the archive and its URL) and the member's expected size and CRC; the
    caller removes whatever was extracted before it.

    Returns:
        ``dest / folder``.
    """
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise DataError(f"{what} is not a valid zip: {_one_line(exc)}") from exc
    with zf:
        members = [(info, _safe_member_path(info)) for info in zf.infolist()]
        root = dest.resolve()
        for info, rel in members:
            if not rel.parts or rel.parts[0] != folder:
                continue  # e.g. __MACOSX/ entries
            target = root.joinpath(*rel.parts)
            if not target.resolve().is_relative_to(root):  # belt and braces
                raise DataError(f"zip member {info.filename!r} escapes the extraction folder")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            _copy_member(zf, info, target, what)
    return dest / folder


def _check_download(path: Path, source: DatasetSource, url: str) -> None:
    """Raise DataError if the extracted files are missing or differ from the originals."""
    missing = _missing_files(path, source)
    if missing:
        raise DataError(
            f"the zip from {url} lacks "
            + ", ".join(f"{source.zip_folder}/{m}" for m in missing)
            + "; refusing to use it"
        )
    problems = []
    for fc in source.files:
        diff = _mismatch(path / fc.name, fc)
        if diff is not None:
            what, actual, expected = diff
            problems.append(f"{fc.name}: {what} {actual}, expected {expected}")
    if problems:
        raise DataError(
            f"the {source.name} download from {url} failed verification and was discarded: "
            + "; ".join(problems)
        )


def _place(extracted: Path, target: Path) -> None:
    """Atomically move a verified folder to ``target`` (same file system)."""
    old: Path | None = None
    if target.exists() or target.is_symlink():
        # An incomplete earlier copy: move it aside so the rename below can take its place.
        old = target.with_name(f".{target.name}-old-{uuid.uuid4().hex}")
        os.replace(target, old)
    try:
        os.replace(extracted, target)
    finally:
        if old is not None:
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)


def _download(source: DatasetSource, root: Path, url: str, *, progress: bool) -> Path:
    """Download, extract, verify and place a dataset into ``root / source.name``."""
    root.mkdir(parents=True, exist_ok=True)
    target = root / source.name
    fd, tmp_name = tempfile.mkstemp(dir=root, prefix=f".{source.name}-", suffix=".zip.part")
    os.close(fd)
    tmp_zip = Path(tmp_name)
    tmp_dir = Path(tempfile.mkdtemp(dir=root, prefix=f".{source.name}-extract-"))
    try:
        _fetch(url, tmp_zip, label=f"{source.name}.zip", progress=progress)
        what = f"the {source.name} archive {source.archive} from {url}"
        extracted = _extract(tmp_zip, source.zip_folder, tmp_dir, what=what)
        _check_download(extracted, source, url)
        try:
            _place(extracted, target)
        except OSError as exc:
            # Another process may have placed a complete copy meanwhile: use that one.
            if _missing_files(target, source):
                raise DataError(
                    f"could not move the {source.name} download to {target}: {exc}"
                ) from exc
            return _use_local(target, source)
        # Re-key the memoised digests to the files' final paths (rename keeps size and mtime).
        for fc in source.files:
            final = target / fc.name
            key = _cache_key(final)
            old_key = (str((tmp_dir / source.zip_folder / fc.name).resolve()), key[1], key[2])
            if old_key in _DIGEST_CACHE:
                _DIGEST_CACHE[key] = _DIGEST_CACHE.pop(old_key)
        return target
    finally:
        tmp_zip.unlink(missing_ok=True)
        shutil.rmtree(tmp_dir, ignore_errors=True)
