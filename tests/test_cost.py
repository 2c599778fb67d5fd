"""harness/cost.py: a cell's GPU time by hand (FLOPs over peak, decoding steps over
bandwidth), and the GPU-hours line of `--dry-run --gpu`."""

import math

import pytest

from harness.config import load_suite
from harness.cost import DECODE_EFFICIENCY, GPU_SPECS, TRAIN_MFU, cell_seconds, report_line
from harness.grid import expand
from harness.memory import architecture
from harness.tasks import get_task


def test_cells_by_hand_on_an_h100():
    suite = load_suite("leaderboard")
    cells = {c.method.name: c for c in expand(suite) if c.seed == 0 and c.stream == "arith-json"}
    arch = architecture("smollm2-135m-instruct")
    peak, bandwidth = GPU_SPECS["H100"]
    t = cells["sft"].method.train
    steps = 2 * t.steps
    tokens = steps * t.batch_size * t.grad_accum * t.max_len
    decode = arch.params * 4 / (bandwidth * DECODE_EFFICIENCY)
    per_row = sum(math.ceil(suite.data.n_test / suite.eval.batch_size) * get_task(x).max_new_tokens
                  for x in ("arith", "json-extract"))
    sft = cell_seconds(cells["sft"], suite, arch, "H100")
    assert sft["train"] == pytest.approx(tokens * 6 * arch.params / (peak * TRAIN_MFU))
    assert sft["generate"] == 0 and sft["evaluate"] == pytest.approx(3 * per_row * decode)
    sdft = cell_seconds(cells["sdft"], suite, arch, "H100")
    assert sdft["train"] == pytest.approx(sft["train"] * 8 / 6)  # + the teacher's forward
    assert sdft["generate"] == pytest.approx(steps * 64 * decode)  # one call a step
    cells["sdft"].method.params["rollouts"] = 8  # 8 completions a prompt: 8x the tokens
    wide = cell_seconds(cells["sdft"], suite, arch, "H100")
    assert wide["train"] == pytest.approx(sdft["train"] * 8) and wide["generate"] == sdft["generate"]
    cells["sdft"].method.params.update(rollouts=1, sample_steps=4)  # a call per 4 steps, and
    ahead = cell_seconds(cells["sdft"], suite, arch, "H100")  # a forward for 3 of 4 steps'
    assert ahead["generate"] == pytest.approx(sdft["generate"] / 4)
    assert ahead["train"] == pytest.approx(sdft["train"] * (8 + 2 * 3 / 4) / 8)
    lora = cell_seconds(cells["lora"], suite, arch, "H100")
    assert lora["train"] == pytest.approx(sft["train"] * 4 / 6)
    assert cell_seconds(cells["sft"], suite, arch, "24 GiB") is None


def test_the_dry_run_prints_gpu_hours_for_a_named_gpu(capsys, monkeypatch):
    from harness.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    assert main(["run", "--suite", "sdft-onpolicy-2026", "--dry-run", "--gpu", "H200"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("GPU-hours on one H200"))
    assert "upper bound" in line and "sdft" in line
    assert report_line(load_suite("leaderboard"), "24 GiB") is None
