"""Tests of privrec.data.download: local resolution, verification and the offline download path."""

from __future__ import annotations

import hashlib
import http.server
import os
import shutil
import stat
import struct
import subprocess
import threading
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from privrec.data import download as dl
from privrec.data.download import (
    KNOWN_DATASETS,
    DataIntegrityWarning,
    DatasetSource,
    FileCheck,
    archive_url,
    git_blob_sha1,
    resolve_dataset_dir,
    sha256_file,
    verify_dir,
)
from privrec.errors import ConfigError, DataError

# --------------------------------------------------------------------------------------------
# helpers and fixtures
# --------------------------------------------------------------------------------------------

FAKE_FILES: dict[str, bytes] = {
    "u.data": b"1\t1\t5\t874965758\n2\t1\t3\t876893171\n",
    "u.user": b"1|24|M|technician|85711\n2|53|F|other|94043\n",
    "u.item": b"1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0\n",
}


def _blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _make_source(url: str = "http://invalid.example/none.zip") -> DatasetSource:
    """A small fake ml-100k whose checks match FAKE_FILES (u.item checked by git blob only)."""
    checks = []
    for name, data in FAKE_FILES.items():
        if name == "u.item":
            checks.append(FileCheck(name, len(data), None, _blob(data)))
        else:
            checks.append(FileCheck(name, len(data), hashlib.sha256(data).hexdigest(), None))
    return DatasetSource(name="ml-100k", url=url, zip_folder="ml-100k", files=tuple(checks))


def _write_zip(path: Path, files: dict[str, bytes], folder: str = "ml-100k") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{folder}/", b"")
        for name, data in files.items():
            zf.writestr(f"{folder}/{name}", data)
        zf.writestr(f"{folder}/README", b"fake readme\n")
    return path


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the caller's data/cache/proxy settings, and the digest memo starts empty."""
    monkeypatch.delenv(dl.DATA_DIR_ENV, raising=False)
    monkeypatch.delenv(dl.CACHE_DIR_ENV, raising=False)
    monkeypatch.delenv(dl.DATA_URL_ENV, raising=False)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setattr(dl, "_DIGEST_CACHE", {})


@pytest.fixture
def fake_source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> DatasetSource:
    """Register a fake ml-100k whose default URL is a file:// URL of a matching zip."""
    zip_path = _write_zip(tmp_path / "ml-100k.zip", FAKE_FILES)
    source = _make_source(zip_path.as_uri())
    monkeypatch.setitem(KNOWN_DATASETS, "ml-100k", source)
    return source


class _Server:
    """An http.server on 127.0.0.1 in a thread serving one payload and counting GETs (their
    paths are in ``paths``)."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.requests = 0
        self.paths: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                outer.requests += 1
                outer.paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(outer.payload)))
                self.end_headers()
                self.wfile.write(outer.payload)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.url = f"{self.base}/ml-100k.zip"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def serve() -> Iterator[type[_Server]]:
    """Factory of HTTP servers, all shut down after the test."""
    servers: list[_Server] = []

    def make(payload: bytes) -> _Server:
        server = _Server(payload)
        servers.append(server)
        return server

    yield make  # type: ignore[misc]
    for server in servers:
        server.close()


def _shared_data() -> Path:
    env = os.environ.get(dl.DATA_DIR_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


# Read at import time, before the autouse fixture clears the variable.
SHARED = _shared_data()


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


# --------------------------------------------------------------------------------------------
# hashing
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"hello\n", bytes(range(256)) * 5000])
def test_hashes_match_git_and_hashlib(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert git_blob_sha1(path) == _blob(data)
    git = shutil.which("git")
    if git is None:
        pytest.skip("git not installed; checked against the blob formula only")
    out = subprocess.run(
        [git, "hash-object", "--no-filters", str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert git_blob_sha1(path) == out.stdout.strip()


def test_known_blob_id(tmp_path: Path) -> None:
    path = tmp_path / "hello"
    path.write_bytes(b"hello\n")
    assert git_blob_sha1(path) == "ce013625030ba8dba906f756967f9e9ca394464a"


# --------------------------------------------------------------------------------------------
# verify_dir and the digest memo
# --------------------------------------------------------------------------------------------


def test_verify_dir_reports_each_difference(tmp_path: Path) -> None:
    source = _make_source()
    for name, data in FAKE_FILES.items():
        (tmp_path / name).write_bytes(data)
    assert verify_dir(tmp_path, source) == []

    (tmp_path / "u.data").write_bytes(FAKE_FILES["u.data"] + b"x")  # size differs
    item = FAKE_FILES["u.item"]
    (tmp_path / "u.item").write_bytes(item[:-2] + b"X\n")  # same size, other blob
    lines = verify_dir(tmp_path, source)
    assert len(lines) == 2
    assert lines[0].startswith("ml-100k/u.data differs from the GroupLens original (size")
    assert "ml-100k/u.item" in lines[1] and "git blob" in lines[1]
    assert f"expected {_blob(item)[:7]}…" in lines[1]
    assert lines[1].endswith("results may differ from published ones")


def test_verify_dir_missing_file_is_data_error(tmp_path: Path) -> None:
    (tmp_path / "u.data").write_bytes(FAKE_FILES["u.data"])
    with pytest.raises(DataError, match=r"u\.user, u\.item"):
        verify_dir(tmp_path, _make_source())


def test_digests_are_memoised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _make_source()
    for name, data in FAKE_FILES.items():
        (tmp_path / name).write_bytes(data)
    calls: list[str] = []
    real_sha, real_blob = dl.sha256_file, dl.git_blob_sha1
    monkeypatch.setattr(dl, "sha256_file", lambda p: calls.append(p.name) or real_sha(p))
    monkeypatch.setattr(dl, "git_blob_sha1", lambda p: calls.append(p.name) or real_blob(p))
    verify_dir(tmp_path, source)
    assert sorted(calls) == ["u.data", "u.item", "u.user"]
    verify_dir(tmp_path, source)
    assert len(calls) == 3  # nothing rehashed
    st = (tmp_path / "u.user").stat()
    os.utime(tmp_path / "u.user", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    verify_dir(tmp_path, source)
    assert calls[3:] == ["u.user"]  # a new mtime is a new key


# --------------------------------------------------------------------------------------------
# the real shared copies
# --------------------------------------------------------------------------------------------


def _need_shared(name: str) -> Path:
    folder = SHARED / name
    if not all((folder / fc.name).is_file() for fc in KNOWN_DATASETS[name].files):
        pytest.skip(f"real MovieLens {name} not found at {folder} (set {dl.DATA_DIR_ENV})")
    return folder


def test_shared_ml100k_passes_silently(tmp_path: Path) -> None:
    folder = _need_shared("ml-100k")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = resolve_dataset_dir("ml-100k", folder, download=False, cache_dir=tmp_path)
    assert got == folder
    assert [w for w in caught if issubclass(w.category, DataIntegrityWarning)] == []
    assert verify_dir(folder, KNOWN_DATASETS["ml-100k"]) == []


@pytest.mark.parametrize("via", ["data_dir", "env"])
def test_shared_ml1m_warns_once_about_ratings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, via: str
) -> None:
    folder = _need_shared("ml-1m")
    if via == "env":
        monkeypatch.setenv(dl.DATA_DIR_ENV, str(folder.parent))
    for _ in range(2):  # the second call uses memoised digests and warns again
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = resolve_dataset_dir(
                "ml-1m", folder if via == "data_dir" else None, download=False, cache_dir=tmp_path
            )
        assert got == folder
        ours = [w for w in caught if issubclass(w.category, DataIntegrityWarning)]
        assert len(ours) == 1, [str(w.message) for w in ours]
        msg = str(ours[0].message)
        assert "ml-1m/ratings.dat" in msg
        assert "62da58f" in msg and "77a7c4b" in msg
    assert _leftovers(tmp_path) == []  # a local copy never touches the cache


# --------------------------------------------------------------------------------------------
# local resolution errors
# --------------------------------------------------------------------------------------------


def test_data_dir_missing_file_names_it(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    for name in ("u.data", "u.user"):
        (folder / name).write_bytes(FAKE_FILES[name])
    with pytest.raises(DataError, match="u.item") as info:
        resolve_dataset_dir("ml-100k", folder, download=True, cache_dir=tmp_path / "c")
    assert str(folder) in str(info.value)
    assert not (tmp_path / "c").exists()


def test_data_dir_accepts_parent_folder(tmp_path: Path, fake_source: DatasetSource) -> None:
    folder = tmp_path / "parent" / "ml-100k"
    folder.mkdir(parents=True)
    for name, data in FAKE_FILES.items():
        (folder / name).write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataIntegrityWarning)
        assert resolve_dataset_dir("ml-100k", tmp_path / "parent", progress=False) == folder


def test_env_data_dir_missing_names_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(dl.DATA_DIR_ENV, str(tmp_path))
    with pytest.raises(DataError, match=dl.DATA_DIR_ENV) as info:
        resolve_dataset_dir("ml-1m", cache_dir=tmp_path / "c")
    assert str(tmp_path / "ml-1m") in str(info.value)


def test_no_download_nothing_found(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=dl.DATA_DIR_ENV) as info:
        resolve_dataset_dir("ml-1m", download=False, cache_dir=tmp_path / "cache")
    msg = str(info.value)
    assert "--data-dir" in msg and str(tmp_path / "cache" / "ml-1m") in msg
    assert not (tmp_path / "cache").exists()


def test_cache_dir_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(dl.CACHE_DIR_ENV, str(tmp_path / "envcache"))
    with pytest.raises(DataError, match="envcache"):
        resolve_dataset_dir("ml-100k", download=False)


def test_unknown_dataset() -> None:
    with pytest.raises(DataError, match="known datasets: ml-100k, ml-1m"):
        resolve_dataset_dir("ml-25m", download=False)


# --------------------------------------------------------------------------------------------
# download path (offline: file:// and a local http.server)
# --------------------------------------------------------------------------------------------


def test_download_file_url(tmp_path: Path, fake_source: DatasetSource) -> None:
    cache = tmp_path / "cache"
    got = resolve_dataset_dir("ml-100k", cache_dir=cache, progress=False)
    assert got == cache / "ml-100k"
    for name, data in FAKE_FILES.items():
        assert (got / name).read_bytes() == data
    assert (got / "README").is_file()  # the rest of the zip folder comes along
    assert _leftovers(cache) == ["ml-100k"]
    # The second call finds the cache even though the source URL is now gone.
    (tmp_path / "ml-100k.zip").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataIntegrityWarning)
        assert resolve_dataset_dir("ml-100k", cache_dir=cache, progress=False) == got


def test_download_http_once(
    tmp_path: Path, fake_source: DatasetSource, serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = _write_zip(tmp_path / "served.zip", FAKE_FILES).read_bytes()
    server = serve(payload)
    cache = tmp_path / "cache"
    monkeypatch.setenv(dl.CACHE_DIR_ENV, str(cache))
    got = resolve_dataset_dir("ml-100k", url=server.url, progress=True)
    assert server.requests == 1
    assert got == cache / "ml-100k"
    assert (got / "u.data").read_bytes() == FAKE_FILES["u.data"]
    assert _leftovers(cache) == ["ml-100k"]
    assert resolve_dataset_dir("ml-100k", url=server.url, progress=True) == got
    assert server.requests == 1  # served from the cache


def test_download_replaces_incomplete_cache(tmp_path: Path, fake_source: DatasetSource) -> None:
    cache = tmp_path / "cache"
    (cache / "ml-100k").mkdir(parents=True)
    (cache / "ml-100k" / "u.data").write_bytes(b"partial")
    got = resolve_dataset_dir("ml-100k", cache_dir=cache, progress=False)
    assert (got / "u.data").read_bytes() == FAKE_FILES["u.data"]
    assert _leftovers(cache) == ["ml-100k"]


def _expected_of(source: DatasetSource, name: str) -> str:
    check = next(fc for fc in source.files if fc.name == name)
    return check.sha256 or check.git_blob or ""


@pytest.mark.parametrize(
    "bad_name, content, pattern",
    [
        ("u.user", FAKE_FILES["u.user"].upper(), r"u\.user: sha256 [0-9a-f]{64}, expected"),
        ("u.item", FAKE_FILES["u.item"][:-2] + b"!\n", r"u\.item: git blob [0-9a-f]{40}, expected"),
        ("u.data", b"short\n", r"u\.data: size 6 bytes, expected \d+ bytes"),
    ],
    ids=["sha256", "git-blob", "size"],
)
def test_download_failing_verification_leaves_nothing(
    tmp_path: Path, fake_source: DatasetSource, bad_name: str, content: bytes, pattern: str
) -> None:
    bad = _write_zip(tmp_path / "bad.zip", {**FAKE_FILES, bad_name: content})
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=pattern) as info:
        resolve_dataset_dir("ml-100k", cache_dir=cache, url=bad.as_uri(), progress=False)
    if "size" not in pattern:
        msg = str(info.value)
        assert _expected_of(fake_source, bad_name) in msg  # full expected digest
        actual = hashlib.sha256(content).hexdigest() if "sha256" in pattern else _blob(content)
        assert actual in msg  # full actual digest
    assert _leftovers(cache) == []


def test_download_missing_member_leaves_nothing(tmp_path: Path, fake_source: DatasetSource) -> None:
    files = {k: v for k, v in FAKE_FILES.items() if k != "u.item"}
    bad = _write_zip(tmp_path / "bad.zip", files)
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=r"lacks ml-100k/u\.item"):
        resolve_dataset_dir("ml-100k", cache_dir=cache, url=bad.as_uri(), progress=False)
    assert _leftovers(cache) == []


def test_download_not_a_zip(tmp_path: Path, fake_source: DatasetSource) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"<html>not found</html>")
    with pytest.raises(DataError, match="not a valid zip"):
        resolve_dataset_dir("ml-100k", cache_dir=tmp_path / "cache", url=bad.as_uri())
    assert _leftovers(tmp_path / "cache") == []


def test_download_unreachable(tmp_path: Path, fake_source: DatasetSource) -> None:
    url = (tmp_path / "nowhere.zip").as_uri()
    with pytest.raises(DataError, match="could not download.*--data-dir"):
        resolve_dataset_dir("ml-100k", cache_dir=tmp_path / "cache", url=url, progress=False)
    assert _leftovers(tmp_path / "cache") == []


def _evil_zip(path: Path, kind: str, outside: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in FAKE_FILES.items():
            zf.writestr(f"ml-100k/{name}", data)
        if kind == "dotdot":
            zf.writestr(zipfile.ZipInfo("../evil"), b"pwned")
        elif kind == "nested-dotdot":
            zf.writestr(zipfile.ZipInfo("ml-100k/../../evil"), b"pwned")
        elif kind == "absolute":
            zf.writestr(zipfile.ZipInfo(str(outside / "evil")), b"pwned")
        elif kind == "backslash":
            zf.writestr(zipfile.ZipInfo("ml-100k\\..\\..\\evil"), b"pwned")
        elif kind == "symlink":
            info = zipfile.ZipInfo("ml-100k/evil")
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, str(outside / "evil"))
    return path


@pytest.mark.parametrize("kind", ["dotdot", "nested-dotdot", "absolute", "backslash", "symlink"])
def test_path_traversal_rejected(tmp_path: Path, fake_source: DatasetSource, kind: str) -> None:
    cache = tmp_path / "a" / "b" / "cache"
    evil = _evil_zip(tmp_path / "evil.zip", kind, tmp_path)
    with pytest.raises(DataError, match="refusing to extract"):
        resolve_dataset_dir("ml-100k", cache_dir=cache, url=evil.as_uri(), progress=False)
    assert _leftovers(cache) == []
    for where in (tmp_path, tmp_path / "a", tmp_path / "a" / "b"):
        assert not (where / "evil").exists()


# --------------------------------------------------------------------------------------------
# the download mirror: url= (--data-url), $PRIVREC_DATA_URL, GroupLens
# --------------------------------------------------------------------------------------------


def test_data_url_precedence_and_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    grouplens = "https://files.grouplens.org/datasets/movielens"
    assert archive_url("ml-1m") == f"{grouplens}/ml-1m.zip"
    assert archive_url("ml-100k") == f"{grouplens}/ml-100k.zip"
    # A base URL gets the GroupLens archive name, with or without a trailing slash.
    for base in ("https://mirror.example/ml", "https://mirror.example/ml/"):
        assert archive_url("ml-1m", base) == "https://mirror.example/ml/ml-1m.zip"
    assert archive_url("ml-100k", "http://h:8080") == "http://h:8080/ml-100k.zip"
    assert archive_url("ml-100k", "file:///srv/ml") == "file:///srv/ml/ml-100k.zip"
    # The URL of a zip is used as is (query string included).
    full = "https://mirror.example/x/movielens-100k.zip?token=1"
    assert archive_url("ml-100k", full) == full
    # The environment variable applies when the option is not given; the option wins.
    monkeypatch.setenv(dl.DATA_URL_ENV, "https://env.example/movielens/")
    assert archive_url("ml-1m") == "https://env.example/movielens/ml-1m.zip"
    assert archive_url("ml-1m", "https://opt.example") == "https://opt.example/ml-1m.zip"
    monkeypatch.setenv(dl.DATA_URL_ENV, "  ")  # empty: as if unset
    assert archive_url("ml-1m") == f"{grouplens}/ml-1m.zip"


@pytest.mark.parametrize(
    "value, pattern",
    [
        ("ftp://mirror.example/ml", "has scheme 'ftp'"),
        ("/srv/movielens", "has no scheme"),
        ("https:///movielens", "has no host"),
        ("https://mirror.example/ml-1m.zip", "is the ml-1m archive, but ml-100k"),
    ],
    ids=["scheme", "no-scheme", "no-host", "other-dataset"],
)
@pytest.mark.parametrize("via", ["option", "env"])
def test_data_url_malformed_is_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, pattern: str, via: str
) -> None:
    if via == "env":
        monkeypatch.setenv(dl.DATA_URL_ENV, value)
    url = value if via == "option" else None
    origin = "--data-url" if via == "option" else dl.DATA_URL_ENV
    with pytest.raises(ConfigError, match=pattern) as info:
        resolve_dataset_dir("ml-100k", cache_dir=tmp_path / "cache", url=url, progress=False)
    msg = str(info.value)
    assert msg.startswith(f"{origin} {value!r}") and "\n" not in msg
    assert not (tmp_path / "cache").exists()


def test_data_url_env_base_url_downloads_from_mirror(
    tmp_path: Path, fake_source: DatasetSource, serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = serve(_write_zip(tmp_path / "served.zip", FAKE_FILES).read_bytes())
    (tmp_path / "ml-100k.zip").unlink()  # the default URL is gone: only the mirror works
    monkeypatch.setenv(dl.DATA_URL_ENV, f"{server.base}/mirror/movielens")
    cache = tmp_path / "cache"
    got = resolve_dataset_dir("ml-100k", cache_dir=cache, progress=False)
    assert server.paths == ["/mirror/movielens/ml-100k.zip"]
    assert got == cache / "ml-100k" and (got / "u.user").read_bytes() == FAKE_FILES["u.user"]
    assert _leftovers(cache) == ["ml-100k"]


def test_data_url_option_beats_env_and_default(
    tmp_path: Path, fake_source: DatasetSource, serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = _write_zip(tmp_path / "served.zip", FAKE_FILES).read_bytes()
    env_server, opt_server = serve(payload), serve(payload)
    monkeypatch.setenv(dl.DATA_URL_ENV, env_server.base)
    cache = tmp_path / "cache"
    resolve_dataset_dir("ml-100k", cache_dir=cache, url=f"{opt_server.base}/", progress=False)
    assert opt_server.paths == ["/ml-100k.zip"] and env_server.requests == 0


@pytest.mark.parametrize("via", ["option", "env"])
def test_data_url_mirror_with_other_bytes_is_refused(
    tmp_path: Path, fake_source: DatasetSource, serve, monkeypatch: pytest.MonkeyPatch, via: str
) -> None:
    tampered = {**FAKE_FILES, "u.user": FAKE_FILES["u.user"].replace(b"M", b"F")}
    server = serve(_write_zip(tmp_path / "served.zip", tampered).read_bytes())
    if via == "env":
        monkeypatch.setenv(dl.DATA_URL_ENV, server.base)
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=r"failed verification.*u\.user: sha256") as info:
        resolve_dataset_dir(
            "ml-100k", cache_dir=cache, url=server.base if via == "option" else None
        )
    assert f"{server.base}/ml-100k.zip" in str(info.value)
    assert server.requests == 1
    assert _leftovers(cache) == []


def test_data_url_ignored_when_cached(
    tmp_path: Path, fake_source: DatasetSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    got = resolve_dataset_dir("ml-100k", cache_dir=cache, progress=False)
    monkeypatch.setenv(dl.DATA_URL_ENV, (tmp_path / "nowhere").as_uri())
    assert resolve_dataset_dir("ml-100k", cache_dir=cache, url="http://127.0.0.1:9/") == got


# --------------------------------------------------------------------------------------------
# corrupt compressed data in the downloaded zip
# --------------------------------------------------------------------------------------------


def _deflated_zip(path: Path, files: dict[str, bytes], folder: str = "ml-100k") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{folder}/", b"")
        for name, data in files.items():
            zf.writestr(f"{folder}/{name}", data)
    return path


def _corrupt_member(path: Path, member: str, how: str) -> zipfile.ZipInfo:
    """Damage the compressed bytes of ``member`` in place (the directory stays intact)."""
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    assert info.compress_type == zipfile.ZIP_DEFLATED and info.compress_size > 16
    name_len, extra_len = struct.unpack(
        "<HH", raw[info.header_offset + 26 : info.header_offset + 30]
    )
    start = info.header_offset + 30 + name_len + extra_len
    if how == "invalid-block":
        raw[start] = 0xFF  # BFINAL=1, BTYPE=11: a reserved block type
    elif how == "garbage":
        for i in range(start + 2, start + info.compress_size - 2):
            raw[i] ^= 0xA5
    elif how == "zeroed-tail":
        # Zeros decode as stored blocks: the stream "ends" early with the wrong content.
        for i in range(start + info.compress_size // 2, start + info.compress_size):
            raw[i] = 0
    path.write_bytes(bytes(raw))
    return info


@pytest.mark.parametrize(
    "how, cause",
    [("invalid-block", zlib.error), ("garbage", zlib.error), ("zeroed-tail", zipfile.BadZipFile)],
)
def test_corrupt_deflate_is_one_line_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str, cause: type[Exception]
) -> None:
    # Enough text for a dynamic-Huffman block; u.item comes last, so the members before it
    # were already extracted when its damage is found.
    files = {
        **FAKE_FILES,
        "u.item": b"".join(
            b"%d|Movie %d (19%02d)|01-Jan-1995||http://x/%d|0|1|0\n" % (i, i * 7, i % 100, i)
            for i in range(1, 400)
        ),
    }
    checks = tuple(
        FileCheck(name, len(data), hashlib.sha256(data).hexdigest(), None)
        for name, data in files.items()
    )
    zip_path = _deflated_zip(tmp_path / "ml-100k.zip", files)
    info = _corrupt_member(zip_path, "ml-100k/u.item", how)
    source = DatasetSource("ml-100k", zip_path.as_uri(), "ml-100k", checks)
    monkeypatch.setitem(KNOWN_DATASETS, "ml-100k", source)
    cache = tmp_path / "cache"
    (cache / "ml-100k").mkdir(parents=True)  # an earlier incomplete copy stays as it was
    (cache / "ml-100k" / "u.data").write_bytes(b"partial")

    with pytest.raises(DataError) as raised:
        resolve_dataset_dir("ml-100k", cache_dir=cache, progress=False)
    msg = str(raised.value)
    assert "\n" not in msg
    assert f"ml-100k.zip from {zip_path.as_uri()} is corrupt" in msg
    assert "member 'ml-100k/u.item'" in msg
    assert f"expected {info.file_size} bytes with CRC-32 {info.CRC:08x}" in msg
    assert isinstance(raised.value.__cause__, cause)  # what escaped before, as a traceback
    assert _leftovers(cache) == ["ml-100k"]  # no .part zip, no extraction folder
    assert sorted(p.name for p in (cache / "ml-100k").iterdir()) == ["u.data"]
    assert (cache / "ml-100k" / "u.data").read_bytes() == b"partial"
