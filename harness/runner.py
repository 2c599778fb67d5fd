"""The stream loop: runs the cells harness/grid.py plans.

Per cell: load the model, evaluate the base model once (row 0, cached across cells), then
for each task in turn: train, evaluate the tasks of the stream the schedule names
(`eval.rows`: every task, or the task just trained and every task after the last) and the
probes (`eval.probe_rows`: in every row, or in row 0 and the last only) (one more row). harness/results.py writes the files: progress.json after each row, result.json
atomically and only when the cell is complete. After each task but the last, a checkpoint
(harness/checkpoint.py): a re-run of a killed cell loads it and goes on with the next task,
with the results an uninterrupted run gives.
"""

from __future__ import annotations

import dataclasses
import platform
import re
import time
from pathlib import Path

import torch

from harness import __version__, checkpoint, claims, identity, results
from harness.config import Suite
from harness.errors import HarnessError
from harness.evaluation import GENERAL_PROMPTS_KEY, Evaluator
from harness.generation import generation_seconds
from harness.grid import Cell, expand, grid_id, plan
from harness.oom import advise_on_oom
from harness.methods import Context, call_hook, make_method
from harness.models import load_model, resolve_model
from harness.precision import using
from harness.results import cell_local, failure_message, stop_message
from harness.probes import general_prompts, get_probe
from harness.seeding import isolated, seeded
from harness.storage import Cache, start_ledger, writing
from harness.training import total_steps, train_task


def pick_device(requested: str | None) -> torch.device:
    if requested in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise HarnessError("--device cuda was asked for but no CUDA device is visible",
                           "use --device cpu, or run on a machine with a GPU")
    if requested not in ("cpu", "cuda") and not re.fullmatch(r"cuda:\d+", requested):
        raise HarnessError(f"unknown device '{requested}'", "use cpu, cuda, cuda:N or auto")
    if requested.startswith("cuda:") and int(requested[5:]) >= torch.cuda.device_count():
        raise HarnessError(f"--device {requested}: only {torch.cuda.device_count()} CUDA "
                           "device(s) are visible", "use cuda:0 .. cuda:N-1, or cuda")
    return torch.device(requested)


def versions() -> dict:
    import datasets
    import lm_eval
    import peft
    import transformers

    return {"harness": __version__, "python": platform.python_version(),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__, "lm_eval": getattr(lm_eval, "__version__", "?"),
            "datasets": datasets.__version__}


def hardware(device: torch.device) -> dict:
    """Where a cell ran: a bundle's verification re-runs it exactly only on the same kind of
    processor (`cpu` or `gpu`), machine and thread count."""
    import os

    info = {"platform": platform.platform(), "machine": platform.machine(), "cpu": cpu_name(),
            "cpu_isa": cpu_isa(), "cpu_count": os.cpu_count(), "device": str(device),
            "threads": torch.get_num_threads()}
    if device.type == "cuda":  # the peaks since run_cell reset them: this cell's
        info["gpu"] = torch.cuda.get_device_name(device)
        info["gpu_peak_allocated_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 3)
        info["gpu_peak_reserved_gib"] = round(torch.cuda.max_memory_reserved(device) / 2**30, 3)
    return info


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def cpu_isa() -> str:
    """The instruction set torch's CPU kernels use here, with native bf16 where present:
    cloud CPUs share generic names ('AMD EPYC', 'Intel(R) Xeon(R) Processor') across
    generations whose kernels, and so results' last bits, differ."""
    from harness.precision import cpu_flags

    native = [f for f in ("avx512_bf16", "amx_bf16") if f in cpu_flags()]
    return "+".join([torch.backends.cpu.get_cpu_capability(), *native])


class Runner:
    """Runs the cells of a suite into an output directory."""

    def __init__(self, suite: Suite, out: Path, device: torch.device, ui,
                 save_model: bool = False, claim_info: dict | None = None,
                 keep_checkpoints: bool = False):
        self.suite, self.out, self.device, self.ui = suite, Path(out), device, ui
        self.save_model = save_model
        # keep cells/<id>/checkpoint.pt (of the last task too) when a cell completes
        self.keep_checkpoints = keep_checkpoints
        self.cache = Cache()
        self.probes = {name: get_probe(name) for name in suite.probes}  # shared by cells
        self.grid_id = grid_id(suite)
        self.elsewhere: list[Cell] = []  # cells another process held a claim on
        # written into each claim.json: {"run": id, "worker": k} for the workers of one
        # `--jobs` run (which skip each other's cells without a word), the executor
        self.claim_info = claim_info or {}

    def cell_dir(self, cell: Cell) -> Path:
        return self.out / "cells" / cell.id

    def run(self, cells: list[Cell] | None = None) -> tuple[list[dict], list[tuple[Cell, str]]]:
        """Run every cell (of `cells`, default the whole grid) not already complete and not
        claimed by another process; return (results, failures)."""
        for model in self.suite.models:  # provision / check models up front: fail fast
            resolve_model(model, log=self.ui.log)
        results, failures = [], []
        cells = expand(self.suite) if cells is None else cells
        for n, cell in enumerate(cells, 1):
            try:
                claim = claims.acquire(self.cell_dir(cell), **self.claim_info)
                if claim is None:  # another process runs it: take the next one
                    info = claims.holder(self.cell_dir(cell)) or {}
                    if not self._sibling(info):
                        self.ui.log(f"[{n}/{len(cells)}] {cell.id}: claimed by another run "
                                    f"({claims.describe(info)}): skipped")
                        self.elsewhere.append(cell)
                    continue
                with claim:  # entered at once: Ctrl-C from here on releases it
                    self.ui.log(f"[{n}/{len(cells)}] {cell.id}")
                    results.append(self.run_cell(cell))
                self.ui.clear()
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # one failing cell must not stop the grid
                message = failure_message(exc, self.out)
                self.ui.log(f"  FAILED: {message}")
                failures.append((cell, message))
                unwritable = self._record_failure(cell, message)
                if unwritable and not cell_local(exc):  # a full disk: all would fail
                    self.ui.log(f"  {stop_message(unwritable, self.out, len(cells) - n)}")
                    break
        return results, failures

    def _sibling(self, info: dict) -> bool:
        """Is a claim held by another worker of this same `--jobs` run?"""
        run = self.claim_info.get("run")
        return run is not None and info.get("run") == run

    def _record_failure(self, cell: Cell, message: str) -> str | None:
        return results.write_failure(self.cell_dir(cell), cell.info, message)

    def run_cell(self, cell: Cell) -> dict:
        """One cell at the suite's precision, whoever calls (the grid, `harness verify`'s
        re-run: a bf16 cell re-run in float32 would not be the same cell)."""
        with using(self.suite.precision):
            return self._run_cell(cell)

    @advise_on_oom  # out of GPU memory: this cell fails, with the estimate's advice
    def _run_cell(self, cell: Cell) -> dict:
        """load -> row 0 -> setup -> [resume from the checkpoint] -> for each task: data,
        train, after_task, evaluate, checkpoint -> write."""
        started, generated = time.perf_counter(), generation_seconds()
        started_cpu = time.process_time()  # CPU seconds beside wall clock: a shared machine's
        # wall clock counts other work; the process's CPU time does not
        ledger = start_ledger()  # the cache entries this cell reuses, and what they cost
        folder = self.cell_dir(cell)
        path = resolve_model(cell.model, log=self.ui.log)
        p = plan(cell, self.suite, path)
        checkpoint.remove_temp_files(folder)  # a killed writer's; we hold the claim
        done, _ = results.read_result(folder)
        if done and done.get("config_hash") == p.config_hash:
            self.ui.log("  already complete: skipped")
            if not self.keep_checkpoints:  # killed between result.json and its removal
                checkpoint.remove(folder)
            return done
        (folder / "failure.json").unlink(missing_ok=True)  # a re-run retries a failed cell
        if self.device.type == "cuda":  # hardware() reports this cell's peak memory
            torch.cuda.reset_peak_memory_stats(self.device)
        model, tokenizer, path = load_model(cell.model, str(self.device), log=self.ui.log)
        evaluator, row0 = self._base_row(cell, p, model, tokenizer)
        rows = [row0]

        method = make_method(cell.method.name, cell.method.params)
        ctx = Context(tokenizer=tokenizer, device=self.device, seed=cell.seed,
                      model_id=p.model_id, train_settings=cell.method.train, cache=self.cache,
                      log=self.ui.log, model_path=path,
                      stream=[(t, list(s.train)) for t, s in zip(p.tasks, p.splits)])
        ctx._bind(model)
        with seeded(cell.seed, "setup"):  # each phase draws from its own (seed, phase) stream
            call_hook(method, "setup", ctx)
        with seeded(cell.seed, "wrap_model"):
            model = call_hook(method, "wrap_model", model, ctx).to(self.device)
        ctx._bind(model)
        setup_s = time.perf_counter() - started

        training, earlier_s, earlier_gen, earlier_cpu, resumed = [], 0.0, 0.0, 0.0, []
        saved = self._resume(cell, p, method, model, ctx)
        if saved is not None:  # the tasks it holds are done: go on after them
            rows, training, setup_s = saved["rows"], saved["training"], saved["setup_s"]
            earlier_s, earlier_gen = saved["elapsed_s"], saved["generation_s"]
            earlier_cpu = saved.get("cpu_s")  # None: a checkpoint from before cpu_s, unknown
            ledger.merge(saved.get("cache"))  # None: from before the ledger, unknown
            resumed = saved["resumed_after"] + [saved["done"]]
        for i, (task, split) in enumerate(zip(p.tasks, p.splits)):
            if i < len(training):
                continue
            with seeded(cell.seed, f"task {i}"):
                training.append(self._train_one(cell, method, model, ctx, task, split, i))
            ctx.history.append(task.name)
            with self.ui.activity(f"{cell.method.name} evaluate after {task.name}"):
                evaluated = self.suite.eval.row_tasks(i + 1, len(p.tasks))
                probed = self.suite.eval.probes_run(i + 1, len(p.tasks))
                rows.append(dataclasses.asdict(evaluator.evaluate(model, evaluated, probed)))
            self.ui.log(f"  after {task.name}: " + ", ".join(
                f"{k} {v:.3f}" for k, v in {**rows[-1]["scores"], **rows[-1]["probes"]}.items()
                if v is not None))
            results.write_progress(folder, p.config_hash, list(cell.tasks), rows)
            # the last task too where it is kept, or where saving the model follows (slow)
            if i < len(p.tasks) - 1 or self.keep_checkpoints or self.save_model:
                self._checkpoint(folder, cell, p, method, model, ctx, rows, training, {
                    "setup_s": setup_s, "elapsed_s": earlier_s + time.perf_counter() - started,
                    "generation_s": earlier_gen + generation_seconds() - generated,
                    "cpu_s": cpu_since(earlier_cpu, started_cpu), "resumed_after": resumed,
                    "cache": ledger.state()})

        timings = {"total_s": earlier_s + time.perf_counter() - started, "setup_s": setup_s,
                   "train_s": sum(s["seconds"] for s in training),
                   "eval_s": sum(row["seconds"] for row in rows[1:]),
                   "base_eval_s": rows[0]["seconds"],
                   "probes_s": sum(row.get("probe_seconds", 0.0) for row in rows[1:]),
                   "generation_s": earlier_gen + generation_seconds() - generated,
                   "cpu_s": cpu_since(earlier_cpu, started_cpu), "resumed_after": resumed}
        timings["cache_cpu_s"], timings["cache_wall_s"] = ledger.total()
        result = results.build_result(
            cell=cell.info, tasks=list(cell.tasks), rows=rows, probes=self.probes,
            training=training, config=p.config, config_hash=p.config_hash,
            model_id=p.model_id, grid_id=self.grid_id, suite=self.suite.name, timings=timings,
            versions=versions(), hardware=hardware(self.device), method_stats=ctx.stats,
            method_source=identity.method_record(cell.method), primary=self.suite.primary)
        results.write_samples(folder, self._samples(cell, p, rows))
        if self.save_model:  # before result.json: a complete cell has its model
            save_checkpoint(model, tokenizer, folder / "model")
        results.write_result(folder, result)
        if not self.keep_checkpoints:
            checkpoint.remove(folder)
        return result

    def _resume(self, cell: Cell, p, method, model, ctx) -> dict | None:
        """Load the cell's checkpoint into the model, the method and ctx, and restore the
        random generators; return it (None: start from the first task). One that does not
        belong to these settings, or does not fit the model, is removed with a note."""
        folder = self.cell_dir(cell)
        saved, why = checkpoint.load(folder, p.config_hash, list(cell.tasks))
        problem = why or (saved is not None and checkpoint.weights_problem(model, saved["weights"]))
        if problem:
            self.ui.log(f"  NOTE: removed a checkpoint {problem}; the cell starts from its "
                        "first task")
            checkpoint.remove(folder)
            return None
        if saved is None:
            return None
        checkpoint.load_weights(model, saved["weights"])
        ctx.history, ctx.stats = list(saved["history"]), saved["stats"]
        call_hook(method, "load_state_dict", saved["method"], ctx)
        checkpoint.set_rng_state(saved["rng"])
        done = saved["done"]
        self.ui.log(f"  resuming after task {done}/{len(cell.tasks)} "
                    f"({cell.tasks[done - 1]}) from its checkpoint")
        return saved

    def _checkpoint(self, folder, cell, p, method, model, ctx, rows, training,
                    timings: dict) -> None:
        done = len(training)
        checkpoint.save(folder, {
            "config_hash": p.config_hash, "cell": cell.info, "tasks": list(cell.tasks),
            "done": done, "weights": checkpoint.trainable(model),
            "method": call_hook(method, "state_dict", ctx), "rows": rows,
            "training": training, "stats": ctx.stats, "history": list(ctx.history),
            "rng": checkpoint.rng_state(), **timings})
        self.ui.log(f"  checkpoint after task {done}/{len(cell.tasks)} ({cell.tasks[done - 1]})")

    def _base_row(self, cell: Cell, p, model, tokenizer) -> tuple[Evaluator, dict]:
        """The probes prepared on the base model, and row 0 (cached: shared by every cell of
        this model, tasks, probes and evaluation settings)."""
        with self.ui.activity("base model: probes setup"):
            with isolated():
                for probe in self.probes.values():
                    probe.prepare(model, tokenizer, p.model_id)
        evaluator = Evaluator(p.tasks, p.splits, list(self.probes.values()), self.suite.eval,
                              tokenizer)
        with self.ui.activity("base model: evaluate (row 0)"):
            row0 = self.cache.get_or_compute(
                "base_rows", base_row_key(p), lambda: dataclasses.asdict(evaluator.evaluate(model)),
                valid=lambda row: _is_row(row, cell.tasks, self.probes))
        return evaluator, row0

    @staticmethod
    def _samples(cell: Cell, p, rows: list[dict]) -> dict:
        """What the model answered, per task (and the general prompts) and row."""
        samples = {t: {"prompts": [e.prompt for e in s.test], "targets": [e.target for e in s.test],
                       "outputs": [row["outputs"][t] for row in rows]}
                   for t, s in zip(cell.tasks, p.splits)}
        key = GENERAL_PROMPTS_KEY  # null in the rows that ran no probe (eval.probe_rows)
        if any(key in row["outputs"] for row in rows):
            samples[key] = {"prompts": general_prompts(),
                            "outputs": [row["outputs"].get(key) for row in rows]}
        return samples

    def _train_one(self, cell, method, model, ctx, task, split, index: int) -> dict:
        """One task of the stream: the method's data, the training steps, after_task."""
        data = call_hook(method, "train_data", task, list(split.train), ctx)
        if data:
            steps = total_steps(cell.method.train, len(data))
            stats = train_task(model, method, ctx, task, data, cell.method.train, index,
                               on_step=self.ui.steps(f"{cell.method.name} train {task.name}",
                                                     steps))
        else:
            self.ui.log(f"  NOTE: {cell.method.name} returned no training data for "
                        f"{task.name}: no training on it; its row repeats the model as is")
            stats = {"task": task.name, "steps": 0, "examples": 0, "skipped": True,
                     "seconds": 0.0, "losses": []}
        call_hook(method, "after_task", task, model, ctx)
        return stats


def cpu_since(earlier: float | None, started: float) -> float | None:
    """The cell's CPU seconds: those of the runs before a resume (its checkpoint's) plus this
    process's since `started`; None where the earlier part is unknown (a checkpoint written
    before cpu_s was recorded): a partial count would pass for the whole."""
    return None if earlier is None else earlier + time.process_time() - started


def base_row_key(p) -> list:
    """The cache key of a plan's base-model row (row 0): shared by every cell of its model,
    tasks, probes and evaluation settings (the dry run looks it up too), whichever rows the
    schedules (`eval.rows`, `eval.probe_rows`) evaluate after training: row 0 is always
    complete."""
    evaluation = {k: v for k, v in p.config["eval"].items() if k not in ("rows", "probe_rows")}
    return [p.model_id, p.config["tasks"], p.config["probes"], evaluation,
            results.SCHEMA_VERSION]


def _is_row(row, tasks, probes) -> bool:
    """Is a cached base row complete for these tasks and probes? (Else it is recomputed.)"""
    return (isinstance(row, dict) and isinstance(row.get("scores"), dict)
            and isinstance(row.get("items"), dict) and isinstance(row.get("probes"), dict)
            and isinstance(row.get("outputs"), dict)
            and all(isinstance(row["scores"].get(t), (int, float)) for t in tasks)
            and all(isinstance(row["items"].get(t), list) for t in tasks)
            and all(isinstance((row.get("content") or {}).get(t), list) for t in tasks)
            and all(isinstance(row["probes"].get(p), (int, float)) for p in probes))


def save_checkpoint(model, tokenizer, folder: Path) -> None:
    """Save the trained model as a plain transformers checkpoint (adapters merged), which
    `lm_eval --model hf --model_args pretrained=FOLDER` and `from_pretrained` can load."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    with writing(folder):
        model.save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)
