"""The one progress helper of privrec: a Rich bar on a terminal, plain lines otherwise.

Long work (epochs of a training, runs of a sweep, attackers of an audit) reports through
:func:`progress`. On an interactive terminal it draws a Rich progress bar on stderr; without a
terminal (a log file, CI, ``nohup``) it prints one plain line per step — no control
characters — so a long command never stays silent. ``enabled=False`` prints nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

Advance = Callable[[str], None]
"""``advance(info)``: one step done, with a short description of it."""


@contextmanager
def progress(
    label: str,
    total: int,
    *,
    done: int = 0,
    enabled: bool = True,
    stream: TextIO | None = None,
    interactive: bool | None = None,
) -> Iterator[Advance]:
    """Report ``total`` steps of ``label`` (``done`` of them already finished).

    Yields ``advance(info)``. ``interactive`` (default: whether ``stream``, stderr by
    default, is a terminal) chooses the Rich bar over plain lines.
    """
    if not enabled:
        yield lambda info: None
        return
    out = stream if stream is not None else sys.stderr
    tty = out.isatty() if interactive is None else interactive
    if not tty:
        yield _lines(label, total, done, out)
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn(f"[bold]{escape(label)}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=Console(file=out),
    )
    with bar:
        task = bar.add_task(label, total=total, completed=done, info="")

        def advance(info: str) -> None:
            bar.update(task, advance=1, info=escape(info))

        yield advance


def _lines(label: str, total: int, done: int, out: TextIO) -> Advance:
    start = time.perf_counter()
    count = [done]
    width = len(str(total))

    def advance(info: str) -> None:
        count[0] += 1
        elapsed = time.perf_counter() - start
        out.write(f"{label} {count[0]:>{width}}/{total} {elapsed:7.1f}s {info}".rstrip() + "\n")
        out.flush()

    return advance
