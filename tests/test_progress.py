"""The one progress helper: plain lines without a terminal, nothing when disabled."""

from __future__ import annotations

import io

from typer.testing import CliRunner

from privrec.cli.app import app
from privrec.progress import progress


def test_lines_without_a_terminal():
    out = io.StringIO()
    with progress("sweep", 3, done=1, stream=out) as step:
        step("run-a: ok")
        step("run-b: diverged")
    lines = out.getvalue().splitlines()
    assert [line.split()[:2] for line in lines] == [["sweep", "2/3"], ["sweep", "3/3"]]
    assert lines[1].endswith("run-b: diverged") and "\x1b" not in out.getvalue()


def test_disabled_prints_nothing():
    out = io.StringIO()
    with progress("audit", 2, enabled=False, stream=out) as step:
        step("x")
    assert out.getvalue() == ""


def test_train_without_a_terminal_prints_one_line_per_epoch():
    res = CliRunner().invoke(
        app, ["train", "--syn-users", "150", "--syn-items", "40", "-e", "4", "--epochs", "3"]
    )
    assert res.exit_code == 0, res.output
    epochs = [line for line in res.output.splitlines() if line.startswith("training ")]
    assert [line.split()[1] for line in epochs] == ["1/3", "2/3", "3/3"]
    assert "val_hr@10=" in epochs[-1]
