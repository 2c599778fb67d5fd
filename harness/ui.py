"""Terminal output of `harness run`: rich progress bars when interactive, plain one-line
logs when quiet (under CI, with --quiet, or when stdout is not a terminal), and the
end-of-run results table (`summary_table`). `harness report`'s tables are in
harness/report/terminal.py."""

from __future__ import annotations

import contextlib
import os
import sys
from collections import defaultdict
from statistics import mean, stdev

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.metrics import METRICS, label, legend
from harness.scores import probe_directions, score_table


def make_console() -> Console:
    """The console every command prints to: the terminal's width, or, not a terminal (a
    pipe, a CI log, a file), 200 columns, so that tables are not cut to 80."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def is_quiet(flag: bool = False) -> bool:
    return flag or bool(os.environ.get("CI")) or not sys.stdout.isatty()


class UI:
    def __init__(self, quiet: bool = False):
        self.quiet = is_quiet(quiet)
        self.console = make_console()
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


def _mean_sd(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{mean(values):.3f} ± {stdev(values):.3f}"


def identical(a: dict, b: dict) -> bool:
    """Do two cells' results agree item for item (every score of every row, every probe
    value)? A method whose regulariser does nothing gives its reference's cells exactly."""
    return a["tasks"] == b["tasks"] and a["items"] == b["items"] and a["R"] == b["R"] \
        and a["probes"] == b["probes"]


def aux_share(rs: list[dict]) -> str:
    """The mean share of the loss the method's auxiliary term took (a penalty or a
    distillation term beside the cross-entropy: training.py), over its cells' tasks; '-'
    for a method without one."""
    shares = [t["aux_share"] for r in rs for t in r.get("training", [])
              if isinstance(t, dict) and isinstance(t.get("aux_share"), (int, float))]
    return f"{100 * mean(shares):.2g}%" if shares else "-"


def summary_table(results: list[dict], reference: str = "sft") -> Table:
    """One row per (model, stream, method): mean ± sd over seeds of the headline metrics
    (`METRICS[...].headline`), each probe's final value, the auxiliary loss's share where
    the method has one, and the training time; a method whose cells equal the
    reference's item for item (every seed) is flagged. The caption is the metrics' legend."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in results:
        c = r["cell"]
        groups[(c["model"], c["stream"], c["method"])].append(r)
    by_seed = {(r["cell"]["model"], r["cell"]["stream"], r["cell"]["method"], r["cell"]["seed"]): r
               for r in results}
    headline = [name for name, metric in METRICS.items() if metric.headline]
    probe_names = sorted({p for r in results for p in r["probes"]})
    aux = any("aux_share" in t for r in results for t in r.get("training", [])
              if isinstance(t, dict))
    flags = {}
    for (model, stream, method), rs in groups.items():
        refs = [by_seed.get((model, stream, reference, r["cell"]["seed"])) for r in rs]
        if method != reference and all(ref is not None and identical(r, ref)
                                       for r, ref in zip(rs, refs)):
            flags[(model, stream, method)] = f"= {reference} item for item"
    caption = legend(headline + [f"{p}_final" for p in probe_names]) + (
        "; aux share: the share of the loss a penalty or distillation term beside the "
        "cross-entropy took" if aux else "")
    table = Table(title="Results (final row; mean ± sd over seeds)", caption=caption,
                  caption_justify="left")
    for col in ["model", "stream", "method", "seeds", *(label(m) for m in headline)]:
        table.add_column(col)
    # the score table and directions `harness report` and the leaderboard read
    scored = score_table(((r["cell"]["method"], r) for r in results),
                         headline + [f"{p}_final" for p in probe_names],
                         probe_directions(results))
    for p in probe_names:
        hib = scored.directions[f"{p}_final"]
        table.add_column(f"{label(p + '_final')} ({'↑' if hib else '↓'})")
    if aux:
        table.add_column("aux share")
    table.add_column("train s")
    if flags:
        table.add_column("note")
    for key, rs in sorted(groups.items()):
        model, stream, method = key
        table.add_row(
            model, stream, method, str(len(rs)),
            *[_mean_sd(list(scored.values.get((model, stream, m), {}).get(method, {}).values()))
              for m in [*headline, *(f"{p}_final" for p in probe_names)]],
            *([aux_share(rs)] if aux else []),
            f"{mean(r['timings']['train_s'] for r in rs):.0f}",
            *([flags.get(key, "")] if flags else []),
        )
    return table
