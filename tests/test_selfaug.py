"""SelfAug: the KL to the base model at prompt positions, by hand and in training."""

import copy

import pytest
import torch
import torch.nn.functional as F

from harness.methods import response_logits
from helpers import batch_of, setup_method, train_stream_task


@pytest.mark.parametrize("lora", [False, True])
def test_selfaug_kl_zero_before_training_then_positive(tiny, tiny_model_dir, lora):
    model, tok = tiny
    method, ctx, model = setup_method("selfaug", model, tok, {"lora": lora})
    ctx.model_path = str(tiny_model_dir)  # where a full fine-tune reloads the base from
    batch = batch_of(tok)
    ce, kl = method.terms(model, batch, ctx)
    assert kl.item() == pytest.approx(0.0, abs=1e-6)
    assert ce.item() == pytest.approx(F.cross_entropy(*response_logits(model, batch)).item(), rel=1e-5)
    train_stream_task(method, ctx, model, 0)
    ce, kl = method.terms(model, batch, ctx)
    assert kl.item() > 1e-4
    assert method.loss(model, batch, ctx).item() == pytest.approx(ce.item() + 0.5 * kl.item(), rel=1e-5)


def test_selfaug_kl_is_base_to_tuned_at_prompt_positions(tiny, tiny_model_dir):
    model, tok = tiny
    base = copy.deepcopy(model)
    method, ctx, model = setup_method("selfaug", model, tok, {"alpha": 1.0})
    ctx.model_path = str(tiny_model_dir)
    train_stream_task(method, ctx, model, 0)
    batch = batch_of(tok)
    _, kl = method.terms(model, batch, ctx)
    mask = batch.prompt_mask
    with torch.no_grad():
        tuned = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[mask]
        ref = base(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[mask]
    by_hand = F.kl_div(F.log_softmax(tuned, -1), F.log_softmax(ref, -1), log_target=True,
                       reduction="batchmean")  # KL(base || tuned), mean over prompt positions
    assert kl.item() == pytest.approx(by_hand.item(), rel=1e-4)
    method.params["direction"] = "tuned-base"
    _, other = method.terms(model, batch, ctx)
    by_hand = F.kl_div(F.log_softmax(ref, -1), F.log_softmax(tuned, -1), log_target=True,
                       reduction="batchmean")
    assert other.item() == pytest.approx(by_hand.item(), rel=1e-4)


def test_selfaug_pulls_towards_base(tiny_model_dir):
    """More alpha, less drift from the base at the prompt positions after the same training."""
    from harness.models import load_model

    kls = []
    for alpha in (0.0, 5.0):
        model, tok, _ = load_model(str(tiny_model_dir), "cpu")
        method, ctx, model = setup_method("selfaug", model, tok, {"alpha": alpha})
        ctx.model_path = str(tiny_model_dir)
        train_stream_task(method, ctx, model, 0)
        kls.append(method.terms(model, batch_of(tok, task="json-extract"), ctx)[1].item())
    assert kls[1] < kls[0]
