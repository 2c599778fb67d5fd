"""Precision as a setting: what autocast does per precision and device, and that results
and caches at another precision than `auto` are keyed apart (and `auto` keys as before)."""

import torch

from harness.config import load_suite
from harness.overrides import narrow
from harness.grid import expand, grid_id, plan
from harness.precision import autocast, current, using
from harness.storage import Cache, stable_hash
from helpers import tiny_suite


def _dtype(device="cpu"):
    layer = torch.nn.Linear(4, 4)
    with autocast(device):
        return layer(torch.ones(1, 4)).dtype


def test_autocast_follows_the_precision_on_cpu():
    assert current() == "auto" and _dtype() == torch.float32  # auto: a CPU stays in fp32
    with using("bf16"):
        assert current() == "bf16" and _dtype() == torch.bfloat16
        with using("fp32"):
            assert _dtype() == torch.float32
    assert current() == "auto"


def test_cache_keys_apart_only_where_the_precision_is_not_auto(tmp_path):
    cache = Cache(tmp_path)
    auto = cache.path("rows", ["k"])
    assert auto == tmp_path / "rows" / f"{stable_hash(['k'], 24)}.json"  # as before
    with using("bf16"):
        assert cache.path("rows", ["k"]) != auto
        assert cache.get_or_compute("rows", ["k"], lambda: 2) == 2
    with using("fp32"):
        assert cache.get_or_compute("rows", ["k"], lambda: 3) == 3
    assert cache.get_or_compute("rows", ["k"], lambda: 1) == 1  # auto: its own entry


def test_precision_in_the_plan_only_where_it_is_not_auto(tmp_path, tiny_model_dir):
    suite = load_suite(tiny_suite(tmp_path, str(tiny_model_dir)))
    assert suite.precision == "auto"
    cell = expand(suite)[0]
    bf16 = narrow(suite, None, None, "bf16")
    assert "precision" not in plan(cell, suite).config
    assert plan(cell, bf16).config["precision"] == "bf16"
    assert plan(cell, bf16).config_hash != plan(cell, suite).config_hash
    assert grid_id(bf16) != grid_id(suite)
