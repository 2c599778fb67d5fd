"""`harness run --dry-run` (and `harness submit --dry-run`): the plan before anything runs:
the cells in grid order with their state in OUT and identity, the cost per cell (OUT's
measured figures, GPU arithmetic, or the 135M model's CPU figures), the base-model rows the
cache lacks, the checkpoints' disk, the power of the design, the settings in force, the
downloads and the GPU memory fit. Apart from harness/launch.py, which runs cells: planning
reads, it never writes."""

from __future__ import annotations

import dataclasses
import heapq
import json
from pathlib import Path

from harness.errors import HarnessError
from harness.launch import machine_note, short_look_text


def dry_run(suite, out: Path, cells: list, as_json: bool = False, gpu: str | None = None,
            jobs: int | None = None, devices: list[str] | None = None,
            note: str | None = None, device=None) -> int:
    """List the cells (in grid order, with their index for `--cell-index`), what a run
    would do with each, who runs the running ones, and an estimate of the cost."""
    from rich.console import Console
    from rich.table import Table

    from harness import claims
    from harness.checkpoint import disk_bytes
    from harness.grid import (TUNING_CELLS, expand, grid_id, measured_seconds, plan,
                              shared_generation, state)
    from harness.results import CellState

    measured, index = measured_seconds(out), {c.id: i for i, c in enumerate(expand(suite))}
    try:  # the grid id hashes the task data, which a paper suite may not have fetched yet
        gid = grid_id(suite)
    except HarnessError:
        gid = "(unknown until the task data is fetched)"
    rows, total_s, base_rows, unknown, shared = [], 0.0, {}, 0, {}
    from harness.fetch import missing

    unfetched = {what.removeprefix("task ") for item in missing(suite) for what in item["for"]
                 if what.startswith("task ")}  # their data would be fetched to plan them
    for cell in cells:
        found = state(cell, suite, out / "cells" / cell.id)
        e = cell_estimate(cell, suite, measured, gpu)
        local = not unfetched & set(cell.tasks)  # a plan needs the task data
        # a tuple: where the base row would be is not known
        base = (local and base_row_path(cell, suite)) or (cell.model, cell.tasks)
        if base not in base_rows and found is not CellState.COMPLETE:  # (cached?, seconds)
            base_rows[base] = (isinstance(base, Path) and base.exists(), e["row_s"] or 0.0)
        if found is not CellState.COMPLETE and e["source"].startswith(("135M", TUNING_CELLS)):
            shared.update(shared_generation(cell, suite))  # each unit once (a dict)
        known = e["train_s"] is not None
        row = {"index": index[cell.id], "id": cell.id, "state": found.value, **cell.info,
               "steps": e["steps"], "estimate_s": round(e["train_s"] + e["eval_s"]
                                                        + (e["setup_s"] or 0.0), 1)
               if known else None,
               "estimate": {k: None if e[k] is None else round(e[k], 1) for k in
                            ("setup_s", "train_s", "eval_s", "generation_s", "probes_s")},
               "estimate_from": e["source"], "checkpoint_bytes": disk_bytes(cell, suite)}
        try:  # what the cell's hash covers (harness/identity.py)
            if not local:
                raise HarnessError("task data not fetched yet", "harness fetch")
            planned = plan(cell, suite)
            row["identity"], row["config_hash"] = planned.parts, planned.config_hash
        except HarnessError:  # task data not fetched yet: no identity to show
            row["identity"] = row["config_hash"] = None
        if found is CellState.RUNNING:
            row["claim"] = {k: v for k, v in (claims.holder(out / "cells" / cell.id) or {}
                                              ).items() if k != "token"}
        elif found is not CellState.COMPLETE:
            total_s += row["estimate_s"] or 0.0
            unknown += not known
        rows.append((row, e))
    uncached = [seconds for cached, seconds in base_rows.values() if not cached]
    total_s += sum(uncached) + sum(shared.values())
    todo = sum(r["state"] not in ("complete", "running") for r, _ in rows)
    workers = jobs or len(devices or ())  # --jobs N, or a worker per GPU of --devices
    wall_s = None if workers < 2 else makespan(  # each base row once, as its own item
        [r["estimate_s"] or 0.0 for r, _ in rows if r["state"] not in ("complete", "running")]
        + uncached + list(shared.values()), workers)
    import torch  # estimates "from this OUT" were measured on its cells' machine

    elsewhere = machine_note(out, device or torch.device("cpu"))
    if as_json:
        print(json.dumps({"suite": suite.name, "grid_id": gid, "out": str(out),
                          "to_run": todo, "estimate_s": round(total_s, 1),
                          **({"workers": workers, "estimate_wall_s": round(wall_s, 1)}
                             if wall_s is not None else {}),
                          "base_rows_to_compute": len(uncached),
                          "shared_generation_s": round(sum(shared.values()), 1),
                          "cells_without_estimate": unknown,
                          **({"short_look": suite.short_look} if suite.short_look else {}),
                          **({"note": note} if note else {}),
                          **({"machine_note": elsewhere} if elsewhere else {}),
                          "cells": [r for r, _ in rows]}, indent=1))
        return 0
    table = Table(title=f"suite {suite.name}: grid {gid} -> {out}{short_look_text(suite)}")
    for col in ("#", "cell", "state", "steps", "setup", "train", "eval", "of which: gen.",
                "probes", "estimate from"):
        table.add_column(col)
    for row, e in rows:
        shown = row["state"] + (f" ({claims.describe(row['claim'])})" if "claim" in row else "")
        times = [duration(e[k]) for k in ("setup_s", "train_s", "eval_s", "generation_s",
                                          "probes_s")]
        table.add_row(str(row["index"]), row["id"], shown, str(e["steps"]), *times, e["source"])
    Console(width=200).print(table)
    running = sum(r["state"] == "running" for r, _ in rows)
    print(f"{todo} of {len(cells)} cells to run"
          + (f" ({running} running in another process)" if running else "")
          + f"; estimated {duration(total_s)}"
          + (" in one process" if wall_s is not None else "")
          + (f", of which {len(uncached)} base-model row(s) (row 0: the untrained model with "
             f"every probe) not in the cache, {duration(sum(uncached))}" if uncached else
             ", base-model rows cached")
          + (f", and {len(shared)} cached generation(s) shared between cells (sa-sft's "
             f"self-dialogue pools, sdft-rewrite's rewrites; counted as not yet cached), "
             f"{duration(sum(shared.values()))}" if shared else "")
          + (f"; {workers_text(wall_s, workers)}" if wall_s is not None else "")
          + (f"; {unknown} cell(s) without an estimate (a model far larger than the 135M the "
             "CPU figures are for: give --gpu H100 for GPU arithmetic)" if unknown else "")
          + ". Per cell, from: this OUT where it has complete cells of a method, else its "
          "`harness tune` cells in OUT/tuning (their shared generation counted apart), else GPU "
          "arithmetic with --gpu NAME (harness/cost.py), else the 135M model's figures on a "
          "2-core CPU (slower at 1 thread or on a loaded machine). Generation and probes are "
          "parts of setup, train and eval, shown on their own; '-': not known")
    if suite.eval.rows != "all":
        print(rows_line(suite))
    if suite.eval.probe_rows != "all":
        print(probe_rows_line(suite))
    print(checkpoint_line([r["checkpoint_bytes"] for r, _ in rows]))
    print(power_line(suite, out))
    print("settings in force (defaults, then the suite's, then --set):")
    for line in settings_lines(suite):
        print(f"  {line}")
    from harness.fetch import download_lines, downloads
    print("downloads (`harness fetch --suite NAME` fetches them; the embedded model is built in):")
    for line in download_lines(downloads(suite)):
        print(f"  {line}")
    if gpu:
        from harness.memory_fit import report
        print("\n".join(report(suite, gpu, jobs, devices)))
        from harness.cost import report_line
        from harness.memory_fit import parse_gpu
        hours = report_line(suite, parse_gpu(gpu)[0])
        if hours:
            print(hours)
    for line in (elsewhere, note):
        if line:
            print(line)
    return 0


def makespan(seconds: list[float], workers: int) -> float:
    """The wall clock of cells that take `seconds` on `workers` workers running at once,
    each cell to the worker free first, longest first (LPT: within 4/3 of the best split)."""
    loads = [0.0] * workers
    for s in sorted(seconds, reverse=True):
        heapq.heapreplace(loads, loads[0] + s)
    return max(loads)


def workers_text(wall_s: float, workers: int) -> str:
    """The estimate line's wall clock with `--jobs N` (`harness run` and `harness tune`)."""
    return (f"about {duration(wall_s)} of wall clock with {workers} workers (an estimate: "
            f"the cells' estimates spread over {workers} workers, longest first)")


def rows_line(suite) -> str:
    """The evaluation schedule where it is not the default (harness/eval_rows.py)."""
    from harness.eval_rows import evaluated_entries

    counts = ", ".join(f"{s}: {evaluated_entries(suite.eval.rows, len(t))} of {len(t) ** 2}"
                       for s, t in suite.streams.items())
    return (f"evaluation: eval.rows {suite.eval.rows}: after each task that task alone, after "
            f"the last every task (entries of R after training, per stream: {counts}; the "
            "estimates count them); FWT will be null, AIA and forgetting too from 3 tasks")


def probe_rows_line(suite) -> str:
    """The probe schedule where it is not the default (harness/eval_rows.py)."""
    return (f"evaluation: eval.probe_rows {suite.eval.probe_rows}: the probes run on the base "
            "model and after the last task only (1 row after training instead of one per "
            "task; the estimates count them); the rows between hold null probe values")


def checkpoint_line(sizes: list[int | None]) -> str:
    """The disk the cells' checkpoints take (harness/checkpoint.py)."""
    def size(n: float) -> str:
        return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"

    known = [n for n in sizes if n is not None]
    if not known:
        return "checkpoints: size unknown (the model's config.json is not here)"
    return (f"checkpoints: up to {size(max(known))} a running cell (cells/<id>/checkpoint.pt: "
            "its trainable weights and the method's state, replaced after each task and "
            "removed when the cell completes); with --keep-checkpoints "
            f"{size(sum(known))} for these {len(known)} cells")


def duration(seconds: float | None) -> str:
    """Seconds as the dry run shows them: s under two minutes, min under two hours, h."""
    if seconds is None:
        return "-"
    return (f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
            if seconds < 7200 else f"{seconds / 3600:.1f} h")


CPU_FIGURES_UP_TO = 300_000_000  # parameters: the 135M's CPU figures are not stretched
# to a model much larger (a 7B on a CPU is not a plan, nor an estimate of its GPU time)


def cell_estimate(cell, suite, measured: dict, gpu: str | None) -> dict:
    """grid.estimate's figures, but from GPU arithmetic (harness/cost.py) where `--gpu`
    names a GPU and OUT has no cells of the method, and none (None) where only the 135M's
    CPU figures remain and the model is far larger; `row_s`: one evaluation row."""
    from harness.cost import GPU_SPECS, cell_seconds
    from harness.grid import estimate
    from harness.memory import architecture

    e = estimate(cell, suite, measured)  # row_s: a full row, as row 0 is
    if e["source"].startswith("this OUT"):
        return e
    name = gpu and _gpu_name(gpu)
    try:
        arch = architecture(cell.model)
    except HarnessError:  # no config.json to count (offline, gated): no estimate
        arch = None
    if arch is not None and name in GPU_SPECS:
        s = cell_seconds(cell, suite, arch, name)
        return e | {"train_s": s["train"] + s["generate"], "eval_s": s["evaluate"] - s["base_row"],
                    "generation_s": s["generate"], "setup_s": None, "probes_s": None,
                    "row_s": s["base_row"], "source": f"{name} arithmetic"}
    if arch is None or arch.params > CPU_FIGURES_UP_TO:
        return e | {"train_s": None, "eval_s": None, "row_s": None,
                    "source": "none (give --gpu NAME)"}
    return e


def _gpu_name(gpu: str) -> str | None:
    from harness.memory_fit import parse_gpu

    try:
        return parse_gpu(gpu)[0]
    except HarnessError:
        return None


def base_row_path(cell, suite):
    """Where the cache keeps the cell's base-model row (row 0, shared by every cell of
    its model, tasks, probes and evaluation settings: runner.base_row_key), or None
    where that is not known before the model is resolved (a hub model)."""
    from harness.fetch import is_hub_id
    from harness.grid import plan
    from harness.precision import using
    from harness.runner import base_row_key
    from harness.storage import Cache

    if is_hub_id(cell.model):
        return None
    try:
        p = plan(cell, suite)
    except HarnessError:
        return None
    with using(suite.precision):
        return Cache().path("base_rows", base_row_key(p))


POWER_METRICS = ("acc", "bwt")
STATED_SPREAD = 0.05  # sd of per-(stream, seed) differences between two methods, assumed
# where OUT has no cells to measure it by (the shipped v1 board's ACC pairs: about 0.03-0.07)


def measured_spread(out: Path, metric: str) -> float | None:
    """`metric`'s spread in OUT's complete cells (a pilot), read through the one score table
    (harness.scores) and measured as the leaderboard measures its own
    (harness.power.observed_spread); None with fewer than 2 paired values."""
    from harness.cells import read_cells
    from harness.power import observed_spread
    from harness.scores import score_table

    if not (out / "cells").is_dir():
        return None
    records = read_cells(out).records
    return observed_spread(score_table(((r.method, r.data) for r in records), [metric])
                           .by_pair(metric))


def power_line(suite, out: Path) -> str:
    """The minimum detectable difference of the design per headline metric, after the
    board-wide correction (all pairs of the suite's methods), at 80% power and alpha 0.05
    (harness.power.design_mdd), from OUT's measured spread where it has paired cells, else a
    stated one: what the grid can and cannot tell apart, before anything runs."""
    from harness.power import design_mdd

    if len(suite.methods) < 2:
        return "power: one method, no comparisons between methods to size"
    parts = []
    for metric in POWER_METRICS:
        spread = measured_spread(out, metric)
        source = "sd measured in OUT" if spread is not None else "sd assumed"
        spread = STATED_SPREAD if spread is None else spread
        mdd = design_mdd({metric: spread}, len(suite.seeds), len(suite.streams),
                         len(suite.methods))[metric]
        parts.append(f"{metric} " + ("no test (fewer than 2 seeds)" if mdd is None else
                                      f"{mdd:.3f} ({source} {spread:.3f})"))
    return (f"power: smallest difference found 80% of the time at alpha 0.05 after Holm over "
            f"all {len(suite.methods) * (len(suite.methods) - 1) // 2} pairs, "
            f"{len(suite.seeds)} seeds x {len(suite.streams)} streams: " + "; ".join(parts))


def settings_lines(suite) -> list[str]:
    """Per method: its name, the settings it runs with, the training settings where they
    differ from the suite's, and the file a plugin comes from."""
    from harness.methods import METHODS
    from harness.methods.settings import in_force

    suite_train = dataclasses.asdict(suite.train)
    width = max(len(m.name) for m in suite.methods)
    lines = []
    for m in suite.methods:
        settings = in_force(m)
        shown = ("(does not import: its cells will fail)" if settings is None else
                 ", ".join(f"{k}={json.dumps(v)}" for k, v in settings.items()) or "(none)")
        train = {k: v for k, v in dataclasses.asdict(m.train).items()
                 if suite_train.get(k, getattr(suite.train, k)) != v}
        if train:
            shown += "; train: " + ", ".join(f"{k}={json.dumps(v)}" for k, v in train.items())
        if settings is not None and m.name not in METHODS:  # a file plugin: its file
            shown += f"  [{_shown_path(m.source)}]"
        lines.append(f"{m.name:<{width}}  {shown}")
    for stream, train in suite.stream_train.items():
        lines.append(f"stream {stream}: train " + ", ".join(
            f"{k}={json.dumps(v)}" for k, v in train.items()) + " (a method's own train settings override these)")
    for stream, methods in suite.stream_method_train.items():
        for name, train in methods.items():
            lines.append(f"stream {stream}, {name}: train " + ", ".join(
                f"{k}={json.dumps(v)}" for k, v in train.items()))
    return lines


def _shown_path(source: str) -> str:
    """A plugin's source, relative to the working directory when under it."""
    path, _, cls = source.rpartition(":")
    try:
        path = str(Path(path).relative_to(Path.cwd().resolve()))
    except ValueError:
        pass
    return f"{path}:{cls}"
