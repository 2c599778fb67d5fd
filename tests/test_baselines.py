"""Each baseline's distinctive mechanism, on the tiny model."""

import copy

import pytest
import torch
import torch.nn.functional as F

from baselines.dft import dft_loss
from harness.data import collate
from harness.methods import make_method, response_logits, response_token_loss
from harness.tasks import get_task
from harness.training import train_task
from helpers import SETTINGS, setup_method, train_stream_task


def test_freeze_leaves_frozen_parameters_bit_identical(tiny):
    model, tok = tiny
    before = copy.deepcopy(model.state_dict())
    method, ctx, model = setup_method("freeze", model, tok, {"top_k": 1})
    train_stream_task(method, ctx, model, 0)
    after = model.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed and all(k.startswith("model.layers.1.") for k in changed)
    assert torch.equal(after["model.embed_tokens.weight"], before["model.embed_tokens.weight"])


def test_freeze_rejects_impossible_k(tiny):
    from harness.errors import HarnessError

    model, tok = tiny
    with pytest.raises(HarnessError, match="top_k must be in 1..2"):
        setup_method("freeze", model, tok, {"top_k": 5})


def test_l2sp_penalty_is_zero_at_start_and_grows(tiny):
    model, tok = tiny
    method, ctx, model = setup_method("l2sp", model, tok)
    assert float(method.penalty()) == 0.0
    batch = collate(tok, ctx.stream[0][1][:4], 96)
    assert float(method.loss(model, batch, ctx)) == pytest.approx(float(response_token_loss(model, batch)))
    train_stream_task(method, ctx, model, 0)
    first = float(method.penalty())
    train_stream_task(method, ctx, model, 1)
    assert 0 < first < float(method.penalty())
    expected = sum(((p - p0) ** 2).sum() for p, p0 in method.anchor)
    assert float(method.penalty()) == pytest.approx(float(expected))


def test_ewc_fisher_is_nonnegative_and_weights_the_penalty(tiny):
    model, tok = tiny
    method, ctx, model = setup_method("ewc", model, tok, {"fisher_examples": 4})
    assert float(method.penalty()) == 0.0  # no Fisher before the first task
    train_stream_task(method, ctx, model, 0)
    assert all((f >= 0).all() for f in method.fisher) and any(f.sum() > 0 for f in method.fisher)
    assert float(method.penalty()) == 0.0  # at w* exactly
    with torch.no_grad():
        for p in method.params_ref:
            p.add_(0.01)
    penalty = float(method.penalty())
    assert penalty == pytest.approx(float(sum(f.sum() for f in method.fisher)) * 1e-4, rel=1e-3)
    for f in method.fisher:
        f.zero_()
    assert float(method.penalty()) == 0.0  # the penalty is the Fisher's, nothing else


def test_ewc_online_fisher_accumulates(tiny):
    model, tok = tiny
    method, ctx, model = setup_method("ewc", model, tok, {"fisher_examples": 4, "gamma": 0.5})
    train_stream_task(method, ctx, model, 0)
    first = [f.clone() for f in method.fisher]
    train_stream_task(method, ctx, model, 1)
    assert all((b >= 0.5 * a - 1e-12).all() for a, b in zip(first, method.fisher))


def test_replay_buffer_holds_earlier_tasks(tiny):
    model, tok = tiny
    method, ctx, model = setup_method("replay", model, tok, {"buffer_per_task": 3})
    first = train_stream_task(method, ctx, model, 0)
    assert len(first) == 8  # nothing to replay yet
    assert len(method.buffer) == 3 and all(e in ctx.stream[0][1] for e in method.buffer)
    second = train_stream_task(method, ctx, model, 1)
    assert len(second) == 8 + 3 and second[8:] == method.buffer[:3]
    assert len(method.buffer) == 6


def test_lwf_kl_is_zero_before_the_first_step_and_positive_after(tiny):
    model, tok = tiny
    method, ctx, model = setup_method("lwf", model, tok)
    task, examples = ctx.stream[0]
    method.train_data(task, examples, ctx)
    batch = collate(tok, examples[:4], 96)
    ce, kl = method.distillation(model, batch)
    assert float(kl) == pytest.approx(0.0, abs=1e-6)
    train_task(model, method, ctx, task, examples, SETTINGS, 0)
    _, kl = method.distillation(model, batch)
    assert float(kl) > 1e-4


def test_dft_weights_tokens_by_their_probability():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    targets = torch.tensor([0, 2])
    p = F.softmax(logits, -1)[torch.arange(2), targets]
    expected = -(p * p.log()).mean()  # hand computation
    assert float(dft_loss(logits, targets)) == pytest.approx(float(expected))
    logits.requires_grad_(True)
    dft_loss(logits, targets).backward()
    # the weight is detached: the gradient is p * d(-log p), not d(-p log p)
    ref = logits.detach().clone().requires_grad_(True)
    weights = F.softmax(ref, -1)[torch.arange(2), targets].detach()
    (-(weights * F.log_softmax(ref, -1)[torch.arange(2), targets]).mean()).backward()
    assert torch.allclose(logits.grad, ref.grad)


def test_dft_uses_response_positions(tiny):
    model, tok = tiny
    method, ctx, model = setup_method("dft", model, tok)
    batch = collate(tok, ctx.stream[0][1][:4], 96)
    logits, targets = response_logits(model, batch)
    assert targets.shape[0] == int((batch.labels[:, 1:] != -100).sum())
    assert float(method.loss(model, batch, ctx)) == pytest.approx(float(dft_loss(logits, targets)))


def test_mix_external_adds_general_data_at_the_ratio(tiny):
    model, tok = tiny
    method, ctx, model = setup_method("mix-external", model, tok, {"ratio": 0.5})
    task, examples = ctx.stream[0]
    data = method.train_data(task, examples, ctx)
    assert data[:8] == examples and len(data) == 12
    assert all(e not in examples for e in data[8:])
    assert method.train_data(task, examples, ctx) == data  # deterministic per seed


def test_multitask_sees_all_tasks_at_once(tiny):
    model, tok = tiny
    method, ctx, model = setup_method("multitask", model, tok)
    assert not method.continual
    first = method.train_data(ctx.stream[0][0], ctx.stream[0][1], ctx)
    assert {e.prompt for e in first} == {e.prompt for _, t in ctx.stream for e in t}
    assert method.plan_steps(ctx.stream[0][0], 4, ctx) == 8
    ctx.history.append(ctx.stream[0][0].name)
    assert method.train_data(ctx.stream[1][0], ctx.stream[1][1], ctx) == []


def perturb(model, scale=0.02):
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))


def new_response_tokens(batch, vocab):
    """The batch with every response token replaced and the prompt as it was."""
    other = copy.copy(batch)
    other.input_ids = torch.where(batch.labels != -100, (batch.input_ids + 7) % vocab, batch.input_ids)
    return other


def hand_kl(student, teacher, mask, t):
    """T^2 * KL(teacher_T || student_T) at the True positions of full-forward logits."""
    return F.kl_div(F.log_softmax(student[mask] / t, -1), F.log_softmax(teacher[mask] / t, -1),
                    log_target=True, reduction="batchmean") * t * t


def test_lwf_prompt_kl_is_taken_on_the_inputs_only(tiny):
    model, tok = tiny
    method, ctx, model = setup_method("lwf", model, tok)
    assert method.params["positions"] == "prompt"  # the original's: distil on the inputs
    task, examples = ctx.stream[0]
    method.train_data(task, examples, ctx)
    batch = collate(tok, examples[:4], 96)
    _, kl = method.distillation(model, batch)
    assert float(kl) == pytest.approx(0.0, abs=1e-6)
    perturb(model)
    calls = []
    hook = model.model.register_forward_hook(lambda *_: calls.append(1))
    ce, kl = method.distillation(model, batch)
    hook.remove()
    assert len(calls) == 1  # student's prompt and response logits from one forward pass
    assert float(kl) > 1e-4
    assert float(ce) == pytest.approx(float(response_token_loss(model, batch)), rel=1e-5)
    # the positions: inside the prompt only, disjoint from the CE's
    p = batch.prompt_mask
    mask = F.pad(p[:, :-1] & p[:, 1:], (0, 1), value=False)
    response = F.pad(batch.labels[:, 1:] != -100, (0, 1), value=False)
    assert mask.any() and not (mask & response).any()
    inputs = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
    with torch.no_grad():
        student, teacher = model(**inputs).logits, method.teacher(**inputs).logits
    assert float(kl) == pytest.approx(float(hand_kl(student, teacher, mask, 2.0)), rel=1e-4)
    # the KL does not see the response: new response tokens leave it unchanged
    other = new_response_tokens(batch, len(tok))
    assert float(method.distillation(model, other)[1]) == pytest.approx(float(kl), rel=1e-5)
    with pytest.raises(ValueError, match="positions"):
        make_method("lwf", {"positions": "all"})


def test_lwf_response_mode_is_the_previous_behaviour(tiny):
    model, tok = tiny
    method, ctx, model = setup_method("lwf", model, tok, {"positions": "response", "temperature": 1.5})
    task, examples = ctx.stream[0]
    method.train_data(task, examples, ctx)
    batch = collate(tok, examples[:4], 96)
    assert float(method.distillation(model, batch)[1]) == pytest.approx(0.0, abs=1e-6)
    perturb(model)
    ce, kl = method.distillation(model, batch)
    student, targets = response_logits(model, batch)  # the old computation
    teacher, _ = response_logits(method.teacher, batch)
    old = F.kl_div(F.log_softmax(student / 1.5, -1), F.log_softmax(teacher / 1.5, -1),
                   log_target=True, reduction="batchmean") * 1.5 * 1.5
    assert float(kl) == pytest.approx(float(old), rel=1e-5) and float(kl) > 1e-4
    assert float(ce) == pytest.approx(float(F.cross_entropy(student, targets)), rel=1e-5)
    other = new_response_tokens(batch, len(tok))  # unlike `prompt`, this KL sees them
    assert float(method.distillation(model, other)[1]) != pytest.approx(float(kl), rel=1e-3)


def ewc_fisher_on_two(model, tok, mode):
    method, ctx, model = setup_method("ewc", model, tok, {"fisher_examples": 2, "fisher": mode})
    task, examples = ctx.stream[0]
    method.train_data(task, examples[:2], ctx)
    method.after_task(task, model, ctx)
    return method, ctx, model, examples[:2]


def test_ewc_empirical_fisher_is_the_mean_of_squared_per_example_gradients(tiny):
    model, tok = tiny
    method, ctx, model, pair = ewc_fisher_on_two(model, tok, "empirical")
    assert ctx.stats["arith"] == {"fisher": "empirical", "fisher_examples": 2}
    params = [p for p in model.parameters() if p.requires_grad]
    grads = [torch.autograd.grad(response_token_loss(model, collate(tok, [e], 96)), params)
             for e in pair]
    expected = [(a ** 2 + b ** 2) / 2 for a, b in zip(*grads)]
    assert all(torch.allclose(f, e, rtol=1e-4, atol=1e-12) for f, e in zip(method.fisher, expected))
    joint = torch.autograd.grad(response_token_loss(model, collate(tok, pair, 96)), params)
    assert not all(torch.allclose(f, g ** 2) for f, g in zip(method.fisher, joint))  # per example


def test_ewc_true_fisher_samples_the_models_own_labels(tiny):
    model, tok = tiny
    empirical, *_ = ewc_fisher_on_two(model, tok, "empirical")
    true, ctx, model, _ = ewc_fisher_on_two(model, tok, "true")
    assert ctx.stats["arith"]["fisher"] == "true"
    assert [f.shape for f in true.fisher] == [f.shape for f in empirical.fisher]
    assert all((f >= 0).all() for f in true.fisher) and any(f.sum() > 0 for f in true.fisher)
    assert not all(torch.allclose(a, b) for a, b in zip(true.fisher, empirical.fisher))
    again, *_ = ewc_fisher_on_two(model, tok, "true")  # seeded: the same samples
    assert all(torch.equal(a, b) for a, b in zip(true.fisher, again.fisher))
