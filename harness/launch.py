"""`harness run` once its cells are planned (harness/cli.py parses and plans): the dry run
(cells, states, cost, settings in force, downloads, GPU memory), the options that do not go
together, the executor chosen (this process, `--jobs` workers, Ray tasks:
harness/executors.py), and the lines that end a run, read back from OUT."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from pathlib import Path

from harness.errors import HarnessError
from harness.identity import suite_record
from harness.storage import atomic_write_json


def csv(text: str) -> list[str]:
    """A comma-separated option's items (the CLI's and the workers' one parser)."""
    return [x.strip() for x in text.split(",") if x.strip()]


HUB = ("huggingface.co", 443)
HUB_TIMEOUT_S = 2.0


@contextlib.contextmanager
def offline_unless_reachable():
    """A plan (a dry run) must not wait on a hub it cannot reach: where HF_HUB_OFFLINE is
    unset, try the hub once for HUB_TIMEOUT_S (name lookup included, in a thread: a
    resolver may hang) and, unreachable, plan from the local caches and built-in configs
    as with HF_HUB_OFFLINE=1 until the block ends. Yields the line that says so (None
    where nothing changed), for the plan to print: an error stays one line. Entered
    before huggingface_hub is imported (it reads the variable once)."""
    import socket
    import threading

    names = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    if any(os.environ.get(v, "").upper() in {"1", "ON", "YES", "TRUE"} for v in names):
        yield None
        return
    reached: list[bool] = []

    def connect():
        try:
            socket.create_connection(HUB, timeout=HUB_TIMEOUT_S).close()
            reached.append(True)
        except OSError:
            pass

    probe = threading.Thread(target=connect, daemon=True)
    probe.start()
    probe.join(HUB_TIMEOUT_S)
    if reached:
        yield None
        return
    before = {v: os.environ.get(v) for v in names}
    os.environ.update({v: "1" for v in names})
    try:
        yield (f"{HUB[0]} did not answer within {HUB_TIMEOUT_S:g} s: planned offline, from "
               "the local caches and the built-in configs (HF_HUB_OFFLINE=1 says so at once)")
    finally:
        for v, value in before.items():
            os.environ.pop(v) if value is None else os.environ.update({v: value})


def check_options(args) -> None:
    """Options of `harness run` that do not go together."""
    from harness.executors import check_devices, import_ray

    if args.json and not args.dry_run:
        raise HarnessError("--json goes with --dry-run", "add --dry-run, or leave out --json")
    for name in ("jobs", "threads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise HarnessError(f"--{name} must be at least 1", f"e.g. --{name} 2")
    ray = args.executor == "ray"
    if not ray and (args.address or args.gpus_per_cell is not None):
        raise HarnessError("--address and --gpus-per-cell go with --executor ray",
                           "add --executor ray, or leave them out")
    if ray and (args.jobs or args.devices):
        raise HarnessError("--jobs and --devices are for local runs; with --executor ray each "
                           "cell is a Ray task", "leave them out (Ray runs as many cells at "
                           "once as the cluster's resources allow)")
    if ray and not args.dry_run:
        import_ray()  # absent: one line with the install command, before anything runs
    if args.gpus_per_cell is not None and not 0 < args.gpus_per_cell <= 8:
        raise HarnessError(f"--gpus-per-cell must be in (0, 8], got {args.gpus_per_cell}",
                           "e.g. --gpus-per-cell 0.25 to run four cells on a GPU")
    if args.devices:
        if args.device not in ("auto", "cuda"):
            raise HarnessError(f"--device {args.device} with --devices",
                               "leave out --device: each worker gets one of --devices")
        check_devices(csv(args.devices))


def run(args, spec, suite, cells, out: Path, device) -> int:
    """Run the cells in this process, as local workers or as Ray tasks; then print what the
    run achieved, read back from OUT."""
    from harness import executors
    from harness.models import resolve_model
    from harness.runner import Runner
    from harness.ui import UI

    ui = UI(quiet=args.quiet)
    executors.quiet_libraries()
    from harness.storage import REUSED, cache_line

    REUSED.clear()  # what this run reads from the cache, said at its end
    if not args.worker:
        ui.log(cache_line())
    short = short_look_text(suite)
    if args.executor == "ray":
        ui.log(f"suite {suite.name}: {len(cells)} cells as Ray tasks -> {out}{short}")
        threads = args.threads or 1
        spec = dataclasses.replace(spec, resolved=suite_record(suite))  # resolved once, here
        codes = executors.run_ray(spec, suite, out, cells, address=args.address,
                                  device=args.device, gpus=args.gpus_per_cell, threads=threads,
                                  save_model=args.save_model, log=ui.log,
                                  keep_checkpoints=args.keep_checkpoints)
        return finish(ui, out, executors.outcome(suite, out, cells), codes)
    if (args.jobs or 1) > 1 or args.devices:
        plan = executors.worker_plan(args.jobs, csv(args.devices or ""), args.threads)
        ui.log(f"suite {suite.name}: {len(cells)} cells on {device}, {len(plan)} workers x "
               f"{plan[0]['threads']} torch threads"
               + (f" (GPUs {', '.join(w['gpu'] for w in plan)})" if args.devices else "")
               + f" -> {out}{short}")
        _check_sharing(suite, device, args, ui)
        for model in suite.models:  # provisioned once, before the workers start
            resolve_model(model, log=ui.log)
        resolved = out / f".suite-{os.getpid()}.json"  # the workers' suite, resolved here
        atomic_write_json(resolved, suite_record(suite))
        try:
            codes = executors.run_jobs(worker_argv(args, out, resolved), plan, ui.log)
        finally:
            resolved.unlink(missing_ok=True)
        return finish(ui, out, executors.outcome(suite, out, cells), codes)
    _check_bf16(suite, device, ui)
    if not args.worker:
        ui.log(f"suite {suite.name}: {len(cells)} cells on {device} -> {out}{short}")
    claim = {"run": os.environ.get("HARNESS_RUN_ID"), "worker": args.worker} if args.worker else {}
    runner = Runner(suite, out, device, ui, save_model=args.save_model, claim_info=claim,
                    keep_checkpoints=args.keep_checkpoints)
    with ui.session():
        done, failures = runner.run(cells)
    if args.worker:  # the parent reports for the whole run
        return 1 if failures else 0
    found = executors.outcome(suite, out, runner.elsewhere)
    return finish(ui, out, executors.Outcome(done, failures, found.elsewhere), [])


def short_look_text(suite) -> str:
    """The header's note on a short look (`--steps`, `--n-train`, `--n-test`)."""
    if not suite.short_look:
        return ""
    given = ", ".join(f"{v} steps a task" if k == "steps" else f"{k} {v}"
                      for k, v in suite.short_look.items())
    return (f"; SHORT LOOK ({given}): "
            "not the suite's budget, its cells have their own grid id and are never mixed "
            "with full-budget cells")


def _check_bf16(suite, device, ui) -> None:
    from harness.precision import cpu_has_bf16

    if suite.precision == "bf16" and device.type == "cpu" and not cpu_has_bf16():
        ui.log("WARNING: precision bf16 on a CPU without avx512_bf16 or AMX: slower than fp32")


def worker_argv(args, out: Path, resolved: Path | None = None) -> list[str]:
    """The arguments of `harness run` that a worker of `--jobs` repeats: every option the
    user gave, but those of the parent (--jobs, --devices, --threads, --quiet, ...); with
    `resolved`, the suite file the parent resolved instead of what it resolved it from
    (--methods, --seeds, --precision, --set: never parsed again)."""
    parent = {"jobs", "devices", "threads", "quiet", "executor", "address", "gpus_per_cell",
              "worker", "dry_run", "json", "out", "help", "resolved"}
    if resolved is not None:
        parent |= {"methods", "seeds", "precision", "set"}
    argv = ["--out", str(out.resolve())] + (["--resolved", str(resolved)] if resolved else [])
    for action in args.run_parser._actions:
        value = getattr(args, action.dest, None)
        if not action.option_strings or action.dest in parent or value in (None, False):
            continue
        if value == action.default:
            continue
        option = action.option_strings[0]
        if isinstance(value, list):
            for v in value:
                argv += [option, str(v)]
        else:
            argv += [option] if value is True else [option, str(value)]
    return argv


def finish(ui, out: Path, found, codes: list[int]) -> int:
    """The results table, failures, cells another process is still running and cells not
    run; the run's exit status."""
    from harness import claims
    from harness.executors import combined_status
    from harness.ui import summary_table

    from harness.storage import REUSED, cache_dir

    if found.results:
        ui.console.print(summary_table(found.results))
    ui.log(f"results: {out / 'cells'}/*/result.json")
    if REUSED:  # this process's reads: a --jobs worker's are its own
        ui.log(f"reused from the cache {cache_dir()}: "
               + ", ".join(f"{n} {space}" for space, n in sorted(REUSED.items())))
    for cell, message in found.failures:
        recorded = out / "cells" / cell.id / "failure.json"
        ui.log(f"failed cell {cell.id}: {message}"
               + (f" (see {recorded})" if recorded.exists() else ""))
    if found.elsewhere:
        ui.log(f"{len(found.elsewhere)} cell(s) are being run by another process; run again "
               "when they finish to include them:")
        for cell, info in found.elsewhere:
            ui.log(f"  {cell.id}: {claims.describe(info)}")
    if found.not_run:
        ui.log(f"{len(found.not_run)} cell(s) did not run (its worker or task stopped early): "
               + ", ".join(c.id for c in found.not_run) + "; re-run the same command")
    return combined_status(codes, found)


def _check_sharing(suite, device, args, ui) -> None:
    """On CUDA, warn where `--jobs` puts more cells on one GPU than the estimate says fit
    (an upper bound: a warning, not a refusal; a cell that runs out fails alone)."""
    import torch

    if device.type != "cuda" or not torch.cuda.is_available():
        return
    from harness.memory import GIB, shared_fit, sharing, sharing_line

    devices, gib = csv(args.devices or ""), torch.cuda.get_device_properties(0).total_memory / GIB
    at_once = sharing(args.jobs, devices)
    try:
        if at_once < 2 or shared_fit(suite, gib, at_once)["fits"]:
            return
    except HarnessError:  # no estimate for this model: nothing to say
        return
    ui.log("warning: " + sharing_line(suite, gib, torch.cuda.get_device_name(0), args.jobs,
                                      devices))


def dry_run(suite, out: Path, cells: list, as_json: bool = False, gpu: str | None = None,
            jobs: int | None = None, devices: list[str] | None = None,
            note: str | None = None) -> int:
    """List the cells (in grid order, with their index for `--cell-index`), what a run
    would do with each, who runs the running ones, and an estimate of the cost."""
    from rich.console import Console
    from rich.table import Table

    from harness import claims
    from harness.checkpoint import disk_bytes
    from harness.grid import estimate, expand, grid_id, measured_seconds, plan, state
    from harness.results import CellState

    measured, index = measured_seconds(out), {c.id: i for i, c in enumerate(expand(suite))}
    try:  # the grid id hashes the task data, which a paper suite may not have fetched yet
        gid = grid_id(suite)
    except HarnessError:
        gid = "(unknown until the task data is fetched)"
    rows, total_s, base_rows, unknown = [], 0.0, {}, 0
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
    total_s += sum(uncached)
    todo = sum(r["state"] not in ("complete", "running") for r, _ in rows)
    if as_json:
        print(json.dumps({"suite": suite.name, "grid_id": gid, "out": str(out),
                          "to_run": todo, "estimate_s": round(total_s, 1),
                          "base_rows_to_compute": len(uncached),
                          "cells_without_estimate": unknown,
                          **({"short_look": suite.short_look} if suite.short_look else {}),
                          **({"note": note} if note else {}),
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
          + (f", of which {len(uncached)} base-model row(s) (row 0: the untrained model with "
             f"every probe) not in the cache, {duration(sum(uncached))}" if uncached else
             ", base-model rows cached")
          + (f"; {unknown} cell(s) without an estimate (a model far larger than the 135M the "
             "CPU figures are for: give --gpu H100 for GPU arithmetic)" if unknown else "")
          + ". Per cell, from: this OUT where it has complete cells of a method, else GPU "
          "arithmetic with --gpu NAME (harness/cost.py), else the 135M model's figures on a "
          "2-core CPU (slower at 1 thread or on a loaded machine). Generation and probes are "
          "parts of setup, train and eval, shown on their own; '-': not known")
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
        from harness.memory import report
        print("\n".join(report(suite, gpu, jobs, devices)))
        from harness.cost import report_line
        from harness.memory import parse_gpu
        hours = report_line(suite, parse_gpu(gpu)[0])
        if hours:
            print(hours)
    if note:
        print(note)
    return 0


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

    e = estimate(cell, suite, measured)
    e["row_s"] = e["eval_s"] / max(1, len(cell.tasks))
    if e["source"].startswith("this OUT"):
        return e
    name = gpu and _gpu_name(gpu)
    try:
        arch = architecture(cell.model)
    except HarnessError:  # no config.json to count (offline, gated): no estimate
        arch = None
    if arch is not None and name in GPU_SPECS:
        s = cell_seconds(cell, suite, arch, name)
        rows = len(cell.tasks)
        return e | {"train_s": s["train"] + s["generate"], "eval_s": s["evaluate"] * rows
                    / (rows + 1), "generation_s": s["generate"], "setup_s": None,
                    "probes_s": None, "row_s": s["evaluate"] / (rows + 1),
                    "source": f"{name} arithmetic"}
    if arch is None or arch.params > CPU_FIGURES_UP_TO:
        return e | {"train_s": None, "eval_s": None, "row_s": None,
                    "source": "none (give --gpu NAME)"}
    return e


def _gpu_name(gpu: str) -> str | None:
    from harness.memory import parse_gpu

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
    """The median over method pairs of the sd of their per-(stream, seed) differences in
    `metric`, from OUT's complete cells (a pilot); None with fewer than 2 paired values."""
    from statistics import median, stdev

    from harness.cells import read_cells

    if not (out / "cells").is_dir():
        return None
    values: dict = {}
    for r in read_cells(out).records:
        c, v = r.data["cell"], r.data["metrics"].get(metric)
        if isinstance(v, (int, float)):
            values.setdefault(c["method"], {})[(c["model"], c["stream"], c["seed"])] = v
    sds = []
    methods = sorted(values)
    for i, a in enumerate(methods):
        for b in methods[i + 1:]:
            shared = sorted(set(values[a]) & set(values[b]))
            if len(shared) >= 2:
                sds.append(stdev(values[a][k] - values[b][k] for k in shared))
    return median(sds) if sds else None


def power_line(suite, out: Path) -> str:
    """The minimum detectable difference of the design per headline metric, after the
    board-wide correction (all pairs of the suite's methods), at 80% power and alpha 0.05
    (statistics.design_mdd), from OUT's measured spread where it has paired cells, else a
    stated one: what the grid can and cannot tell apart, before anything runs."""
    from harness.statistics import design_mdd

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
