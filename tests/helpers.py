"""Shared test helpers: small suites, and a method set up on a model as the runner does."""

from pathlib import Path

import torch
import yaml

from harness.config import TrainSettings
from harness.data import collate
from harness.methods import Context, make_method
from harness.storage import Cache
from harness.tasks import get_task
from harness.training import train_task

SETTINGS = TrainSettings(steps=4, lr=1e-2, batch_size=4, max_len=96, warmup_ratio=0.0)


def tiny_suite(folder: Path, model: str, **overrides) -> Path:
    suite = {
        "name": "tiny",
        "models": [model],
        "streams": {"two": ["arith", "json-extract"]},
        "methods": {"sft": {}, "lora": {"r": 4, "alpha": 8, "train": {"lr": 1e-2}}},
        "seeds": [0],
        "probes": ["drift", "knowledge"],
        "train": {"steps": 3, "lr": 1e-3, "batch_size": 4, "max_len": 96},
        "data": {"n_train": 8, "n_test": 4},
        "eval": {"batch_size": 8, "max_new_tokens": 6},
    }
    suite.update(overrides)
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def make_ctx(model, tok, seed=0, settings=None, path=""):
    ctx = Context(tokenizer=tok, device=torch.device("cpu"), seed=seed, model_id="tiny",
                  model_path=path, train_settings=settings, cache=Cache(), log=lambda m: None)
    ctx._bind(model)
    return ctx


def batch_of(tok, n=4, task="arith"):
    return collate(tok, list(get_task(task).split(8, 2, 0).train[:n]), 96)


def setup_method(name, model, tok, params=None, stream=("arith", "json-extract")):
    """(method, ctx, wrapped model) after setup and wrap_model, on a two-task stream."""
    method = make_method(name, params or {})
    ctx = make_ctx(model, tok, 0, SETTINGS)
    ctx.stream = [(get_task(t), list(get_task(t).split(8, 2, 0).train)) for t in stream]
    method.setup(ctx)
    model = method.wrap_model(model, ctx)
    ctx._bind(model)
    return method, ctx, model


def train_stream_task(method, ctx, model, index):
    """Train the stream's task `index` as the runner would; returns its training data."""
    task, examples = ctx.stream[index]
    data = method.train_data(task, examples, ctx)
    if data:
        train_task(model, method, ctx, task, data, SETTINGS, index)
    method.after_task(task, model, ctx)
    ctx.history.append(task.name)
    return data


def load_script(name: str):
    """Load scripts/<name>.py by path: scripts/ is a folder of programs, not a package."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cell_files(out: Path) -> tuple[dict, dict]:
    """The result.json and samples.json of the one cell in run folder `out`."""
    import json

    (folder,) = (out / "cells").iterdir()
    return (json.loads((folder / "result.json").read_text()),
            json.loads((folder / "samples.json").read_text()))


def run_each(root: Path, model, values, make_suite) -> dict:
    """One run a value, each in root/VALUE with its own suite (`make_suite(folder, model,
    value)`) and a cache shared between them: {value: (result, samples, out)}."""
    import pytest

    from harness.cli import main

    found = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_CACHE", str(root / "cache"))
        for value in values:
            out = root / value / "out"
            suite = make_suite(root / value, model, value)
            assert main(["run", "--suite", str(suite), "--out", str(out), "--quiet",
                         "--threads", "1"]) == 0
            found[value] = (*cell_files(out), out)
    return found


def reseal(bundle: Path) -> None:
    """What a careful forger does after editing a bundle: rewrite its checksums."""
    from harness import bundle as B

    (bundle / B.CHECKSUMS).write_text(B.format_checksums(B.file_checksums(bundle)))


def edit_json(path: Path, fn) -> None:
    """Apply `fn` to the JSON in `path` and write it back."""
    import json

    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))
