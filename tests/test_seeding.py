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


# ------------------------------------------------------------------ one owner of random streams

def _old_draws(value, kind="python", n=5):
    """Draws of a generator built the way the sites built theirs before seeding.py owned
    them (results version 1)."""
    if kind == "numpy":
        return np.random.default_rng(value).permutation(20).tolist()
    if kind == "torch":
        return torch.rand(n, generator=torch.Generator("cpu").manual_seed(value)).tolist()
    rng = random.Random(value)
    return [rng.random() for _ in range(n)]


def _new_draws(gen, kind="python", n=5):
    if kind == "numpy":
        return gen.permutation(20).tolist()
    if kind == "torch":
        return torch.rand(n, generator=gen).tolist()
    return [gen.random() for _ in range(n)]


# (purpose, keys, the old expression for seed 7 written out, kind)
LEGACY_CASES = [
    ("task data", ("arith", 3), "arith:3:7", "python"),                    # tasks.py, facts, papers
    ("train batches", (2, 1), (7 * 100 + 2) * 1000 + 1, "python"),         # training.py -> data.py
    ("batches", (), 7, "python"),                                          # data.py, ctx.batches
    ("replay", ("t1",), "replay:7:t1", "python"),
    ("mix-external", ("t1",), "mix-external:7:t1", "python"),
    ("ewc", ("t1",), "ewc:7:t1", "python"),
    ("sa-sft mix", ("t1",), "sa-sft:7:t1", "python"),
    ("sa-sft pool", (0,), 7, "python"),
    ("sa-sft pool", (2,), derive_seed(7, "sa-sft pool 2") % 2**31, "python"),
    ("sa-sft turn", (3, 1, 0), 7 * 10_000 + 100 * 3 + 2 * 1, "python"),
    ("sa-sft turn", (3, 1, 1), 7 * 10_000 + 100 * 3 + 2 * 1 + 1, "python"),
    ("sa-sft current", (2,), 7 * 100 + 2, "python"),
    ("holdout", (), 7, "numpy"),                                          # harness_papers
    ("statistics", (), 7, "numpy"),                                       # bootstrap, power
    ("statistics", (), 7, "python"),                                      # report --paper
    ("ewc fisher", (), 7, "torch"),
]


def test_every_legacy_purpose_reproduces_the_old_draws():
    from harness import seeding

    for purpose, keys, old, kind in LEGACY_CASES:
        gen = seeding.generator(7, purpose, *keys, kind=kind)
        assert _new_draws(gen, kind) == _old_draws(old, kind), (purpose, keys)
        assert seeding.derive(7, purpose, *keys) == old
    assert {case[0] for case in LEGACY_CASES} | {"sampling", "probe data"} == set(seeding.LEGACY)
    # a probe file's generator: the text seed as it was
    assert [seeding.generator("knowledge-v2", "probe data").random() for _ in range(2)] == \
        [random.Random("knowledge-v2").random()] * 2


def test_sampling_seeds_torch_as_before():
    """generation.py's seeded sampling: torch's generator seeded with the seed given, the
    caller's state untouched."""
    torch.manual_seed(11)
    with seeded(1234, "sampling"):
        got = torch.rand(4)
    after = torch.rand(1)
    torch.manual_seed(1234)
    assert torch.equal(got, torch.rand(4))
    torch.manual_seed(11)
    assert torch.equal(after, torch.rand(1))


def test_new_purposes_get_the_hash_recipe():
    from harness import seeding

    assert seeding.derive(3, "setup") == derive_seed(3, "setup")  # the phases' streams
    assert seeding.derive(3, "mine", "t1") != seeding.derive(3, "mine", "t2") \
        != seeding.derive(4, "mine", "t1")
    assert 0 <= seeding.derive(3, "mine", "t1") < 2**63


SEEDED_CALLS = {("random", "Random"), ("random", "seed"), ("np.random", "default_rng"),
                ("np.random", "seed"), ("np.random", "RandomState"), ("torch", "Generator"),
                ("torch", "manual_seed"), ("torch.cuda", "manual_seed"),
                ("torch.cuda", "manual_seed_all")}


def _seeded_constructions(tree) -> list[int]:
    """Lines that build a seeded generator or seed a global one: random.Random(x),
    Random(x), np.random.default_rng(x), torch.Generator(...), *.manual_seed(...),
    random.seed(...), np.random.seed(...)."""
    import ast

    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        owner = ast.unparse(func.value) if isinstance(func, ast.Attribute) else None
        if name in ("manual_seed", "manual_seed_all", "Generator", "RandomState"):
            found.append(node.lineno)
        elif name in ("Random", "default_rng") and (node.args or node.keywords):
            found.append(node.lineno)
        elif name == "seed" and owner in ("random", "np.random", "numpy.random"):
            found.append(node.lineno)
    return found


def test_no_module_but_seeding_builds_a_seeded_generator():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    offenders = []
    for package in ("harness", "baselines", "benchmarks", "examples", "harness_papers", "scripts"):
        for path in sorted((root / package).rglob("*.py")):
            if path == root / "harness" / "seeding.py":
                continue
            lines = _seeded_constructions(ast.parse(path.read_text()))
            offenders += [f"{path.relative_to(root)}:{n}" for n in lines]
    assert offenders == [], ("build generators through harness.seeding.generator(seed, "
                             f"purpose, ...) or seeded(...): {offenders}")
    # the check can fail: it finds each kind of construction
    sample = ("import random, numpy as np, torch\nrandom.Random(1)\nnp.random.default_rng(2)\n"
              "torch.Generator('cpu').manual_seed(3)\ntorch.manual_seed(4)\nrandom.seed(5)\n"
              "random.SystemRandom()\nrandom.Random()\n")
    assert sorted(_seeded_constructions(ast.parse(sample))) == [2, 3, 4, 4, 5, 6]
