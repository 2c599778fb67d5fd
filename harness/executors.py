"""How the cells of a run are executed: in this process, as N local worker processes on one
output folder (`--jobs N`, `--devices 0,1`), or as Ray tasks (`--executor ray`).

Workers and Ray tasks get the run's plan (harness/plans.py: the suite as resolved once by
the process that planned the run, the cells, the options), never its command line: they
parse neither arguments nor the suite file, and build no method to check it. Whichever it
is, a cell runs in `Runner.run` -> `Runner.run_cell` under its claim
(harness/claims.py), in a process of its own that runs one cell at a time, and writes the
same files into the same `OUT/cells/<id>/` layout: the executors only decide where and how
many processes there are. Work shared by cells (base rows, base answers, self-data,
rewrites) goes through the cache, which computes each key once under a file lock
(harness/storage.py). What a run achieved is read back from OUT at the end (`outcome`),
the same way for every executor.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError

RAY_INSTALL = 'pip install -e ".[ray]"'
STOP_WAIT_S = 60.0  # how long a stopped worker may take to release its claim and exit


def select_cells(cells: list, ids: list[str] | None, index: int | None) -> list:
    """The cells named by `--cell ID` (repeatable, or a comma list), or the one at
    `--cell-index I` (0-based, the order of `--dry-run --json`); all of them by default."""
    if index is not None:
        if ids:
            raise HarnessError("--cell and --cell-index were both given", "use one of them")
        if not 0 <= index < len(cells):
            raise HarnessError(f"--cell-index {index} is outside the grid of {len(cells)} cells",
                               f"use 0 .. {len(cells) - 1} (e.g. a Slurm array 0-{len(cells) - 1})")
        return [cells[index]]
    if not ids:
        return cells
    wanted = [i.strip() for text in ids for i in text.split(",") if i.strip()]
    by_id = {c.id: c for c in cells}
    unknown = [i for i in wanted if i not in by_id]
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], list(by_id), n=1)
        raise HarnessError(f"--cell {unknown[0]}: not a cell of this suite"
                           + (f" (did you mean {close[0]}?)" if close else ""),
                           "list the cell ids with `harness run --suite ... --dry-run --json`")
    return [c for c in cells if c.id in set(wanted)]


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def set_threads(n: int) -> None:
    """Torch's (and OpenMP's / MKL's, for libraries that start later) thread count."""
    import torch

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    torch.set_num_threads(n)


def quiet_libraries() -> None:
    """transformers, datasets, lm-eval, peft: no progress bars, errors only."""
    import logging
    import warnings

    import datasets
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    for name in ("lm-eval", "lm_eval", "peft", "accelerate"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)


# --------------------------------------------------------------------------- what a run did

@dataclass
class Outcome:
    """The cells of a run, read back from OUT: results of the complete ones, failures
    (cell, message), cells a process outside this run still holds (cell, its claim), and
    cells nobody ran (a worker died or the run was stopped)."""

    results: list = field(default_factory=list)
    failures: list = field(default_factory=list)
    elsewhere: list = field(default_factory=list)
    not_run: list = field(default_factory=list)


def outcome(suite, out: Path, cells: list) -> Outcome:
    from harness import claims
    from harness.grid import state
    from harness.results import CellState, read_json, read_result

    found = Outcome()
    for cell in cells:
        folder = out / "cells" / cell.id
        now = state(cell, suite, folder)
        if now is CellState.COMPLETE:
            found.results.append(read_result(folder)[0])
        elif now is CellState.FAILED:
            data, problem = read_json(folder / "failure.json")
            found.failures.append((cell, problem or str((data or {}).get("error"))))
        elif now is CellState.RUNNING:
            found.elsewhere.append((cell, claims.holder(folder) or {}))
        else:
            found.not_run.append(cell)
    return found


def combined_status(codes: list[int], found: Outcome) -> int:
    """One exit status for a run of several processes: 130 if any was interrupted, 1 if a
    cell failed, a worker failed or a cell was left unrun, else 0."""
    if 130 in codes:
        return 130
    if found.failures or found.not_run or any(codes):
        return 1
    return 0


# --------------------------------------------------------------------------- local workers

def worker_plan(jobs: int | None, devices: list[str] | None, threads: int | None) -> list[dict]:
    """One dict per worker: its number, torch threads and GPU (CUDA_VISIBLE_DEVICES) or
    None. `--devices` alone: a worker per GPU; `--jobs N`: N workers, round-robin over the
    GPUs (all on the current device without `--devices`). Threads: `--threads`, else the
    cores shared out, at least 1."""
    n = jobs or (len(devices) if devices else 1)
    per = threads or max(1, cores() // n)
    return [{"worker": k + 1, "threads": per,
             "gpu": devices[k % len(devices)] if devices else None} for k in range(n)]


def check_devices(devices: list[str]) -> None:
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise HarnessError("--devices needs CUDA GPUs, and none is visible",
                           "leave out --devices (use --jobs N for several cells at once)")
    bad = [d for d in devices if not d.isdigit() or int(d) >= count]
    if bad:
        raise HarnessError(f"--devices {bad[0]}: not a visible GPU ({count} visible)",
                           f"use GPU numbers 0 .. {count - 1}, e.g. --devices 0,1")


def _death_signal():
    """A function for the child (between fork and exec): SIGINT, the workers' clean stop,
    back to its default (a parent started in the background, `nohup harness run ... &`,
    has it ignored, and a child inherits that); on Linux, also have SIGINT sent when the
    parent dies, even by kill -9. libc is loaded here, in the parent: the child may only
    call it."""
    prctl = None
    if sys.platform == "linux":
        try:
            import ctypes

            prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
        except (OSError, AttributeError):
            prctl = None

    def child():
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if prctl is not None:
            prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG

    return child


def run_jobs(plan_file: Path, device, plan: list[dict], log) -> list[int]:
    """Start a worker process (`python -m harness.executors PLAN K THREADS DEVICE`) per
    entry of `plan` on the plan file's cells and output folders (they split the cells
    through the claims), print their lines prefixed with
    [wK], wait for them all; return their exit statuses. Ctrl-C stops every worker
    cleanly (SIGINT: the cell being run leaves no claim and no result) and re-raises."""
    run, die_with_parent = uuid.uuid4().hex[:12], _death_signal()
    procs, lock = [], threading.Lock()
    for w in plan:
        env = {**os.environ, "HARNESS_RUN_ID": run, "PYTHONUNBUFFERED": "1",
               "OMP_NUM_THREADS": str(w["threads"]), "MKL_NUM_THREADS": str(w["threads"]),
               # for the out-of-memory advice (harness/oom.py)
               "HARNESS_CELLS_PER_GPU": str(sum(v["gpu"] == w["gpu"] for v in plan))}
        cmd = [sys.executable, "-m", "harness.executors", str(plan_file), str(w["worker"]),
               str(w["threads"]), "cuda" if w["gpu"] is not None else str(device)]
        if w["gpu"] is not None:
            env["CUDA_VISIBLE_DEVICES"] = w["gpu"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True, bufsize=1,
                                start_new_session=True,  # Ctrl-C reaches the parent only
                                preexec_fn=die_with_parent)
        procs.append(proc)
    readers = [threading.Thread(target=_relay, args=(p, f"[w{w['worker']}] ", lock), daemon=True)
               for p, w in zip(procs, plan)]  # started once no more processes are forked
    for reader in readers:
        reader.start()
    try:
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:
        log(f"stopping {sum(p.poll() is None for p in procs)} worker(s) ...")
        _stop(procs)
        _clear_claims(plan_file, run)
        raise
    finally:
        for reader in readers:
            reader.join(timeout=5)
    return codes


def _clear_claims(plan_file: Path, run: str) -> None:
    """The stopped workers' claims left behind (claims.clear_stopped), over the plan's cells."""
    from harness import claims
    from harness.plans import parts, read_plan

    for part in parts(read_plan(plan_file)):
        for cell_id in part["cells"]:
            claims.clear_stopped(Path(part["out"]) / "cells" / cell_id, run)


def _relay(proc, prefix: str, lock) -> None:
    for line in proc.stdout:
        with lock:
            sys.stdout.write(prefix + line if line.endswith("\n") else prefix + line + "\n")
            sys.stdout.flush()


def _stop(procs) -> None:
    """SIGINT to every live worker, then wait; SIGKILL what is still running after
    STOP_WAIT_S or a second Ctrl-C."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    try:
        for p in procs:
            try:
                p.wait(timeout=STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                p.kill()
    except KeyboardInterrupt:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p in procs:
        p.wait()


# --------------------------------------------------------------------------- Ray

def import_ray():
    try:
        import ray
    except ImportError:
        raise HarnessError("--executor ray needs Ray, which is not installed",
                           f"install it with `{RAY_INSTALL}`") from None
    return ray


_PASSED_ENV = ("HARNESS_CACHE", "HARNESS_MODEL_CACHE", "HARNESS_WHEELHOUSE", "HF_HOME",
               "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "CI")


def ray_cell(plan: dict, cell_id: str, device: str, threads: int, claim: dict, env: dict,
             cwd: str) -> dict:
    """One cell of the run's plan as a Ray task (relative paths from the driver's
    directory where this node has it), under its claim. Returns its status."""
    os.environ.update(env)
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if os.path.isdir(cwd):
        os.chdir(cwd)
    set_threads(threads)
    quiet_libraries()
    import torch

    from harness.ui import UI

    done, failures = run_planned(plan, [cell_id], torch.device(device), UI(quiet=True), claim)
    status = "complete" if done else "failed" if failures else "elsewhere"
    return {"cell": cell_id, "status": status, "error": failures[0][1] if failures else None}


def ray_resources(ray, device: str, gpus: float | None, threads: int) -> tuple[str, dict]:
    """The device cells run on and each task's resource request: num_cpus = threads,
    num_gpus = --gpus-per-cell or 1 on CUDA (`auto`: CUDA when the cluster has GPUs)."""
    if device.startswith("cuda:"):
        raise HarnessError(f"--device {device} with --executor ray: Ray assigns the GPUs",
                           "use --device cuda (or auto), and --gpus-per-cell for a fraction")
    if device == "auto":
        device = "cuda" if gpus or ray.cluster_resources().get("GPU", 0) > 0 else "cpu"
    if device == "cpu" and gpus:
        raise HarnessError("--gpus-per-cell with --device cpu", "leave one of them out")
    request = {"num_cpus": threads, "num_gpus": (gpus or 1.0) if device == "cuda" else 0}
    return device, request


def run_ray(plan: dict, suite, out: Path, cells: list, *, address: str | None,
            device: str, gpus: float | None, threads: int, log) -> list[int]:
    """Every cell not complete as a Ray task with its resource request, on the cluster at
    `address` (`auto`: the running one; none: a new local instance, or the one this process
    already started); wait for all. Returns the exit statuses (0, 1 or 130)."""
    ray = import_ray()
    from harness.grid import state
    from harness.results import CellState

    started = not ray.is_initialized()
    if started:
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")  # cells' lines alike are not one line
        ray.init(address=address, log_to_driver=True)
    try:
        device, request = ray_resources(ray, device, gpus, threads)
        task = ray.remote(ray_cell).options(**request)
        env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
        claim = {"executor": "ray", "run": uuid.uuid4().hex[:12]}
        todo = [c for c in cells if state(c, suite, out / "cells" / c.id) is not CellState.COMPLETE]
        log(f"ray: {len(todo)} of {len(cells)} cells as tasks ({request['num_cpus']} CPU, "
            f"{request['num_gpus']} GPU each; cluster {_resources(ray)}) on {device}")
        pending = {task.remote(plan, c.id, device, threads, claim, env, os.getcwd()): c
                   for c in todo}
        codes = []
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                cell = pending.pop(ready[0])
                try:
                    got = ray.get(ready[0])
                except Exception as exc:  # the task's process died, or Ray failed it
                    got = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
                codes.append(0 if got["status"] != "failed" else 1)
                log(f"ray: [{len(todo) - len(pending)}/{len(todo)}] {cell.id}: {got['status']}"
                    + (f": {got['error']}" if got.get("error") else ""))
        except KeyboardInterrupt:
            log(f"stopping {len(pending)} Ray task(s) ...")
            for ref in pending:
                ray.cancel(ref)  # KeyboardInterrupt in the task: its claim is released
            ray.wait(list(pending), num_returns=len(pending), timeout=STOP_WAIT_S)
            raise
        return codes
    finally:
        if started:
            ray.shutdown()


def _resources(ray) -> str:
    res = ray.cluster_resources()
    return ", ".join(f"{res[k]:g} {k}" for k in ("CPU", "GPU") if k in res)


# --------------------------------------------------------------------------- planned cells

def run_planned(plan: dict, cell_ids: list[str], device, ui, claim: dict):
    """Run the cells `cell_ids` of a plan (harness/plans.py) with Runner.run, under claims:
    (complete results, failures)."""
    from harness.grid import expand
    from harness.plans import plan_suite
    from harness.runner import Runner

    suite = plan_suite(plan)
    by_id = {c.id: c for c in expand(suite)}
    runner = Runner(suite, Path(plan["out"]), device, ui, plan.get("save_model", False),
                    claim_info=claim, keep_checkpoints=plan.get("keep_checkpoints", False))
    with ui.session():
        return runner.run([by_id[i] for i in cell_ids])


def worker_main(argv: list[str]) -> int:
    """A `--jobs` worker: `python -m harness.executors PLAN K THREADS DEVICE` runs the
    plan's cells not yet claimed, one at a time, plan after plan where the file holds
    several (harness/plans.py: parts); its parent reports for the whole run."""
    import torch

    from harness.plans import parts, read_plan
    from harness.ui import UI

    path, worker, threads, device = argv
    plan = read_plan(Path(path))
    set_threads(int(threads))
    quiet_libraries()
    claim = {"run": os.environ.get("HARNESS_RUN_ID"), "worker": int(worker)}
    try:
        failures = [f for part in parts(plan) for f in run_planned(
            part, part["cells"], torch.device(device), UI(quiet=True), claim)[1]]
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the parent's Ctrl-C: the cell being run left no claim
        return 130
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
