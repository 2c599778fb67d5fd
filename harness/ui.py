"""Terminal output: rich progress bars when interactive, plain one-line logs when quiet
(under CI, with --quiet, or when stdout is not a terminal)."""

from __future__ import annotations

import contextlib
import os
import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def is_quiet(flag: bool = False) -> bool:
    return flag or bool(os.environ.get("CI")) or not sys.stdout.isatty()


class UI:
    def __init__(self, quiet: bool = False):
        self.quiet = is_quiet(quiet)
        # not a terminal (CI logs, files): wide enough for the results table
        self.console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)
        self._progress: Progress | None = None
        self._bars: list = []  # bars of the current cell, cleared when it ends

    def log(self, message: str) -> None:
        self.console.print(message, markup=False) if self.quiet else self.console.print(message)

    @contextlib.contextmanager
    def session(self):
        """Holds the live progress display for the duration of a run."""
        if self.quiet:
            yield self
            return
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=self.console,
            transient=False,
        )
        with self._progress:
            yield self
        self._progress = None

    def steps(self, description: str, total: int):
        """A callback `(done, total, loss)` that advances a bar (or logs sparsely)."""
        if self._progress is None:
            marks = {total, max(1, total // 4), max(1, total // 2), max(1, 3 * total // 4)}

            def log_step(done, steps, loss):
                if done in marks or done == steps:
                    self.log(f"  {description}: step {done}/{steps} loss {loss:.3f}")

            return log_step
        task_id = self._progress.add_task(description, total=total, info="")
        self._bars.append(task_id)

        def advance(done, steps, loss):  # a method may plan more or fewer steps
            self._progress.update(task_id, completed=done, total=steps, info=f"loss {loss:.3f}")

        return advance

    @contextlib.contextmanager
    def activity(self, description: str):
        """An indeterminate bar for a stage without step counts (evaluation, setup)."""
        if self._progress is None:
            self.log(f"  {description} ...")
            yield
            return
        task_id = self._progress.add_task(description, total=None, info="")
        self._bars.append(task_id)
        try:
            yield
        finally:
            self._progress.update(task_id, total=1, completed=1)

    def clear(self) -> None:
        """Drop the finished bars (called at the end of each cell; its log lines stay)."""
        if self._progress is not None:
            for task_id in self._bars:
                self._progress.remove_task(task_id)
        self._bars = []
