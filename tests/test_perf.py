"""scripts/perf on the tiny model: the SFT losses agree with TRL's and both sides get
positive tokens/s and a ratio (TRL is a test extra, never a runtime dependency)."""

import json

import pytest

pytest.importorskip("trl")


def test_perf_sft_agrees_with_trl_and_reports_a_ratio(tiny_model_dir, tmp_path, capsys,
                                                      monkeypatch):
    import torch

    from scripts.perf.__main__ import main

    for key in ("OMP_NUM_THREADS", "TRL_EXPERIMENTAL_SILENCE"):  # main sets them
        monkeypatch.setenv(key, "1")
    threads = torch.get_num_threads()
    out = tmp_path / "perf.json"
    try:
        assert main(["--model", str(tiny_model_dir), "--rounds", "2", "--steps", "2",
                     "--only", "sft", "--threads", "1", "--json", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)
    printed = capsys.readouterr().out
    assert "SFT loss on the same batch" in printed and "SFT tokens/s ours/TRL" in printed
    result = json.loads(out.read_text())["sft"]
    assert result["loss_check"]["agree"]
    assert result["loss_check"]["abs_diff"] <= 1e-5 * max(1.0, result["loss_check"]["ours"])
    assert result["ours"]["tokens_per_s"] > 0 and result["trl"]["tokens_per_s"] > 0
    assert result["ratio_tokens_per_s"]["n"] == 2 and result["ratio_tokens_per_s"]["median"] > 0


def test_perf_rejects_an_unknown_part():
    from scripts.perf.__main__ import parse

    with pytest.raises(SystemExit):
        parse(["--only", "sft,nope"])


def test_sdft_breakdown_times_every_phase(tiny_model_dir, capsys):
    from scripts.perf import breakdown

    result = breakdown.run(str(tiny_model_dir), rounds=2, say=print)
    assert set(result["median_s"]) == set(breakdown.PHASES)
    assert all(seconds > 0 for seconds in result["median_s"].values())
    printed = capsys.readouterr().out
    assert "rollout" in printed and "SDFT / SFT without the optimiser" in printed


def test_sdft_sample_steps_is_timed_by_whole_rounds_beside_on_policy(tiny_model_dir, capsys):
    """--sample-steps N adds our SDFT sampling N steps a call, compared with on-policy SDFT
    and SFT by whole rounds (its steps are uneven), paired by round."""
    from scripts.perf import sdft
    from scripts.perf.__main__ import parse

    result = sdft.run(str(tiny_model_dir), rounds=2, steps=4, with_trl=False, say=print,
                      sample_steps=2)
    assert result["sample_steps"] == 2
    for key in ("ahead_over_sft", "ahead_over_sdft", "sdft_over_sft_rounds"):
        assert result[key]["n"] == 2 and result[key]["median"] > 0
    assert "SDFT sample_steps 2 / SFT" in capsys.readouterr().out + "\n".join(result["lines"])
    with pytest.raises(SystemExit):
        parse(["--steps", "4", "--sample-steps", "3"])
