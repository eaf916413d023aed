"""Families of lost or unsafe results, each tested with fresh cases:
``--overwrite`` and the overwrite swap (6), run directories trusted
by one file (7), outputs that cannot be written found only after the work (8), a report left
half written (9)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import privrec.artifacts as artifacts
from privrec.artifacts import Embeddings, check_writable, recover_swap
from privrec.cli.app import app
from privrec.errors import DataError
from privrec.experiments.report import write_report
from privrec.experiments.sweep_runner import run_sweep
from privrec.experiments.sweep_spec import SweepSpec
from privrec.runs.run_directory import (
    check_run_directory,
    read_run_directory,
    write_run_directory,
)
from privrec.runs.run_spec import RunSpec

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "v0.1"
REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()
SYN = ["--syn-users", "150", "--syn-items", "40"]
DATA = {"n_users": 200, "n_items": 60, "density": 0.08, "strength": 0.6, "seed": 1}
TRAIN = {"embedding_size": 4, "epochs": 2, "batch_size": 512, "patience": 0}


def _emb(n_users: int = 5, dim: int = 3, value: float = 1.0) -> Embeddings:
    return Embeddings(
        np.arange(n_users),
        np.full((n_users, dim), value, np.float32),
        np.arange(7),
        np.full((7, dim), value, np.float32),
        np.zeros(7, np.float32),
    )


def _write(path: Path, version: str, overwrite: bool = False) -> Path:
    """A small run directory; ``version`` is recorded to tell runs apart."""
    return write_run_directory(
        path,
        config={"privrec_version": version, "run_id": version},
        metrics={"status": "ok"},
        summary={"run": {"run_id": version}, "records": []},
        embeddings=_emb(value=float(len(version))),
        overwrite=overwrite,
    )


def _version(path: Path) -> str:
    return read_run_directory(path).config["privrec_version"]


def _hidden(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message, message
    return message


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    return int(proc.stdout)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A tiny real sweep (2 audited runs) to copy from."""
    out = tmp_path_factory.mktemp("safety") / "sweep"
    base = RunSpec.from_dict(
        {"dataset": "synthetic", "data": DATA, "train": TRAIN, "attackers": "fast"}
    )
    spec = SweepSpec(base=base, grid={"lambda": (0.0, 0.5)}, purge=("attr",))
    res = run_sweep(spec, out, executor="serial", progress=False)
    assert res.failed == 0 and res.computed == 2
    return out


def _a_run(sweep: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(sorted((sweep / "runs").iterdir())[0], run)
    return run


# -- family 6: --overwrite deletes only what privrec wrote; the swap survives a kill ------------


def test_family6_overwrite_refuses_what_privrec_did_not_write(tmp_path):
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("months of work")
    (mine / "config.json").write_text('{"latex": true}')  # a config.json, but not privrec's
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    for target in (mine, a_file):
        with pytest.raises(DataError, match="not a privrec run directory") as exc:
            _write(target, "new", overwrite=True)
        assert str(target) in _one_line(exc)
        with pytest.raises(DataError, match="not a privrec run directory"):
            check_writable(target, overwrite=True)
    assert (mine / "chapter1.tex").read_text() == "months of work"
    assert a_file.read_text() == "keep me"
    assert _hidden(tmp_path) == []  # no temporary directory left either


def test_family6_overwrite_replaces_runs_of_this_and_of_privrec_01(tmp_path):
    run = _write(tmp_path / "run", "old")
    _write(run, "new", overwrite=True)
    assert _version(run) == "new"
    old01 = tmp_path / "old01"
    shutil.copytree(FIXTURES / "train-run", old01)
    _write(old01, "new01", overwrite=True)
    assert _version(old01) == "new01"
    empty = tmp_path / "empty"
    empty.mkdir()
    _write(empty, "into-empty", overwrite=True)
    assert _version(empty) == "into-empty"
    with pytest.raises(DataError, match="already exists"):
        _write(run, "again")  # still refused without overwrite
    assert _hidden(tmp_path) == []


def test_family6_cli_overwrite_keeps_user_files(tmp_path):
    mine = tmp_path / "results"
    mine.mkdir()
    (mine / "data.csv").write_text("a,b\n1,2\n")
    args = ["train", *SYN, "-e", "4", "--epochs", "2", "-q", "--out", str(mine), "--overwrite"]
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert "not a privrec run directory" in res.output and "Traceback" not in res.output
    assert (mine / "data.csv").read_text() == "a,b\n1,2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


KILLER = textwrap.dedent(
    """
    import os, shutil, signal, sys
    import numpy as np
    from privrec.artifacts import Embeddings
    from privrec.runs.run_directory import write_run_directory

    path, when = sys.argv[1], sys.argv[2]
    real_replace, real_rmtree = os.replace, shutil.rmtree

    def replace(src, dst):  # the second rename of the swap: the new directory into place
        if when == "between" and str(src).endswith(".partial"):
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst)

    def rmtree(p, *args, **kwargs):  # removing the old directory once the new one is in
        if when == "cleanup" and ".old-" in str(p):
            os.kill(os.getpid(), signal.SIGKILL)
        return real_rmtree(p, *args, **kwargs)

    os.replace, shutil.rmtree = replace, rmtree
    emb = Embeddings(np.arange(2), np.ones((2, 2), np.float32), np.arange(3),
                     np.ones((3, 2), np.float32), np.zeros(3, np.float32))
    write_run_directory(path, config={"privrec_version": "new"}, metrics={"status": "ok"},
                        embeddings=emb, overwrite=True)
    """
)


def _kill_inside_the_swap(path: Path, when: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, str(path), when],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert proc.returncode == -9, proc.stderr  # SIGKILL


@pytest.mark.slow
def test_family6_kill_between_the_renames_restores_the_old_run(tmp_path):
    run = _write(tmp_path / "run", "old")
    _kill_inside_the_swap(run, "between")
    # what the kill left: no run, only the set-aside old run and the complete new one
    assert not run.exists()
    left = _hidden(tmp_path)
    assert len(left) == 2 and any(".old-" in n for n in left), left
    assert any(n.endswith(".partial") for n in left), left
    assert check_run_directory(run) is None  # reading (or checking) the path repairs it
    assert _version(run) == "old"
    assert _hidden(tmp_path) == []


@pytest.mark.slow
def test_family6_kill_between_the_renames_then_write(tmp_path):
    run = _write(tmp_path / "run", "old")
    _kill_inside_the_swap(run, "between")
    with pytest.raises(DataError, match="already exists"):  # the old run is back in place
        _write(run, "other")
    assert _hidden(tmp_path) == []
    _write(run, "newer", overwrite=True)
    assert _version(run) == "newer" and _hidden(tmp_path) == []


@pytest.mark.slow
def test_family6_kill_while_removing_the_old_run_keeps_the_new(tmp_path):
    run = _write(tmp_path / "run", "old")
    _kill_inside_the_swap(run, "cleanup")
    assert any(".old-" in n for n in _hidden(tmp_path))
    assert _version(run) == "new"
    assert _hidden(tmp_path) == []


def test_family6_interrupt_inside_the_swap_puts_the_old_run_back(tmp_path, monkeypatch):
    run = _write(tmp_path / "run", "old")
    real = os.replace

    def replace(src, dst):
        if str(src).endswith(".partial"):
            raise KeyboardInterrupt
        return real(src, dst)

    monkeypatch.setattr(artifacts.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        _write(run, "new", overwrite=True)
    monkeypatch.undo()
    assert _hidden(tmp_path) == []  # restored at once, in this process
    assert _version(run) == "old"


def test_family6_stale_partials_of_dead_processes_are_cleaned(tmp_path):
    host = artifacts._owner_tag().split("-")[0]
    dead = tmp_path / f".run.{host}-{_dead_pid()}-{'a' * 12}.partial"
    legacy = tmp_path / f".run.{'b' * 12}.partial"  # privrec 0.2 named no owner
    live = tmp_path / f".run.{host}-{os.getpid()}-{'c' * 12}.partial"
    other = tmp_path / f".run2.{host}-{_dead_pid()}-{'d' * 12}.partial"  # another path's
    for d in (dead, legacy, live, other):
        d.mkdir()
        (d / "config.json").write_text("{}")
    past = time.time() - 3600
    os.utime(legacy, (past, past))
    _write(tmp_path / "run", "v")
    assert not dead.exists() and not legacy.exists()
    assert live.exists() and other.exists()  # in use by a live process / not this path's
    assert recover_swap(tmp_path / "run") == []  # nothing more to do


# -- family 7: a run directory is checked file by file, not trusted by its name ---------------


def test_family7_the_manifest_lists_every_file(sweep):
    for run in (sweep / "runs").iterdir():
        config = json.loads((run / "config.json").read_text())
        files = config["manifest"]["files"]
        on_disk = {
            p.relative_to(run).as_posix()
            for p in run.rglob("*")
            if p.is_file() and p.name != "config.json"
        }
        assert set(files) == on_disk and {"embeddings.npz", "audit.json"} <= on_disk
        for rel, entry in files.items():
            assert entry["bytes"] == (run / rel).stat().st_size
        assert check_run_directory(run) is None and check_run_directory(run, hashes=True) is None
        assert "manifest" not in read_run_directory(run).config


def _truncate(file: Path, keep: float = 0.5) -> None:
    data = file.read_bytes()
    file.write_bytes(data[: int(len(data) * keep)])


def _flip(file: Path) -> None:
    data = bytearray(file.read_bytes())
    data[len(data) // 3] ^= 0xFF
    file.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("name", "damage", "expected"),
    [
        ("embeddings.npz", "delete", "missing"),
        ("embeddings.npz", "truncate", "truncated"),
        ("embeddings.npz", "empty", "truncated"),
        ("seen.npz", "truncate", "truncated"),
        ("metrics.json", "truncate", "truncated"),
        ("summary.json", "delete", "missing"),
        ("audit.json", "truncate", "truncated"),
    ],
)
def test_family7_damaged_run_is_a_clear_error(sweep, tmp_path, name, damage, expected):
    run = _a_run(sweep, tmp_path)
    file = run / name
    if damage == "delete":
        file.unlink()
    else:
        _truncate(file, 0.0 if damage == "empty" else 0.5)
    reason = check_run_directory(run)
    assert reason is not None and str(file) in reason and expected in reason
    with pytest.raises(DataError, match=expected) as exc:
        read_run_directory(run)
    assert str(file) in _one_line(exc)
    res = runner.invoke(app, ["recommend", str(run), "--users", "1"])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output


def test_family7_changed_array_data_is_caught_on_read(sweep, tmp_path):
    run = _a_run(sweep, tmp_path)
    _flip(run / "embeddings.npz")  # same size: only the SHA-256 (and the zip CRC) tell
    assert check_run_directory(run, hashes=True) is not None
    with pytest.raises(DataError, match="changed since it was written") as exc:
        read_run_directory(run)
    assert "embeddings.npz" in _one_line(exc)


def test_family7_sweep_resume_recomputes_incomplete_runs(sweep, tmp_path):
    out = tmp_path / "sweep"
    shutil.copytree(sweep, out)
    first, second = sorted((out / "runs").iterdir())
    (first / "embeddings.npz").unlink()
    _truncate(second / "embeddings.npz")
    base = RunSpec.from_dict(
        {"dataset": "synthetic", "data": DATA, "train": TRAIN, "attackers": "fast"}
    )
    spec = SweepSpec(base=base, grid={"lambda": (0.0, 0.5)}, purge=("attr",))
    again = run_sweep(spec, out, executor="serial", progress=False)
    assert again.computed == 2 and again.skipped == 0 and again.failed == 0
    for run in (first, second):
        assert check_run_directory(run, hashes=True) is None
        assert read_run_directory(run).embeddings is not None
    resumed = run_sweep(spec, out, executor="serial", progress=False)
    assert resumed.computed == 0 and resumed.skipped == 2


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("embeddings.npz", b"", "truncated or corrupt .npz"),
        ("embeddings.npz", b"PK\x03\x04garbage", "truncated or corrupt .npz"),
        ("embeddings.npz", b"not an archive at all", "embeddings.npz"),
        ("metrics.json", b"[1, 2]", "expected a JSON object"),
        ("metrics.json", b'{"status": "ok"', "invalid JSON"),
        ("config.json", b"\xff\xfe{}", "not UTF-8"),
        ("audit.json", b'{"headline": [', "invalid JSON"),
    ],
)
def test_family7_v01_runs_without_manifest_fail_in_one_line(tmp_path, name, content, message):
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "erase-run", run)
    assert check_run_directory(run) is None and read_run_directory(run).embeddings is not None
    (run / name).write_bytes(content)
    with pytest.raises(DataError, match=message) as exc:
        read_run_directory(run)
    assert name in _one_line(exc)
    assert name in (check_run_directory(run) or "")
    res = runner.invoke(app, ["recommend", str(run), "--include-seen"])
    assert res.exit_code == 2 and "Traceback" not in res.output and name in res.output


def test_family7_v01_fixtures_check_and_a_lost_file_is_noticed(tmp_path):
    for run in (FIXTURES / "train-run", FIXTURES / "erase-run", *(FIXTURES / "sweep" / "runs").iterdir()):  # fmt: skip
        assert check_run_directory(run) is None, run
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "train-run", run)
    (run / "embeddings.npz").unlink()
    assert "embeddings.npz: missing" in (check_run_directory(run) or "")
    with pytest.raises(DataError, match="embeddings.npz: missing"):
        read_run_directory(run)


# -- family 8: can the output be written? Asked before the work, not after ----------------------


def test_family8_parent_is_a_regular_file(tmp_path):
    blocker = tmp_path / "results"
    blocker.write_text("a file where a folder was expected")
    for out in (blocker / "run", blocker / "deeper" / "still" / "run"):
        with pytest.raises(DataError, match="is a file, not a directory") as exc:
            check_writable(out)
        assert str(out) in _one_line(exc)
    with pytest.raises(DataError, match="results") as exc:  # and writing says so too
        _write(blocker / "run", "v")
    _one_line(exc)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_family8_missing_parents_are_fine_and_nothing_is_left(tmp_path):
    check_writable(tmp_path / "a" / "b" / "c" / "run")
    check_writable(tmp_path / "run", overwrite=False)
    assert list(tmp_path.iterdir()) == []  # no probe file, no parent created
    run = _write(tmp_path / "run", "v")
    check_writable(run, overwrite=True)
    with pytest.raises(DataError, match="already exists"):
        check_writable(run, overwrite=False)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="root writes into read-only directories; the check cannot fail as root",
)
def test_family8_read_only_directory(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        for out in (locked / "run", locked / "sub" / "run"):
            with pytest.raises(DataError, match="cannot write in") as exc:
                check_writable(out)
            assert str(out) in _one_line(exc)
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


# -- family 9: the report is written whole or not at all ----------------------------------------


def test_family9_a_missing_sweep_creates_nothing(tmp_path, monkeypatch):
    nothere = tmp_path / "nothere"
    with pytest.raises(DataError, match="no sweep.json"):
        write_report(nothere)
    with pytest.raises(DataError, match="no sweep.json"):
        write_report(nothere, tmp_path / "out")
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["report", "nothere"])
    assert res.exit_code == 2 and "no sweep.json" in res.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_family9_a_failure_while_building_leaves_no_partial_set(sweep, tmp_path, monkeypatch):
    import privrec.experiments.report as report

    out = tmp_path / "out"

    def broken(*args, **kwargs):
        raise RuntimeError("the HTML renderer failed")

    monkeypatch.setattr(report, "_html", broken)
    with pytest.raises(RuntimeError, match="HTML renderer"):
        write_report(sweep, out)
    assert not out.exists()  # not even the figure or the markdown
    out.mkdir()
    (out / "report.md").write_text("the previous report")
    with pytest.raises(RuntimeError):
        write_report(sweep, out)
    assert sorted(p.name for p in out.iterdir()) == ["report.md"]
    assert (out / "report.md").read_text() == "the previous report"


def test_family9_a_failure_while_writing_leaves_no_partial_set(sweep, tmp_path):
    out = tmp_path / "out"
    (out / "report.html").mkdir(parents=True)  # the last file cannot be written
    with pytest.raises(DataError, match="report.html") as exc:
        write_report(sweep, out)
    _one_line(exc)
    assert sorted(p.name for p in out.iterdir()) == ["report.html"]
    (out / "report.html").rmdir()
    rep = write_report(sweep, out)
    assert set(rep.files) == {"markdown", "html", "figure"}
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.md", "tradeoff.png"]


def test_family9_unwritable_output_is_refused_before_building(sweep, tmp_path, monkeypatch):
    import privrec.experiments.report as report

    blocker = tmp_path / "out"
    blocker.write_text("a file")
    built = []
    monkeypatch.setattr(report, "_build", lambda ctx: built.append(ctx))
    with pytest.raises(DataError, match="is a file, not a directory"):
        write_report(sweep, blocker / "report")
    assert built == []
