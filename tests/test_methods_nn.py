"""harness.methods.nn: logits at positions, the batch's position masks, and the one
divergence every KL goes through, against hand computations, torch and TRL."""

import os

import pytest
import torch
import torch.nn.functional as F

from harness.methods import logits_at, response_logits, token_divergence, topk_log_probs
from helpers import batch_of

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


def test_divergence_hand_computation():
    s = torch.tensor([[0.0, 1.0, 2.0]])
    t = torch.tensor([[2.0, 0.0, -1.0]])
    p, q = F.softmax(s, -1)[0], F.softmax(t, -1)[0]
    forward = sum(q[i] * (q[i].log() - p[i].log()) for i in range(3))
    reverse = sum(p[i] * (p[i].log() - q[i].log()) for i in range(3))
    m = 0.3 * q + 0.7 * p
    jsd = 0.3 * sum(q * (q / m).log()) + 0.7 * sum(p * (p / m).log())
    assert token_divergence(s, t, "forward").item() == pytest.approx(forward.item(), rel=1e-5)
    assert token_divergence(s, t, "reverse").item() == pytest.approx(reverse.item(), rel=1e-5)
    assert token_divergence(s, t, "jsd", 0.3).item() == pytest.approx(jsd.item(), rel=1e-5)
    assert token_divergence(s, s, "forward").item() == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("kind,alpha", [("forward", 0.0), ("reverse", 1.0), ("jsd", 0.3)])
def test_divergence_equals_trl_sdft(kind, alpha):
    from trl.experimental.sdft.loss_utils import compute_full_logit_self_distillation_loss

    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(6, 50, generator=g) * 3, torch.randn(6, 50, generator=g) * 3
    ours = token_divergence(student, teacher, kind, beta=alpha)
    trl = compute_full_logit_self_distillation_loss(student, teacher, distillation_alpha=alpha)
    assert torch.allclose(ours, trl, atol=1e-5)
    if kind == "forward":  # and torch's kl_div(input=student, target=teacher)
        ref = F.kl_div(F.log_softmax(student, -1), F.log_softmax(teacher, -1),
                       log_target=True, reduction="none").sum(-1)
        assert torch.allclose(ours, ref, atol=1e-5)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("tail", [False, True])
def test_topk_divergence_equals_trl_sdft(alpha, tail):
    """TRL's top-k logit distillation (the student's top k, renormalised or with a tail
    bucket), value and gradient; at k = V it is the full-vocabulary divergence."""
    from trl.experimental.sdft.loss_utils import compute_topk_self_distillation_loss

    g = torch.Generator().manual_seed(2)
    student = (torch.randn(7, 60, generator=g) * 3).requires_grad_()
    teacher = torch.randn(7, 60, generator=g) * 3
    kind = {0.0: "forward", 0.5: "jsd", 1.0: "reverse"}[alpha]
    ours = token_divergence(*topk_log_probs(student, teacher, 10, tail), kind, beta=alpha,
                            log_probs=True)
    trl = compute_topk_self_distillation_loss(student, teacher, distillation_topk=10,
                                              distillation_alpha=alpha, distillation_add_tail=tail)
    assert torch.allclose(ours, trl, atol=1e-5)
    (grad,) = torch.autograd.grad(ours.sum(), student)
    (want,) = torch.autograd.grad(trl.sum(), student)
    assert torch.allclose(grad, want, atol=1e-5)
    full = token_divergence(*topk_log_probs(student, teacher, 60), kind, beta=alpha,
                            log_probs=True)
    assert torch.allclose(full, token_divergence(student, teacher, kind, beta=alpha), atol=1e-5)


def test_batchmean_is_kl_div_bit_for_bit_with_its_gradient():
    """LwF and the example plugin took F.kl_div(..., "batchmean"): the same bits now."""
    g = torch.Generator().manual_seed(1)
    student = (torch.randn(37, 515, generator=g) * 3).requires_grad_()
    teacher = torch.randn(37, 515, generator=g) * 3
    ref = F.kl_div(F.log_softmax(student / 2, -1), F.log_softmax(teacher / 2, -1),
                   log_target=True, reduction="batchmean")
    ours = token_divergence(student / 2, teacher / 2, reduction="batchmean")
    assert torch.equal(ours, ref)
    assert torch.equal(torch.autograd.grad(ours, student)[0], torch.autograd.grad(ref, student)[0])


def test_log_probs_are_taken_as_they_are():
    """The drift probe's KL(base || current) on stored log-probabilities, bit for bit."""
    torch.manual_seed(0)
    p = F.log_softmax(torch.randn(5, 11), -1)
    q = F.log_softmax(torch.randn(5, 11), -1)
    assert torch.equal(token_divergence(q, p, log_probs=True), (p.exp() * (p - q)).sum(-1))
    ref = F.kl_div(q, p, log_target=True, reduction="none").sum(-1)  # KL(p || q)
    assert torch.allclose(token_divergence(q, p, log_probs=True), ref, atol=1e-6)
    assert torch.allclose(token_divergence(p, p, log_probs=True), torch.zeros(5), atol=1e-7)


def test_logits_at_equals_full_forward(tiny):
    model, tok = tiny
    batch = batch_of(tok)
    full = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    masks = [batch.prompt_mask, batch.attention_mask.bool()]
    for got, mask in zip(logits_at(model, batch, *masks), masks):
        assert torch.allclose(got, full[mask], atol=1e-5)


def test_response_mask_marks_the_positions_that_predict_the_response(tiny):
    model, tok = tiny
    batch = batch_of(tok)
    mask = batch.response_mask
    assert torch.equal(mask[:, :-1], batch.labels[:, 1:] != -100) and not mask[:, -1].any()
    assert not (mask & ~batch.attention_mask.bool()).any()
    logits, targets = response_logits(model, batch)
    full = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    assert torch.allclose(logits, full[mask], atol=1e-5)
    assert torch.equal(targets, batch.labels[:, 1:][batch.labels[:, 1:] != -100])


# -- the divergence in chunks of positions (long prompts, large vocabularies) -------------

def _reference(student, teacher, kind, beta, reduction):
    """token_divergence as it was before chunking existed (the whole [N, V] at once)."""
    s, t = F.log_softmax(student.float(), -1), F.log_softmax(teacher.float(), -1)

    def total(x):
        return x.sum(-1) if reduction == "none" else x.sum() / x.shape[0]

    if kind == "forward":
        return total(t.exp() * (t - s))
    if kind == "reverse":
        return total(s.exp() * (s - t))
    b = torch.tensor(beta)
    m = torch.logsumexp(torch.stack([t + b.log(), s + (1 - b).log()]), 0)
    return beta * total(t.exp() * (t - m)) + (1 - beta) * total(s.exp() * (s - m))


def test_threshold_is_well_above_the_leaderboards_shapes():
    from harness.methods import nn

    # batch 8 x (max_len 192 + sdft's 64 rollout tokens) positions x SmolLM2's vocabulary
    assert 8 * (192 + 64) * 49152 * 2.5 < nn.CHUNK_ABOVE
    assert nn.CHUNK_ELEMENTS < nn.CHUNK_ABOVE


@pytest.mark.parametrize("kind", ["forward", "reverse", "jsd"])
@pytest.mark.parametrize("reduction", ["none", "batchmean"])
def test_chunked_divergence_equals_the_whole(monkeypatch, kind, reduction):
    """Below the threshold: bit for bit the computation before chunking (values and
    gradients). Above it (the threshold lowered to small tensors): equal up to rounding,
    gradients included, with the chunks really taken."""
    from harness.methods import nn

    g = torch.Generator().manual_seed(2)
    student = (torch.randn(37, 515, generator=g) * 3).requires_grad_()
    teacher = torch.randn(37, 515, generator=g) * 3
    want = _reference(student, teacher, kind, 0.3, reduction)
    want_grad = torch.autograd.grad(want.sum(), student)[0]
    monkeypatch.setattr(nn, "CHUNK_ABOVE", student.numel())  # at the threshold: whole
    got = token_divergence(student, teacher, kind, 0.3, reduction)
    assert torch.equal(got, want)
    assert torch.equal(torch.autograd.grad(got.sum(), student)[0], want_grad)

    monkeypatch.setattr(nn, "CHUNK_ABOVE", student.numel() - 1)  # above: chunks of 5 rows
    monkeypatch.setattr(nn, "CHUNK_ELEMENTS", 5 * 515 + 3)
    calls = []
    whole = nn._divergence
    monkeypatch.setattr(nn, "_divergence", lambda s, *a: calls.append(s.shape[0]) or whole(s, *a))
    got = token_divergence(student, teacher, kind, 0.3, reduction)
    assert calls == [5] * 7 + [2]
    assert got.shape == want.shape and torch.allclose(got, want, rtol=1e-5, atol=1e-6)
    grad = torch.autograd.grad(got.sum(), student)[0]
    assert torch.allclose(grad, want_grad, rtol=1e-5, atol=1e-7)
    with torch.no_grad():  # no gradient wanted: no recomputation either
        calls.clear()
        assert torch.allclose(token_divergence(student, teacher, kind, 0.3, reduction), want,
                              rtol=1e-5, atol=1e-6)
        assert len(calls) == 8


def test_chunked_divergence_gives_both_inputs_their_gradients(monkeypatch):
    from harness.methods import nn

    g = torch.Generator().manual_seed(3)
    student = (torch.randn(9, 64, generator=g) * 2).requires_grad_()
    teacher = (torch.randn(9, 64, generator=g) * 2).requires_grad_()
    want = torch.autograd.grad(_reference(student, teacher, "jsd", 0.5, "batchmean"),
                               [student, teacher])
    monkeypatch.setattr(nn, "CHUNK_ABOVE", 100)
    monkeypatch.setattr(nn, "CHUNK_ELEMENTS", 4 * 64)
    got = torch.autograd.grad(token_divergence(student, teacher, "jsd", reduction="batchmean"),
                              [student, teacher])
    for a, b in zip(got, want):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)


PEAK = """
import sys, torch
from harness.methods import nn
torch.manual_seed(0)
n, v = 1024, 32768
student = torch.randn(n, v).requires_grad_()
teacher = torch.randn(n, v)
if sys.argv[1] == "whole":
    nn.CHUNK_ABOVE = 1 << 40
else:
    nn.CHUNK_ABOVE, nn.CHUNK_ELEMENTS = 1 << 20, 1 << 22
def status(key):  # KiB, from /proc/self/status
    line = next(l for l in open("/proc/self/status") if l.startswith(key + ":"))
    return int(line.split()[1])
open("/proc/self/clear_refs", "w").write("5")  # the peak so far (imports) forgotten
base = status("VmRSS")
nn.token_divergence(student, teacher).mean().backward()
assert student.grad.shape == (n, v)
print((status("VmHWM") - base) * 1024)
"""


def test_chunks_lower_the_peak_memory():
    """Forward and backward over 1024 positions x 32768 (128 MiB per float32 [N, V]) in
    a fresh process: the peak resident memory above the inputs, whole against chunked."""
    import subprocess
    import sys

    def peak(mode):
        # every large block its own mapping, returned on free: RSS follows what is live
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "65536"}
        out = subprocess.run([sys.executable, "-c", PEAK, mode], capture_output=True,
                             text=True, check=True, env=env)
        return int(out.stdout.split()[-1])

    whole, chunked = peak("whole"), peak("chunked")
    tensor = 1024 * 32768 * 4
    assert whole > 4 * tensor  # several [N, V] float32 intermediates at once
    assert chunked < 0.5 * whole and chunked < 2.5 * tensor, (whole, chunked)
