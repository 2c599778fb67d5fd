"""`harness run` once its cells are planned (harness/cli.py parses and plans): the options
that do not go together, the executor chosen (this process, `--jobs` workers, Ray tasks:
harness/executors.py), and the lines that end a run, read back from OUT."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from harness.errors import HarnessError


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

    from harness.memory_fit import parse_gpu

    for flag in ("json", "gpu"):
        if getattr(args, flag) and not args.dry_run:
            raise HarnessError(f"--{flag} goes with --dry-run", f"add --dry-run, or leave out --{flag}")
    if args.gpu is not None:
        parse_gpu(args.gpu)  # nan, 0, -1, 'x': refused before the plan prints
    check_counts(args)
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


def check_counts(args) -> None:
    """`--jobs` and `--threads` (of `harness run` and `harness tune`): at least 1; and no
    more threads than cores, which only slows a cell down (tens of thousands exhaust the
    process, each thread reserving its stack, before a cell starts)."""
    from harness.executors import cores

    for name in ("jobs", "threads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise HarnessError(f"--{name} must be at least 1", f"e.g. --{name} 2")
    if args.threads is not None and args.threads > cores():
        raise HarnessError(f"--threads {args.threads} is more than the {cores()} CPU cores "
                           "this process may use", f"use at most --threads {cores()}")


def run(args, suite, cells, out: Path, device) -> int:
    """Run the cells in this process, as local workers or as Ray tasks (handed the plan:
    the suite as resolved here, the cells, the options; harness/plans.py); then print what
    the run achieved, read back from OUT."""
    from harness import executors, plans
    from harness.identity import suite_record
    from harness.models import resolve_model
    from harness.runner import Runner
    from harness.ui import UI

    ui = UI(quiet=args.quiet)
    executors.quiet_libraries()
    from harness.storage import REUSED, cache_line

    REUSED.clear()  # what this run reads from the cache, said at its end
    ui.log(cache_line())
    short = short_look_text(suite)
    options = {"save_model": args.save_model, "keep_checkpoints": args.keep_checkpoints}
    if args.executor == "ray":
        ui.log(f"suite {suite.name}: {len(cells)} cells as Ray tasks -> {out}{short}")
        plan = {"suite": suite_record(suite), "out": str(out.resolve()), **options}
        codes = executors.run_ray(plan, suite, out, cells, address=args.address,
                                  device=args.device, gpus=args.gpus_per_cell,
                                  threads=args.threads or 1, log=ui.log)
        return finish(ui, out, executors.outcome(suite, out, cells), codes)
    if (args.jobs or 1) > 1 or args.devices:
        jobs = args.jobs and min(args.jobs, len(cells))  # a worker without a cell idles
        workers = executors.worker_plan(jobs, csv(args.devices or ""), args.threads)
        ui.log(f"suite {suite.name}: {len(cells)} cells on {device}, {len(workers)} workers x "
               f"{workers[0]['threads']} torch threads"
               + (f" (GPUs {', '.join(w['gpu'] for w in workers)})" if args.devices else "")
               + f" -> {out}{short}")
        _check_sharing(suite, device, args, ui)
        _check_bf16(suite, device, ui)
        _check_machine(out, device, ui)
        for model in suite.models:  # provisioned once, before the workers start
            resolve_model(model, log=ui.log)
        plan = out / f".plan-{os.getpid()}.json"  # the workers' plan, resolved here
        plans.write_plan(plan, suite, cells, out, **options)
        try:
            codes = executors.run_jobs(plan, device, workers, ui.log)
        finally:
            plan.unlink(missing_ok=True)
        return finish(ui, out, executors.outcome(suite, out, cells), codes)
    _check_bf16(suite, device, ui)
    _check_machine(out, device, ui)
    ui.log(f"suite {suite.name}: {len(cells)} cells on {device} -> {out}{short}")
    runner = Runner(suite, out, device, ui, save_model=args.save_model,
                    keep_checkpoints=args.keep_checkpoints)
    with ui.session():
        done, failures = runner.run(cells)
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


def _check_machine(out: Path, device, ui) -> None:
    note = machine_note(out, device)
    if note:
        ui.log(note)


def machine_note(out: Path, device) -> str | None:
    """The NOTE where OUT's complete cells ran on another processor than this machine's
    (`harness run` and its dry run, whose estimates from OUT were measured there)."""
    import torch

    from harness.results import recorded_processors
    from harness.runner import cpu_name

    here = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    others = {p: n for p, n in recorded_processors(out).items() if p != here}
    if not others:
        return None
    listed = ", ".join(f"{n} on {p}" for p, n in sorted(others.items()))
    return (f"NOTE: {out} holds complete cells from other processors ({listed}); this "
            f"machine's is {here}: its cells are not bit for bit what those machines give "
            "(verify re-runs a cell exactly only on its own processor), nor do their costs "
            "compare")


def grid_machine_problem(out: Path, precision: str) -> str | None:
    """Why this machine must not add cells at `precision` (the suite's) to the grid in OUT,
    or None: a long grid resumed across sessions must stay on the machine most of its
    complete cells ran on (cells from another processor are not re-run exactly by a
    verifier, nor do their costs compare), and a bf16 grid off a CPU with native bf16
    (cloud CPUs share generic names: 'Intel(R) Xeon(R) Processor' covers CPUs with and
    without it) trains ~20x slower on other kernels. (The suite's precision, not the
    cells': cells written before 2026-12-06 do not record it; it is in their grid id.)"""
    from harness.precision import cpu_has_bf16
    from harness.results import recorded
    from harness.runner import cpu_isa, cpu_name

    counts = {key: recorded(out, key) for key in ("processor", "isa")}  # each read once
    for key, here in (("processor", cpu_name()), ("isa", cpu_isa())):
        found = counts[key]  # cells before 2026-12-07 recorded no isa
        if found and here != max(found, key=found.get):
            grid = ", ".join(f"{p} ({n} cells)" for p, n in sorted(found.items(),
                                                                    key=lambda x: -x[1]))
            what = "processor" if key == "processor" else "instruction set"
            return (f"this machine's {what} ({here}) is not the one most of the grid's "
                    f"complete cells ran on: {grid}; run it on that machine (a later session "
                    "may get one)")
    done = sum(counts["processor"].values())
    if done and precision.startswith("bf16") and not cpu_has_bf16():
        return (f"the grid runs at {precision} ({done} complete cells) and this CPU "
                f"({cpu_name()}) has no native bf16 (avx512_bf16 or AMX): here bf16 trains "
                "about 20x slower, on other kernels (docs/performance.md); run it on a CPU with "
                "native bf16")
    return None


def _check_bf16(suite, device, ui) -> None:
    from harness.precision import cpu_has_bf16

    if suite.precision in ("bf16", "bf16-weights") and device.type == "cpu" and not cpu_has_bf16():
        ui.log("WARNING: precision bf16 on a CPU without avx512_bf16 or AMX: training runs "
               "about 20x slower than fp32 here, generation about 4x (docs/performance.md); "
               "use a CPU with them, or --precision fp32 (another grid: its cells are not "
               "mixed with bf16's)")


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
    from harness.memory import GIB
    from harness.memory_fit import shared_fit, sharing, sharing_line

    devices, gib = csv(args.devices or ""), torch.cuda.get_device_properties(0).total_memory / GIB
    at_once = sharing(args.jobs, devices)
    try:
        if at_once < 2 or shared_fit(suite, gib, at_once)["fits"]:
            return
    except HarnessError:  # no estimate for this model: nothing to say
        return
    ui.log("warning: " + sharing_line(suite, gib, torch.cuda.get_device_name(0), args.jobs,
                                      devices))
