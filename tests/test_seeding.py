"""A cell's random numbers depend on its seed and phase only: not on lm-eval's reseeding,
not on whether the base row came from the cache, not on other cells."""

import json
import random

import numpy as np
import torch

from harness.cli import main
from harness.seeding import derive_seed, isolated, seeded
from helpers import tiny_suite

# Records what the global generators give at the start of each task's data hook.
DRAWS = '''
import random
import numpy as np
import torch
from harness.methods import Method

class Draws(Method):
    name = "draws"
    def train_data(self, task, examples, ctx):
        ctx.record("draw", [random.random(), float(np.random.rand()), float(torch.rand(()))],
                   task=task.name)
        return list(examples)
'''


def test_seeded_blocks_depend_on_seed_and_purpose_and_restore_state():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    with seeded(0, "a"):
        a0 = (random.random(), np.random.rand(), torch.rand(()).item())
    with seeded(0, "a"):
        assert (random.random(), np.random.rand(), torch.rand(()).item()) == a0
    with seeded(1, "a"):
        assert torch.rand(()).item() != a0[2]
    with seeded(0, "b"):
        assert torch.rand(()).item() != a0[2]
    assert torch.equal(torch.rand(3), expected)  # the caller's stream was not consumed
    assert derive_seed(0, "a") != derive_seed(0, "b") != derive_seed(1, "a")


def test_evaluation_does_not_reseed_the_process(tiny, tiny_model_dir):
    """lm-eval's defaults reset random/numpy/torch to fixed seeds after every row of R."""
    from harness.config import EvalSettings
    from harness.evaluation import Evaluator
    from harness.tasks import get_task

    model, tok = tiny
    task = get_task("arith")
    evaluator = Evaluator([task], [task.split(4, 2, 0)], [], EvalSettings(8, 4), tok)
    for seed in (0, 1):
        torch.manual_seed(seed), random.seed(seed), np.random.seed(seed)
        expected = (torch.rand(2), random.random(), np.random.rand())
        torch.manual_seed(seed), random.seed(seed), np.random.seed(seed)
        evaluator.evaluate(model)
        got = (torch.rand(2), random.random(), np.random.rand())
        assert torch.equal(got[0], expected[0]) and got[1:] == expected[1:]


def test_isolated_restores_after_an_exception():
    torch.manual_seed(3)
    expected = torch.rand(2)
    torch.manual_seed(3)
    try:
        with isolated():
            torch.manual_seed(99)
            raise RuntimeError
    except RuntimeError:
        pass
    assert torch.equal(torch.rand(2), expected)


def _draws(out):
    results = [json.loads(p.read_text()) for p in sorted((out / "cells").glob("*/result.json"))]
    return {r["cell"]["seed"]: r["method_stats"] for r in results}


def test_seeds_draw_differently_after_the_first_task(tmp_path, tiny_model_dir):
    plugin = tmp_path / "draws.py"
    plugin.write_text(DRAWS)
    suite = tiny_suite(tmp_path, str(tiny_model_dir), methods=[f"{plugin}:Draws"],
                       seeds=[0, 1], train={"steps": 1, "lr": 1e-3, "batch_size": 4},
                       probes=[])
    out = tmp_path / "out"
    assert main(["run", "--suite", str(suite), "--out", str(out), "--quiet"]) == 0
    stats = _draws(out)
    for task in ("arith", "json-extract"):  # json-extract comes after an evaluation
        assert stats[0][task]["draw"] != stats[1][task]["draw"]
        assert all(a != b for a, b in zip(stats[0][task]["draw"], stats[1][task]["draw"]))
    assert stats[0]["arith"]["draw"] != stats[0]["json-extract"]["draw"]


def _numbers(result: dict) -> dict:
    stats = {t: {k: v for k, v in s.items() if not k.endswith("_s")}
             for t, s in result["method_stats"].items()}
    return {"R": result["R"], "items": result["items"], "probes": result["probes"],
            "metrics": result["metrics"], "losses": [t["losses"] for t in result["training"]],
            "stats": stats}


def test_cold_and_warm_base_row_cache_give_identical_numbers(tmp_path, tiny_model_dir):
    """LoRA initialisation and SDFT's sampling used to depend on whether row 0 (an lm-eval
    call that reseeded the process) was computed or read from the cache."""
    methods = {"sdft": {"lora": {"r": 4, "alpha": 8}, "max_new_tokens": 8},
               "sdft-rewrite": {"max_new_tokens": 8},
               "sa-sft": {"user_tokens": 8, "answer_tokens": 8, "min_chars": 1, "max_rounds": 1}}
    suite = tiny_suite(tmp_path, str(tiny_model_dir), methods=methods,
                       train={"steps": 2, "lr": 1e-2, "batch_size": 4}, probes=["drift"])
    cold, warm = tmp_path / "cold", tmp_path / "warm"
    assert main(["run", "--suite", str(suite), "--out", str(cold), "--quiet"]) == 0
    assert main(["run", "--suite", str(suite), "--out", str(warm), "--quiet"]) == 0
    for name in methods:
        a, b = (json.loads(next((o / "cells").glob(f"*__{name}__*/result.json")).read_text())
                for o in (cold, warm))
        assert _numbers(a) == _numbers(b), name
        assert a["training"][0]["losses"][0] > 0
