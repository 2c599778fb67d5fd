"""Probes: the KL helper against torch, and the drift probe's direction."""

import torch
import torch.nn.functional as F

from harness.probes import DriftProbe, kl_per_token


def test_kl_matches_torch_kl_div():
    torch.manual_seed(0)
    p = F.log_softmax(torch.randn(5, 11), -1)
    q = F.log_softmax(torch.randn(5, 11), -1)
    ref = F.kl_div(q, p, log_target=True, reduction="none").sum(-1)  # KL(p || q)
    assert torch.allclose(kl_per_token(p, q), ref, atol=1e-6)
    assert torch.allclose(kl_per_token(p, p), torch.zeros(5), atol=1e-7)


def test_drift_is_zero_for_base_and_grows_with_perturbation(tiny):
    model, tok = tiny
    probe = DriftProbe()
    probe.max_new_tokens = 6
    probe.prepare(model, tok, "tiny")
    assert probe.measure(model, tok, {}) == 0.0
    values = []
    for scale in (0.01, 0.1):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * scale)
        values.append(probe.measure(model, tok, {}))
    assert 0 < values[0] < values[1]


def test_drift_base_answers_are_cached_on_disk(tiny):
    model, tok = tiny
    probe = DriftProbe()
    probe.max_new_tokens = 4
    probe.prepare(model, tok, "tiny")
    with torch.no_grad():  # a different model with the same id reuses the cached answers
        for p in model.parameters():
            p.mul_(0.5)
    second = DriftProbe()
    second.max_new_tokens = 4
    second.prepare(model, tok, "tiny")
    assert [x[1] for x in second._active[0]] == [x[1] for x in probe._active[0]]
