"""The CLI's ``--data-url`` option and ``$PRIVREC_DATA_URL``, and damaged downloads as one line.

Offline: a small fake ml-100k (parsable, with matching checks registered in place of the
GroupLens ones) is served from a local http.server on 127.0.0.1 or a ``file://`` URL.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import struct
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from privrec.cli.app import app
from privrec.data import download as dl
from privrec.data.download import KNOWN_DATASETS, DatasetSource, FileCheck

runner = CliRunner()

N_USERS, N_ITEMS = 12, 10
GENRES = "|".join(["0"] * 18 + ["1"])
FILES: dict[str, bytes] = {
    "u.user": b"".join(
        b"%d|%d|%s|%s|1000%d\n"
        % (u, 18 + 3 * u, b"MF"[u % 2 : u % 2 + 1], [b"other", b"writer"][u % 2], u)
        for u in range(1, N_USERS + 1)
    ),
    "u.item": b"".join(
        b"%d|Movie %d (1995)|01-Jan-1995||http://x/%d|%s\n" % (i, i, i, GENRES.encode())
        for i in range(1, N_ITEMS + 1)
    ),
    "u.data": b"".join(
        b"%d\t%d\t%d\t%d\n" % (u, i, 1 + (u + i) % 5, 880000000 + 100 * u + i)
        for u in range(1, N_USERS + 1)
        for i in range(1, N_ITEMS + 1)
        if (u + i) % 3 != 0
    ),
}
COUNTS = {"users": N_USERS, "items": N_ITEMS}


def _zip(path: Path, files: dict[str, bytes] = FILES) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ml-100k/", b"")
        for name, data in files.items():
            zf.writestr(f"ml-100k/{name}", data)
    return path


class _Server:
    """Serves one payload on 127.0.0.1 at any path, recording the paths asked for."""

    def __init__(self, payload: bytes) -> None:
        self.paths: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                outer.paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def serve() -> Iterator:
    servers: list[_Server] = []

    def make(payload: bytes) -> _Server:
        servers.append(_Server(payload))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake ml-100k whose default URL is unreachable; an empty cache; no local copy."""
    checks = tuple(
        FileCheck(name, len(data), hashlib.sha256(data).hexdigest(), None)
        for name, data in FILES.items()
    )
    default = (tmp_path / "grouplens" / "ml-100k.zip").as_uri()  # does not exist
    monkeypatch.setitem(
        KNOWN_DATASETS, "ml-100k", DatasetSource("ml-100k", default, "ml-100k", checks)
    )
    monkeypatch.delenv(dl.DATA_DIR_ENV, raising=False)
    monkeypatch.delenv(dl.DATA_URL_ENV, raising=False)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setattr(dl, "_DIGEST_CACHE", {})
    root = tmp_path / "cache"
    monkeypatch.setenv(dl.CACHE_DIR_ENV, str(root))
    return root


def _info(*extra: str):
    return runner.invoke(app, ["data", "info", "--dataset", "ml-100k", "--json", *extra])


def _error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    assert lines[0].startswith("error: ")
    return lines[0]


def test_data_url_option_downloads_from_base_url(cache: Path, serve) -> None:
    server = serve(_zip(cache.parent / "served.zip").read_bytes())
    res = _info("--data-url", f"{server.base}/mirror/movielens/")
    assert res.exit_code == 0, res.output
    assert server.paths == ["/mirror/movielens/ml-100k.zip"]
    assert {k: json.loads(res.output)["counts"][k] for k in COUNTS} == COUNTS
    assert sorted(p.name for p in cache.iterdir()) == ["ml-100k"]


def test_data_url_env_is_used_without_the_option(
    cache: Path, serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = serve(_zip(cache.parent / "served.zip").read_bytes())
    monkeypatch.setenv(dl.DATA_URL_ENV, server.base)
    res = _info()
    assert res.exit_code == 0, res.output
    assert server.paths == ["/ml-100k.zip"]


def test_data_url_option_beats_env(cache: Path, serve, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = _zip(cache.parent / "served.zip").read_bytes()
    env_server, opt_server = serve(payload), serve(payload)
    monkeypatch.setenv(dl.DATA_URL_ENV, env_server.base)
    res = _info("--data-url", f"{opt_server.base}/ml-100k.zip")  # the zip's own URL
    assert res.exit_code == 0, res.output
    assert opt_server.paths == ["/ml-100k.zip"] and env_server.paths == []


def test_data_url_default_is_grouplens_source(cache: Path) -> None:
    # Neither option nor variable: the dataset's own (here unreachable) URL is tried.
    res = _info()
    assert res.exit_code == 2
    line = _error_line(res.output)
    assert "could not download ml-100k.zip from file://" in line and "grouplens" in line
    assert "--data-url" in line and dl.DATA_URL_ENV in line


def test_data_url_mirror_serving_other_bytes_is_refused(cache: Path, serve) -> None:
    tampered = {**FILES, "u.user": FILES["u.user"].replace(b"|M|", b"|F|")}
    server = serve(_zip(cache.parent / "served.zip", tampered).read_bytes())
    res = _info("--data-url", server.base)
    assert res.exit_code == 2
    line = _error_line(res.output)
    assert f"download from {server.base}/ml-100k.zip failed verification" in line
    assert "u.user: sha256" in line
    assert list(cache.iterdir()) == []


RUN_DIR = Path(__file__).parent / "fixtures" / "v0.1" / "train-run"


@pytest.mark.parametrize("command", ["train", "data info", "erase", "audit"])
def test_data_url_option_on_every_loading_command(
    command: str, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    help_text = runner.invoke(app, [*command.split(), "--help"]).output
    assert "--data-url" in help_text and "PRIVREC_DATA_URL" in help_text
    # The option reaches the loader: a malformed one is reported, whatever the command.
    monkeypatch.setenv(dl.DATA_URL_ENV, "https://ignored.example/")
    args = {
        "train": ["train", "-d", "ml-100k", "--epochs", "1", "-q"],
        "data info": ["data", "info", "-d", "ml-100k"],
        "erase": ["erase", str(RUN_DIR), "-a", "gender", "-o", str(tmp_path / "out")]
        + ["-d", "ml-100k", "-q"],
        "audit": ["audit", str(RUN_DIR), "-d", "ml-100k", "-q"],
    }[command]
    res = runner.invoke(app, [*args, "--data-url", "ftp://mirror.example/movielens"])
    assert res.exit_code == 2, res.output
    line = _error_line(res.output)
    assert line.startswith("error: --data-url 'ftp://mirror.example/movielens' has scheme 'ftp'")
    assert not cache.exists()


def test_corrupt_deflate_download_is_one_line(cache: Path) -> None:
    (cache.parent / "mirror").mkdir()
    zip_path = _zip(cache.parent / "mirror" / "ml-100k.zip")
    raw = bytearray(zip_path.read_bytes())
    with zipfile.ZipFile(zip_path) as zf:
        info = zf.getinfo("ml-100k/u.data")
    name_len, extra_len = struct.unpack(
        "<HH", raw[info.header_offset + 26 : info.header_offset + 30]
    )
    raw[info.header_offset + 30 + name_len + extra_len] = 0xFF  # a reserved deflate block type
    zip_path.write_bytes(bytes(raw))

    res = _info("--data-url", (cache.parent / "mirror").as_uri())
    assert res.exit_code == 2
    line = _error_line(res.output)
    assert f"ml-100k.zip from {zip_path.as_uri()} is corrupt" in line
    assert "member 'ml-100k/u.data'" in line and "zlib.error" in line
    assert f"expected {info.file_size} bytes with CRC-32 {info.CRC:08x}" in line
    assert sorted(p.name for p in cache.iterdir()) == []  # nothing half-extracted
