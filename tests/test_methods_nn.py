"""harness.methods.nn: logits at positions, the batch's position masks, and the one
divergence every KL goes through, against hand computations, torch and TRL."""

import os

import pytest
import torch
import torch.nn.functional as F

from harness.methods import logits_at, response_logits, token_divergence
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
