"""The GPU checks as one prepared command for a short GPU lease (issue 33; docs/gpu.md).

    bash scripts/gpu_prepare.sh              # here, with network: builds .gpu/1 .. .gpu/N
    bash scripts/gpu_run.sh                  # there, once per carried .gpu/K (same command)
    bash scripts/gpu_run.sh --dry            # here, on the CPU: the whole flow, tiny model

Each call stages the payload parts it carries (scripts/gpu_payload.py); the call that
completes the set installs them and runs: `pytest -m gpu` through scripts/gpu_check.py,
the leaderboard grid at the `--jobs` harness.memory_fit says fit the GPU (under a hard time
limit that keeps the rest its time), the SDFT-long diagnostic as far as the budget allows,
and writes into $OUT: gpu-results.json, gpu-state.tar.gz (the cells and the test results),
gpu-check.md and gpu_run.log. A second invocation skips what is complete (the harness
skips complete cells and retries failed ones; passed gpu tests are not re-run): on the
same warm machine from the state folder, on a fresh one from a carried
.gpu/resume/gpu-state.tar.gz.

Only the standard library is imported at the top: the harness and torch are used in
subprocesses, after the wheels are installed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # scripts/ is not a package
from gpu_payload import CARRY, ROOT, Stop, install, prepare, stage  # noqa: E402

GRID = "benchmarks/suites/leaderboard.yaml"
SDFT_LONG = "benchmarks/diagnostics/sdft-long.yaml"
PHASES = ("tests", "grid", "sdft-long")


class Log:
    """Print and keep every line in $OUT/gpu_run.log."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(path, "a", buffering=1)

    def __call__(self, line: str) -> None:
        print(line, flush=True)
        self.file.write(line + "\n")


def run_limited(cmd: list[str], env: dict, limit_s: float, log, grace_s: float = 30.0) -> dict:
    """Run cmd with its output in the log; past limit_s it gets SIGINT (a `harness run`
    stops its workers and leaves no claims), past grace_s more SIGKILL, its whole group."""
    started = time.monotonic()
    if limit_s <= 0:
        return {"exit_code": None, "seconds": 0.0, "timed_out": True}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    timed_out = False

    def stop():
        nonlocal timed_out
        if proc.poll() is not None:
            return
        timed_out = True
        log(f"[gpu_run] time limit {limit_s:.0f} s reached: stopping {' '.join(cmd[:4])} ...")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    timer = threading.Timer(limit_s, stop)
    timer.start()
    try:
        for line in proc.stdout:
            log(line.rstrip("\n"))
        proc.wait()
    finally:
        timer.cancel()
    return {"exit_code": proc.returncode, "seconds": round(time.monotonic() - started, 1),
            "timed_out": timed_out}


def dry_suite(source: str, model: str, dest: Path, methods: int | None) -> Path:
    """The shipped suite on the tiny model with tiny budgets (its methods as listed, the
    first `methods` of them), so --dry runs the real suites' method specs."""
    import yaml  # a harness dependency: installed here and on the device (to write)

    from harness.yamlio import read_yaml

    suite = read_yaml(ROOT / source, source)
    names = list(suite["methods"])[:methods] if methods else list(suite["methods"])
    suite.update(
        name=f"dry-{suite['name']}", models=[model], seeds=[0],
        streams=(dict(list(suite["streams"].items())[:1]) if isinstance(suite["streams"], dict)
                 else suite["streams"][:1]),
        probes=["drift", "knowledge"],
        methods={k: {**(suite["methods"][k] or {}),
                     **({"max_new_tokens": 8} if "sdft" in k.lower() else {})} for k in names},
        train={"steps": 2, "lr": 1e-3, "batch_size": 4, "max_len": 96},
        data={"n_train": 8, "n_test": 4}, eval={"batch_size": 8, "max_new_tokens": 6})
    path = dest / f"{Path(source).stem}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def inspect(suites: list[tuple[str, str]], gib: float | None) -> dict:
    """(in a subprocess, with the harness importable) The device; for each (suite, out):
    each cell's state, estimate, time and measured peak, and how many cells fit the GPU
    at once by the estimate (--dry: as on an H100)."""
    import platform

    import torch

    from harness.config import load_suite
    from harness.grid import expand, state
    from harness.memory_fit import GPUS, estimate, shared_fit

    cuda = torch.cuda.is_available()
    props = torch.cuda.get_device_properties(0) if cuda else None
    device = {"gpu": props.name if cuda else None,
              "gpu_memory_gib": round(props.total_memory / 2**30, 1) if cuda else None,
              "capability": f"{props.major}.{props.minor}" if cuda else None,
              "torch": torch.__version__, "cuda": torch.version.cuda,
              "python": platform.python_version(), "cpu_count": os.cpu_count()}
    if gib is None:
        gib = props.total_memory / 2**30 if cuda else GPUS["H100"]
    found = {}
    for suite_path, out in suites:
        suite, cells = load_suite(suite_path), []
        for cell in expand(suite):
            folder = Path(out) / "cells" / cell.id
            row = {"id": cell.id, "method": cell.info["method"], "seed": cell.info["seed"],
                   "state": state(cell, suite, folder).value,
                   "estimate_gib": estimate(cell, suite, gib)["peak_gib"]}
            if row["state"] == "complete":
                result = json.loads((folder / "result.json").read_text())
                hw, t = result.get("hardware", {}), result["timings"]
                row.update(seconds=round(t["total_s"], 1), train_s=round(t["train_s"], 1),
                           generation_s=round(t.get("generation_s") or 0, 1),
                           peak_gib=hw.get("gpu_peak_allocated_gib"),
                           reserved_gib=hw.get("gpu_peak_reserved_gib"),
                           R=result["R"], metrics=result["metrics"])
                if row["peak_gib"]:
                    row["peak_over_estimate"] = round(row["peak_gib"] / row["estimate_gib"], 2)
            cells.append(row)
        found[suite_path] = {"gib": round(gib, 1), "cells": cells,
                             "most_at_once": shared_fit(suite, gib, 1)["most"]}
    return {"device": device, "suites": found}


def inspect_sub(suites: list[tuple[str, Path]], env: dict, gib: float | None) -> dict:
    cmd = [sys.executable, __file__, "inspect", "--gib", str(gib or 0)]
    for suite, out in suites:
        cmd += ["--suite", suite, str(out)]
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
        raise Stop("could not read the suites: "
                   + (proc.stderr.strip().splitlines() or ["?"])[-1])
    return json.loads(proc.stdout)


def jobs_for(before: dict) -> int:
    """As many cells at once as the estimate fits on the GPU, at most one a CPU core."""
    todo = sum(c["state"] != "complete" for c in before["cells"])
    return max(1, min(before["most_at_once"], os.cpu_count() or 1, todo or 1))


def run_suite(name: str, suite: str, out: Path, before: dict, env: dict, limit_s: float,
              dry: bool, log, wanted: bool = True) -> dict:
    """`harness run` on a suite at the --jobs the memory estimate allows, under limit_s."""
    todo, jobs = sum(c["state"] != "complete" for c in before["cells"]), jobs_for(before)
    if not wanted:
        log(f"[gpu_run] {name}: not in --phases ({todo} cells not complete)")
        return {"jobs": jobs, "exit_code": None, "seconds": 0.0, "timed_out": False}
    log(f"[gpu_run] {name}: {todo} of {len(before['cells'])} cells to run, --jobs {jobs} "
        f"({before['most_at_once']} fit {before['gib']} GiB at once by the estimate), "
        f"limit {max(limit_s, 0):.0f} s")
    if not todo:
        return {"jobs": jobs, "exit_code": 0, "seconds": 0.0, "timed_out": False}
    cmd = [sys.executable, "-m", "harness.cli", "run", "--suite", suite, "--out", str(out),
           "--device", "cpu" if dry else "cuda", "--quiet"]
    return {"jobs": jobs, **run_limited(cmd + (["--jobs", str(jobs)] if jobs > 1 else []),
                                        env, limit_s, log)}


def suite_results(suite: str, ran: dict, before: dict, after: dict) -> dict:
    """What gpu-results.json says of one suite's run: counts, wall clock, throughput and
    each cell (peak memory beside the estimate)."""
    states = [c["state"] for c in after["cells"]]
    done_now = states.count("complete") - sum(c["state"] == "complete" for c in before["cells"])
    return {"suite": suite, **ran, "cells_per_gpu": ran["jobs"], "cells": len(states),
            "complete": states.count("complete"), "failed": states.count("failed"),
            "not_finished": len(states) - states.count("complete") - states.count("failed"),
            "completed_now": done_now,
            "cells_per_hour": round(3600 * done_now / ran["seconds"], 1) if ran["seconds"]
            else None, "estimate_for_gib": after["gib"], "most_at_once": after["most_at_once"],
            "cell_results": after["cells"]}


def gpu_tests(state: Path, env: dict, limit_s: float, log, wanted: bool = True) -> dict:
    """scripts/gpu_check.py (pytest -m gpu), unless an earlier invocation passed them (or
    they are left out of --phases: then an earlier invocation's results, if any)."""
    folder = state / "gpu-check"
    summary = folder / "summary.json"
    old = json.loads(summary.read_text()) if summary.exists() else None
    if old and old["exit_code"] == 0 and old["tests"]:
        log("[gpu_run] gpu tests: passed in an earlier invocation, not re-run")
        return {**old, "rerun": False}
    if not wanted:
        log("[gpu_run] gpu tests: not in --phases")
        return {**(old or {"exit_code": None, "tests": [], "measured": {}}), "rerun": False}
    shutil.rmtree(folder, ignore_errors=True)
    ran = run_limited([sys.executable, "scripts/gpu_check.py", "--out", str(folder),
                       "--timeout", str(int(max(limit_s - 15, 1)))], env, limit_s, log)
    if not summary.exists():
        return {"exit_code": ran["exit_code"], "seconds": ran["seconds"], "tests": [],
                "measured": {}, "rerun": True, "timed_out": ran["timed_out"]}
    return {**json.loads(summary.read_text()), "rerun": True}


def pack(state: Path, archive: Path) -> list[str]:
    """The cells' JSON files (not claims, saved models or mid-cell checkpoints: those are
    hundreds of MiB, and a file over 16 MiB does not come back from the device), the
    gpu-check files and the invocations, as one archive: what a later invocation resumes
    from."""
    names = []
    cells = [p for p in sorted(state.glob("runs/*/cells/*/*.json")) if p.name != "claim.json"]
    with tarfile.open(archive, "w:gz") as tar:
        for path in cells + sorted(state.glob("gpu-check/*")) + sorted(state.glob("suites/*")) \
                + [state / "invocations.json"]:
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(state)))
                names.append(str(path.relative_to(state)))
    return names


def resume(state: Path, archive: Path, log) -> None:
    """On a fresh machine: the state an earlier invocation packed, if carried (a warm
    machine's own state folder goes first)."""
    if archive.exists() and not (state / "runs").exists():
        with tarfile.open(archive) as tar:
            tar.extractall(state, filter="data")
        log(f"[gpu_run] resumed from {archive}")


def counts(tests: list[dict]) -> dict:
    found = {k: 0 for k in ("passed", "failed", "error", "skipped")}
    for t in tests:
        found[t["outcome"]] = found.get(t["outcome"], 0) + 1
    return found


def run_main(args) -> int:
    dry = args.dry
    phases = set(args.phases.split(","))
    if not phases <= set(PHASES):
        raise Stop(f"--phases {args.phases}: use some of {','.join(PHASES)}")
    base = ROOT / "runs" / "gpu-dry"
    state = Path(args.state or (base / "state" if dry else os.environ.get(
        "GPU_RUN_STATE", "/var/tmp/cl-harness-gpu"))).resolve()
    out = Path(args.out or (base / "out" if dry else os.environ.get("OUT", ROOT / "runs" / "gpu"))
               ).resolve()
    budget = args.budget or (600.0 if dry else 540.0)
    deadline = time.monotonic() + budget
    left = lambda: deadline - time.monotonic()  # noqa: E731
    out.mkdir(parents=True, exist_ok=True)
    log = Log(out / "gpu_run.log")
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    log(f"[gpu_run] {'dry run on the CPU' if dry else 'GPU run'}: state {state}, out {out}, "
        f"budget {budget:.0f} s")

    if dry:  # the parts as the device would receive them: one call per part
        carry = state / "carry"
        if not (carry / "1" / "manifest.json").exists():
            prepare(carry, part_mib=args.dry_part_mib, dry=True)
        calls = [[p] for p in sorted(carry.iterdir(), key=lambda p: int(p.name))]
    else:
        calls = [[p for p in sorted(CARRY.glob("*")) if (p / "manifest.json").exists()]]
    manifest, missing = None, []
    for carried in calls:
        manifest, missing = stage(carried, state, log)
        if missing:
            log(f"[gpu_run] staged; waiting for part(s) {', '.join(map(str, missing))} of "
                f"{manifest['parts']}: the next call carries .gpu/{missing[0]}")
    if manifest is None:
        raise Stop("no parts carried and none staged: run scripts/gpu_prepare.sh here and "
                   "carry .gpu/1 (then .gpu/2, ...) with this command")
    if missing:
        return 0  # a staging call: the parts wait in the state folder for the next call

    inherited = [os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(state / "site"),
                                                         *inherited]),
           "HARNESS_CACHE": str(state / "cache"), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
           "TOKENIZERS_PARALLELISM": "false", "TQDM_DISABLE": "1"}
    installed = install(state, manifest, env, log)
    resume(state, Path(args.resume), log)
    invocations_file = state / "invocations.json"
    invocations = json.loads(invocations_file.read_text()) if invocations_file.exists() else []
    suites = [(GRID, state / "runs" / "grid"), (SDFT_LONG, state / "runs" / "sdft-long")]
    if dry:  # the shipped suites on the tiny model; the estimate as for an H100
        model, folder = installed["tiny_model"], state / "suites"
        suites = [(str(dry_suite(GRID, model, folder, 2)), suites[0][1]),
                  (str(dry_suite(SDFT_LONG, model, folder, None)), suites[1][1])]
    first = inspect_sub(suites, env, 79.1 if dry else None)
    device = first["device"]
    log(f"[gpu_run] device: {json.dumps(device)}")
    if not dry and not device["gpu"]:
        raise Stop("torch sees no CUDA device: run this on the GPU machine, or use --dry here")

    tests = gpu_tests(state, env, min(args.tests_limit, left() - 60), log, "tests" in phases)
    (grid_suite, grid_out), (sdft_suite, sdft_out) = suites
    before = [first["suites"][grid_suite], first["suites"][sdft_suite]]
    reserve = args.sdft_reserve if "sdft-long" in phases else 0.0
    grid_ran = run_suite("leaderboard grid", grid_suite, grid_out, before[0], env,
                         left() - reserve - args.pack_reserve, dry, log, "grid" in phases)
    sdft_ran = run_suite("sdft-long", sdft_suite, sdft_out, before[1], env,
                         left() - args.pack_reserve, dry, log, "sdft-long" in phases)
    last = inspect_sub(suites, env, 79.1 if dry else None)["suites"]
    grid = suite_results(grid_suite, grid_ran, before[0], last[grid_suite])
    sdft = suite_results(sdft_suite, sdft_ran, before[1], last[sdft_suite])
    invocations.append({"started": started, "seconds": round(budget - left(), 1),
                        "tests_s": tests.get("seconds") if tests["rerun"] else 0.0,
                        "grid_s": grid["seconds"],
                        "grid_completed": grid["completed_now"], "sdft_long_s": sdft["seconds"],
                        "sdft_long_completed": sdft["completed_now"], "device": device["gpu"]})
    invocations_file.write_text(json.dumps(invocations, indent=1))

    results = {
        "schema": "gpu-results/1", "dry": dry, "written": started, "device": device,
        "install": {k: v for k, v in installed.items() if k != "tiny_model"},
        "gpu_tests": {**counts(tests.get("tests", [])), "exit_code": tests["exit_code"],
                      "seconds": round(tests.get("seconds") or 0, 1), "rerun": tests["rerun"],
                      "tests": tests.get("tests", [])},
        "tolerances": tests.get("measured", {}),
        "grid": {**grid, "wall_clock_s_all_invocations":
                 round(sum(i["grid_s"] for i in invocations), 1)},
        "sdft_long": {**sdft, "wall_clock_s_all_invocations":
                      round(sum(i["sdft_long_s"] for i in invocations), 1)},
        "invocations": invocations,
    }
    text = json.dumps(results, indent=1)
    (out / "gpu-results.json").write_text(text)
    if not dry:
        (ROOT / "docs" / "gpu-results.json").write_text(text)
    if (state / "gpu-check" / "summary.md").exists():
        shutil.copy(state / "gpu-check" / "summary.md", out / "gpu-check.md")
    packed = pack(state, out / "gpu-state.tar.gz")
    t = results["gpu_tests"]
    log(f"[gpu_run] gpu tests: {t['passed']} passed, {t['failed'] + t['error']} failed, "
        f"{t['skipped']} skipped; grid {grid['complete']}/{grid['cells']} complete "
        f"({grid['failed']} failed) at --jobs {grid['jobs']}; sdft-long "
        f"{sdft['complete']}/{sdft['cells']}; {len(packed)} files in gpu-state.tar.gz; "
        f"{budget - left():.0f} s of {budget:.0f}")
    unfinished = grid["complete"] < grid["cells"] or sdft["complete"] < sdft["cells"]
    if unfinished:
        log("[gpu_run] not all cells are complete: the same command again resumes (on a "
            "fresh machine carry the returned gpu-state.tar.gz as .gpu/resume/)")
    return 1 if (t["failed"] + t["error"]) else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="stage the carried parts; with all staged, run it all")
    run.add_argument("--dry", action="store_true", help="on the CPU here: tiny model, budgets")
    run.add_argument("--out", help="output folder (default: $OUT; --dry: runs/gpu-dry/out)")
    run.add_argument("--state", help="state folder kept between calls (default: "
                     "$GPU_RUN_STATE or /var/tmp/cl-harness-gpu; --dry: runs/gpu-dry/state)")
    run.add_argument("--phases", default=",".join(PHASES),
                     help="what to run after the install (default: all; e.g. sdft-long alone "
                     "gives it the whole budget)")
    run.add_argument("--resume", default=str(CARRY / "resume" / "gpu-state.tar.gz"),
                     help="an earlier invocation's gpu-state.tar.gz, used where the state "
                     "folder has no runs (default: the carried .gpu/resume/gpu-state.tar.gz)")
    run.add_argument("--budget", type=float, help="seconds for it all (default 540; --dry 600)")
    run.add_argument("--tests-limit", type=float, default=200.0, help="seconds for the gpu tests")
    run.add_argument("--sdft-reserve", type=float, default=150.0,
                     help="seconds the grid leaves for sdft-long and packing")
    run.add_argument("--pack-reserve", type=float, default=20.0)
    run.add_argument("--dry-part-mib", type=float, default=1.25, help=argparse.SUPPRESS)
    ins = sub.add_parser("inspect", help=argparse.SUPPRESS)
    ins.add_argument("--suite", nargs=2, action="append", metavar=("SUITE", "OUT"))
    ins.add_argument("--gib", type=float, help="0: the GPU's own")
    args = parser.parse_args(argv)
    try:
        if args.command == "inspect":
            print(json.dumps(inspect([tuple(x) for x in args.suite], args.gib or None)))
            return 0
        return run_main(args)
    except Stop as exc:
        print(f"gpu_run: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
