"""Probes: each probe's direction (a model that drifts scores worse), and the registry."""

import pytest
import torch

from harness.errors import HarnessError
from harness.probes import (AgreementProbe, DriftProbe, LmEvalProbe, RowState, StyleLeakProbe,
                            base_general_answers, get_probe)


def perturb(model, scale, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * scale)


def test_drift_is_zero_for_base_and_grows_with_perturbation(tiny):
    model, tok = tiny
    probe = DriftProbe()
    probe.prepare(model, tok, "tiny")
    assert probe.measure(RowState(model, tok)) == 0.0
    values = []
    for scale in (0.01, 0.1):
        perturb(model, scale)
        values.append(probe.measure(RowState(model, tok)))
    assert 0 < values[0] < values[1]


def test_base_answers_are_generated_once_and_cached(tiny):
    model, tok = tiny
    first = base_general_answers(model, tok, "tiny")
    perturb(model, 0.5)  # the same model id reuses the cached answers
    assert base_general_answers(model, tok, "tiny") == first
    assert base_general_answers(model, tok, "other-id") != first


def test_agreement_is_one_for_base_and_drops_when_the_model_drifts(tiny):
    model, tok = tiny
    probe = AgreementProbe()
    probe.prepare(model, tok, "tiny")
    assert probe.measure(RowState(model, tok)) == pytest.approx(1.0)
    perturb(model, 0.2)
    assert probe.measure(RowState(model, tok)) < 0.9


class FixedAnswers(RowState):
    def __init__(self, answers):
        super().__init__(None, None)
        self._answers = answers


def test_style_leak_counts_task_formats_the_base_did_not_use(tiny):
    model, tok = tiny
    probe = StyleLeakProbe()
    probe.prepare(model, tok, "tiny")
    n = len(probe.base_texts)
    assert probe.measure(RowState(model, tok)) == 0.0
    assert probe.measure(FixedAnswers(["Sure, here is a poem."] * n)) == 0.0
    half = ["2 + 3 = 5\n#### 5"] * (n // 2) + ["A calm answer."] * (n - n // 2)
    assert probe.measure(FixedAnswers(half)) == pytest.approx(0.5)
    assert probe.measure(FixedAnswers(['{"name": "Red"}'] * n)) == 1.0
    assert probe.measure(FixedAnswers(["red > blue > green"] * n)) == 1.0
    assert probe.measure(FixedAnswers(["refund"] * n)) == 1.0


def test_lm_eval_probe_picks_its_metric():
    probe = get_probe("lm-eval:hellaswag")
    assert isinstance(probe, LmEvalProbe) and probe.task == "hellaswag"
    results = {"results": {"hellaswag": {"alias": "hellaswag", "acc,none": 0.4,
                                         "acc_stderr,none": 0.01, "acc_norm,none": 0.5}}}
    assert probe.measure(RowState(None, None, results)) == 0.4
    assert get_probe("lm-eval:hellaswag:acc_norm").measure(RowState(None, None, results)) == 0.5
    with pytest.raises(HarnessError, match="no metric f1"):
        get_probe("lm-eval:hellaswag:f1").measure(RowState(None, None, results))


def test_unknown_probe():
    with pytest.raises(HarnessError, match="unknown probe 'nope'"):
        get_probe("nope")


def test_a_suites_generation_cap_reaches_task_probes_only(monkeypatch):
    """eval.max_new_tokens caps a `task:` probe's budget (on a copy: probes are shared);
    probes that do not generate with a task's budget are untouched; no cap, no change."""
    from harness.evaluation import _capped
    from harness.probes import get_probe

    monkeypatch.setenv("HARNESS_PAPER_FIXTURES", "tests/fixtures/papers")
    probe = get_probe("task:multiarith")
    assert probe.max_new_tokens is None
    capped = _capped(probe, 4)
    assert capped.max_new_tokens == 4 and probe.max_new_tokens is None and capped is not probe
    assert _capped(probe, None) is probe
    drift = get_probe("drift")
    assert _capped(drift, 4) is drift
