"""The grid and the stream loop.

A suite expands into cells (model x stream x method x seed). Per cell: load the model,
evaluate the base model once (row 0, cached across cells), then for each task in turn:
train, evaluate every task of the stream and every probe (one more row). The cell's
result is written atomically to OUT/cells/<cell-id>/result.json only when complete;
rows done so far are in progress.json next to it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import platform
import re
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch

from harness import __version__
from harness.cache import Cache
from harness.config import MethodSpec, Suite
from harness.errors import HarnessError
from harness.evaluation import GENERAL, EvalSettings, Evaluator
from harness.methods import Context, make_method
from harness.methods.base import call_hook
from harness.metrics import cell_metrics
from harness.models import load_model, model_identity, resolve_model
from harness.paths import atomic_write_json, stable_hash
from harness.probes import general_prompts, get_probe
from harness.seeding import isolated, seeded
from harness.tasks import get_task
from harness.training import total_steps, train_task

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Cell:
    model: str
    stream: str
    tasks: tuple[str, ...]
    method: MethodSpec
    seed: int

    @property
    def id(self) -> str:
        model = Path(os.path.abspath(self.model)).name if Path(self.model).is_dir() else self.model
        method = self.method.name
        if ".py:" in method:  # a method file: file stem and class name
            path, cls = method.rsplit(":", 1)
            method = f"{Path(path).stem}.{cls}"
        raw = f"{model}__{self.stream}__{method}__s{self.seed}"
        return re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-")


def expand(suite: Suite) -> list[Cell]:
    """All cells, seed by seed: a grid stopped early still compares every method. Stops on
    two cells whose ids (folder names) are equal, which would overwrite each other."""
    cells = [Cell(model, stream, tuple(tasks), method, seed)
             for model in suite.models
             for stream, tasks in suite.streams.items()
             for seed in suite.seeds
             for method in suite.methods]
    seen: dict[str, Cell] = {}
    for cell in cells:
        other = seen.setdefault(cell.id, cell)
        if other is not cell:
            what, a, b, fix = next(
                (what, x, y, fix) for what, x, y, fix in (
                    ("models", other.model, cell.model,
                     "give the model folders different names (a symlink will do)"),
                    ("streams", other.stream, cell.stream, "rename one of the streams"),
                    ("methods", other.method.name, cell.method.name,
                     "rename one of the method files or classes"))
                if x != y)
            raise HarnessError(f"{what} '{a}' and '{b}' would share the cell folder "
                               f"cells/{cell.id} and overwrite each other's results", fix)
    return cells


def grid_definition(suite: Suite) -> dict:
    """Everything that fixes the grid's results, with the content hashes of the task data
    and probe data: two runs with the same grid id measure the same thing."""
    from harness.probes import PROBE_DATA

    data = suite.data
    task_hashes = {t: get_task(t).split(data.n_train, data.n_test, data.seed).content_hash
                   for tasks in suite.streams.values() for t in tasks}
    probe_files = {p.name: stable_hash(p.read_text()) for p in sorted(PROBE_DATA.glob("*.json"))}
    return {
        "models": {m: model_identity(m, m) for m in suite.models},
        "streams": suite.streams, "task_hashes": task_hashes,
        "methods": [{"name": m.name, "params": m.params, "train": dataclasses.asdict(m.train)}
                    for m in suite.methods],
        "seeds": suite.seeds, "probe_data": probe_files,
        "probes": {name: get_probe(name).version for name in suite.probes},
        "data": dataclasses.asdict(data), "eval": dataclasses.asdict(suite.eval),
        "schema": SCHEMA_VERSION,
    }


def grid_id(suite: Suite) -> str:
    return stable_hash(grid_definition(suite))


def cell_config(cell: Cell, suite: Suite, model_id: str, splits) -> dict:
    """Everything that determines a cell's result; its hash decides whether a complete
    cell can be skipped."""
    return {
        "model": model_id, "tasks": {s.task: s.content_hash for s in splits},
        "method": cell.method.name, "params": cell.method.params,
        "train": dataclasses.asdict(cell.method.train), "seed": cell.seed,
        "data": dataclasses.asdict(suite.data), "eval": dataclasses.asdict(suite.eval),
        "probes": {name: get_probe(name).version for name in suite.probes},
        "schema": SCHEMA_VERSION,
    }


def read_result(path: Path) -> dict | None:
    """A result.json's content, or None where it is missing, unreadable, not JSON or not a
    JSON object: such a cell is re-run, never a traceback."""
    import json

    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    return result if isinstance(result, dict) else None


def cell_state(cell: Cell, suite: Suite, folder: Path) -> str:
    """What a run will do with a cell: complete (skip) | stale (settings changed: re-run) |
    corrupt (re-run) | failed (retry) | partial (interrupted: re-run) | new."""
    if (folder / "result.json").exists():
        result = read_result(folder / "result.json")
        if result is None:
            return "corrupt"
        data = suite.data
        splits = [get_task(t).split(data.n_train, data.n_test, data.seed) for t in cell.tasks]
        config = cell_config(cell, suite, model_identity(cell.model, cell.model), splits)
        fresh = result.get("config_hash") == stable_hash(config)
        return "complete" if fresh and result.get("status") == "complete" else "stale"
    if (folder / "failure.json").exists():
        return "failed"
    return "partial" if (folder / "progress.json").exists() else "new"


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
    import os

    info = {"platform": platform.platform(), "cpu_count": os.cpu_count(), "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


class Runner:
    """Runs the cells of a suite into an output directory."""

    def __init__(self, suite: Suite, out: Path, device: torch.device, ui,
                 save_model: bool = False):
        self.suite, self.out, self.device, self.ui = suite, Path(out), device, ui
        self.save_model = save_model
        self.cache = Cache()
        self.probes = {name: get_probe(name) for name in suite.probes}  # shared by cells
        self.grid_id = grid_id(suite)

    def cell_dir(self, cell: Cell) -> Path:
        return self.out / "cells" / cell.id

    def run(self) -> tuple[list[dict], list[tuple[Cell, str]]]:
        """Run every cell not already complete; return (results, failures)."""
        for model in self.suite.models:  # provision / check models up front: fail fast
            resolve_model(model, log=self.ui.log)
        results, failures = [], []
        cells = expand(self.suite)
        for n, cell in enumerate(cells, 1):
            self.ui.log(f"[{n}/{len(cells)}] {cell.id}")
            try:
                results.append(self.run_cell(cell))
                self.ui.clear()
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # one failing cell must not stop the grid
                message = exc.args[0] if isinstance(exc, HarnessError) else f"{type(exc).__name__}: {exc}"
                self.ui.log(f"  FAILED: {message}")
                failures.append((cell, message))
                unwritable = self._record_failure(cell, message)
                if unwritable:  # a full disk or a lost folder: later cells would fail alike
                    self.ui.log(f"  cannot write {self.cell_dir(cell) / 'failure.json'} "
                                f"({unwritable}): stopping with {len(cells) - n} cells not run; "
                                "complete cells are kept, re-run the same command to resume")
                    break
        return results, failures

    def _record_failure(self, cell: Cell, message: str) -> str | None:
        """Write the cell's failure.json; return why it could not be written, else None."""
        try:
            atomic_write_json(self.cell_dir(cell) / "failure.json", {
                "status": "failed", "cell": self._cell_info(cell), "error": message,
                "traceback": traceback.format_exc(),
                "finished_at": dt.datetime.now(dt.timezone.utc).isoformat()})
        except OSError as exc:
            return f"{type(exc).__name__}: {exc.strerror or exc}"
        return None

    @staticmethod
    def _cell_info(cell: Cell) -> dict:
        return {"model": cell.model, "stream": cell.stream, "method": cell.method.name,
                "seed": cell.seed}

    def run_cell(self, cell: Cell) -> dict:
        started = time.perf_counter()
        suite, folder = self.suite, self.cell_dir(cell)
        model_id = model_identity(cell.model, resolve_model(cell.model, log=self.ui.log))
        tasks = [get_task(name) for name in cell.tasks]
        splits = [t.split(suite.data.n_train, suite.data.n_test, suite.data.seed) for t in tasks]
        eval_settings = EvalSettings(suite.eval.batch_size, suite.eval.max_new_tokens)
        config = cell_config(cell, suite, model_id, splits)
        config_hash = stable_hash(config)
        done = self._completed(folder, config_hash)
        if done:
            self.ui.log("  already complete: skipped")
            return done
        (folder / "failure.json").unlink(missing_ok=True)  # a re-run retries a failed cell
        model, tokenizer, path = load_model(cell.model, str(self.device), log=self.ui.log)

        with self.ui.activity("base model: probes setup"):
            with isolated():
                for probe in self.probes.values():
                    probe.prepare(model, tokenizer, model_id)
        evaluator = Evaluator(tasks, splits, list(self.probes.values()), eval_settings, tokenizer)
        base_key = [model_id, config["tasks"], config["probes"], config["eval"], SCHEMA_VERSION]
        with self.ui.activity("base model: evaluate (row 0)"):
            row0 = self.cache.get_or_compute(
                "base_rows", base_key, lambda: dataclasses.asdict(evaluator.evaluate(model)),
                valid=lambda row: _is_row(row, cell.tasks, self.probes))
        rows = [row0]

        method = make_method(cell.method.name, cell.method.params)
        ctx = Context(tokenizer=tokenizer, device=self.device, seed=cell.seed, model_id=model_id,
                      train_settings=cell.method.train, cache=self.cache, log=self.ui.log,
                      model_path=path, stream=[(t, list(s.train)) for t, s in zip(tasks, splits)])
        ctx._model = model
        with seeded(cell.seed, "setup"):  # each phase draws from its own (seed, phase) stream
            call_hook(method, "setup", ctx)
        with seeded(cell.seed, "wrap_model"):
            model = call_hook(method, "wrap_model", model, ctx).to(self.device)
        ctx._model = model
        setup_s = time.perf_counter() - started

        training = []
        for i, (task, split) in enumerate(zip(tasks, splits)):
            with seeded(cell.seed, f"task {i}"):
                stats = self._train_one(cell, method, model, ctx, task, split, i)
            ctx.history.append(task.name)
            training.append(stats)
            with self.ui.activity(f"{cell.method.name} evaluate after {task.name}"):
                rows.append(dataclasses.asdict(evaluator.evaluate(model)))
            self.ui.log(f"  after {task.name}: " + ", ".join(
                f"{k} {v:.3f}" for k, v in {**rows[-1]["scores"], **rows[-1]["probes"]}.items()))
            atomic_write_json(folder / "progress.json", {
                "status": "running", "config_hash": config_hash, "rows_done": len(rows),
                "R": [[r["scores"][t] for t in cell.tasks] for r in rows]})

        result = self._result(cell, rows, training, config, config_hash, model_id, started,
                              setup_s)
        result["method_stats"] = ctx.stats
        samples = {t: {"prompts": [e.prompt for e in s.test], "targets": [e.target for e in s.test],
                       "outputs": [row["outputs"][t] for row in rows]}
                   for t, s in zip(cell.tasks, splits)}
        if all(GENERAL in row["outputs"] for row in rows):
            samples[GENERAL] = {"prompts": general_prompts(),
                                "outputs": [row["outputs"][GENERAL] for row in rows]}
        atomic_write_json(folder / "samples.json", samples)  # what the model answered, per row
        if self.save_model:  # before result.json: a complete cell has its model
            save_checkpoint(model, tokenizer, folder / "model")
        atomic_write_json(folder / "result.json", result)
        (folder / "progress.json").unlink(missing_ok=True)
        return result

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

    def _completed(self, folder: Path, config_hash: str) -> dict | None:
        result = read_result(folder / "result.json")
        if result is None:
            return None
        ok = result.get("status") == "complete" and result.get("config_hash") == config_hash
        return result if ok else None

    def _result(self, cell, rows, training, config, config_hash, model_id, started, setup_s):
        R = [[row["scores"][t] for t in cell.tasks] for row in rows]
        probes = {name: [row["probes"][name] for row in rows] for name in self.probes}
        train_s = sum(s["seconds"] for s in training)
        eval_s = sum(row["seconds"] for row in rows[1:])
        return {
            "schema_version": SCHEMA_VERSION,
            "status": "complete",
            "cell_id": cell.id,
            "cell": self._cell_info(cell),
            "tasks": list(cell.tasks),
            "R": R,
            "items": {t: [row["items"][t] for row in rows] for t in cell.tasks},
            "probes": probes,
            "probe_info": {name: {"higher_is_better": p.higher_is_better, "chance": p.chance,
                                  "description": p.description}
                           for name, p in self.probes.items()},
            "metrics": cell_metrics(R, probes),
            "training": [{k: v for k, v in s.items()} for s in training],
            "method_params": config["params"],
            "train_settings": config["train"],
            "data_settings": config["data"],
            "eval_settings": config["eval"],
            "task_hashes": config["tasks"],
            "model_id": model_id,
            "config_hash": config_hash,
            "grid_id": self.grid_id,
            "suite": self.suite.name,
            "timings": {"total_s": time.perf_counter() - started, "setup_s": setup_s,
                        "train_s": train_s, "eval_s": eval_s,
                        "base_eval_s": rows[0]["seconds"]},
            "versions": versions(),
            "hardware": hardware(self.device),
            "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        }


def _is_row(row, tasks, probes) -> bool:
    """Is a cached base row complete for these tasks and probes? (Else it is recomputed.)"""
    return (isinstance(row, dict) and isinstance(row.get("scores"), dict)
            and isinstance(row.get("items"), dict) and isinstance(row.get("probes"), dict)
            and isinstance(row.get("outputs"), dict)
            and all(isinstance(row["scores"].get(t), (int, float)) for t in tasks)
            and all(isinstance(row["items"].get(t), list) for t in tasks)
            and all(isinstance(row["probes"].get(p), (int, float)) for p in probes))


def save_checkpoint(model, tokenizer, folder: Path) -> None:
    """Save the trained model as a plain transformers checkpoint (adapters merged), which
    `lm_eval --model hf --model_args pretrained=FOLDER` and `from_pretrained` can load."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
