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
import platform
import random
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
from harness.evaluation import EvalSettings, Evaluator
from harness.methods import Context, make_method
from harness.metrics import cell_metrics
from harness.models import load_model, model_identity, resolve_model
from harness.paths import atomic_write_json, stable_hash
from harness.probes import get_probe
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
        model = Path(self.model).name if Path(self.model).is_dir() else self.model
        method = self.method.name
        if ".py:" in method:  # a method file: file stem and class name
            path, cls = method.rsplit(":", 1)
            method = f"{Path(path).stem}.{cls}"
        raw = f"{model}__{self.stream}__{method}__s{self.seed}"
        return re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-")


def expand(suite: Suite) -> list[Cell]:
    return [Cell(model, stream, tuple(tasks), method, seed)
            for model in suite.models
            for stream, tasks in suite.streams.items()
            for method in suite.methods
            for seed in suite.seeds]


def pick_device(requested: str | None) -> torch.device:
    if requested in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise HarnessError("--device cuda was asked for but no CUDA device is visible",
                           "use --device cpu, or run on a machine with a GPU")
    if requested not in ("cpu",) and not requested.startswith("cuda"):
        raise HarnessError(f"unknown device '{requested}'", "use cpu, cuda, cuda:N or auto")
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

    def __init__(self, suite: Suite, out: Path, device: torch.device, ui):
        self.suite, self.out, self.device, self.ui = suite, Path(out), device, ui
        self.cache = Cache()
        self.probes = {name: get_probe(name) for name in suite.probes}  # shared by cells

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
                atomic_write_json(self.cell_dir(cell) / "failure.json", {
                    "status": "failed", "cell": self._cell_info(cell), "error": message,
                    "traceback": traceback.format_exc(),
                    "finished_at": dt.datetime.now(dt.timezone.utc).isoformat()})
                self.ui.log(f"  FAILED: {message}")
                failures.append((cell, message))
        return results, failures

    @staticmethod
    def _cell_info(cell: Cell) -> dict:
        return {"model": cell.model, "stream": cell.stream, "method": cell.method.name,
                "seed": cell.seed}

    def run_cell(self, cell: Cell) -> dict:
        started = time.perf_counter()
        torch.manual_seed(cell.seed)
        random.seed(cell.seed)
        suite, folder = self.suite, self.cell_dir(cell)
        model, tokenizer, path = load_model(cell.model, str(self.device), log=self.ui.log)
        model_id = model_identity(cell.model, path)
        tasks = [get_task(name) for name in cell.tasks]
        splits = [t.split(suite.data.n_train, suite.data.n_test, suite.data.seed) for t in tasks]
        eval_settings = EvalSettings(suite.eval.batch_size, suite.eval.max_new_tokens)
        config = {
            "model": model_id, "tasks": {s.task: s.content_hash for s in splits},
            "method": cell.method.name, "params": cell.method.params,
            "train": dataclasses.asdict(cell.method.train), "seed": cell.seed,
            "data": dataclasses.asdict(suite.data), "eval": dataclasses.asdict(suite.eval),
            "probes": list(self.probes), "schema": SCHEMA_VERSION,
        }
        config_hash = stable_hash(config)
        done = self._completed(folder, config_hash)
        if done:
            self.ui.log("  already complete: skipped")
            return done
        (folder / "failure.json").unlink(missing_ok=True)  # a re-run retries a failed cell

        with self.ui.activity("base model: probes setup"):
            for probe in self.probes.values():
                probe.prepare(model, tokenizer, model_id)
        evaluator = Evaluator(tasks, splits, list(self.probes.values()), eval_settings, tokenizer)
        base_key = [model_id, config["tasks"], config["probes"], config["eval"], SCHEMA_VERSION]
        with self.ui.activity("base model: evaluate (row 0)"):
            row0 = self.cache.get_or_compute(
                "base_rows", base_key, lambda: dataclasses.asdict(evaluator.evaluate(model)))
        rows = [row0]

        method = make_method(cell.method.name, cell.method.params)
        ctx = Context(tokenizer=tokenizer, device=self.device, seed=cell.seed, model_id=model_id,
                      train_settings=cell.method.train, cache=self.cache, log=self.ui.log,
                      model_path=path)
        ctx._model = model
        method.setup(ctx)
        model = method.wrap_model(model, ctx).to(self.device)
        ctx._model = model
        setup_s = time.perf_counter() - started

        training = []
        for i, (task, split) in enumerate(zip(tasks, splits)):
            data = method.train_data(task, list(split.train), ctx)
            stats = train_task(model, method, ctx, task, data, cell.method.train, i,
                               on_step=self.ui.steps(f"{cell.method.name} train {task.name}",
                                                     total_steps(cell.method.train, len(data))))
            method.after_task(task, model, ctx)
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
        atomic_write_json(folder / "samples.json", {  # what the model answered, per row
            t: {"prompts": [e.prompt for e in s.test], "targets": [e.target for e in s.test],
                "outputs": [row["outputs"][t] for row in rows]}
            for t, s in zip(cell.tasks, splits)})
        atomic_write_json(folder / "result.json", result)
        (folder / "progress.json").unlink(missing_ok=True)
        return result

    def _completed(self, folder: Path, config_hash: str) -> dict | None:
        import json

        path = folder / "result.json"
        if not path.exists():
            return None
        try:
            result = json.loads(path.read_text())
        except json.JSONDecodeError:
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
            "suite": self.suite.name,
            "timings": {"total_s": time.perf_counter() - started, "setup_s": setup_s,
                        "train_s": train_s, "eval_s": eval_s,
                        "base_eval_s": rows[0]["seconds"]},
            "versions": versions(),
            "hardware": hardware(self.device),
            "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        }
