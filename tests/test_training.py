"""The training loop on the tiny model: it learns, it is deterministic, LoRA freezes the base."""

import torch

from harness.config import TrainSettings
from harness.methods import make_method
from harness.tasks import get_task
from harness.training import total_steps, train_task
from helpers import make_ctx


def run(model, tok, method_name="sft", steps=30, lr=3e-3, seed=0, params=None):
    settings = TrainSettings(steps=steps, lr=lr, batch_size=8, max_len=96, warmup_ratio=0.1)
    method = make_method(method_name, params or {})
    ctx = make_ctx(model, tok, seed, settings)
    model = method.wrap_model(model, ctx)
    ctx._bind(model)
    task = get_task("arith")
    stats = train_task(model, method, ctx, task, list(task.split(32, 4, 0).train), settings, 0)
    return model, stats


def test_training_lowers_the_loss(tiny):
    model, tok = tiny
    _, stats = run(model, tok)
    assert stats["steps"] == 30 and len(stats["losses"]) == 30
    first, last = sum(stats["losses"][:3]) / 3, sum(stats["losses"][-3:]) / 3
    assert last < 0.6 * first


def test_same_seed_same_weights_other_seed_other_weights(tiny_model_dir):
    from harness.models import load_model

    def weights(seed):
        model, tok, _ = load_model(str(tiny_model_dir), "cpu")
        model, _ = run(model, tok, steps=4, seed=seed)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    a, b, c = weights(0), weights(0), weights(1)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_lora_trains_adapters_only(tiny):
    model, tok = tiny
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model, stats = run(model, tok, "lora", steps=5, lr=1e-2, params={"r": 4, "alpha": 8})
    after = model.get_base_model().state_dict()
    base_keys = [k for k in after if "lora_" not in k]
    lora_keys = [k for k in after if "lora_B" in k]
    assert lora_keys and base_keys
    for k in base_keys:
        assert torch.equal(after[k], before[k.replace(".base_layer", "")]), k
    assert any(after[k].abs().sum() > 0 for k in lora_keys)  # B starts at zero, then moves


def test_step_count_from_epochs():
    s = TrainSettings(epochs=2, batch_size=8, grad_accum=2)
    assert total_steps(s, 33) == 5  # 5 batches per epoch x 2 epochs / 2 accumulation
    assert total_steps(TrainSettings(steps=7), 1000) == 7


def test_gradient_accumulation_matches_a_big_batch(tiny_model_dir):
    """2 x 4 accumulated == 1 x 8 when the micro-batches hold the same examples."""
    from harness.data import collate
    from harness.methods import response_token_loss
    from harness.models import load_model

    examples = list(get_task("arith").split(8, 1, 0).train)
    grads = []
    for chunks in ([examples], [examples[:4], examples[4:]]):
        model, tok, _ = load_model(str(tiny_model_dir), "cpu")
        model.train()
        for chunk in chunks:
            (response_token_loss(model, collate(tok, chunk, 96)) / len(chunks)).backward()
        grads.append(model.model.embed_tokens.weight.grad.clone())
    # per-micro-batch means weight tokens slightly differently; the direction agrees
    cos = torch.nn.functional.cosine_similarity(grads[0].flatten(), grads[1].flatten(), dim=0)
    assert cos > 0.98


def test_batches_cut_to_their_prompt_are_skipped_and_counted(tiny):
    """A response cut away by max_len leaves no labelled token: CE would be NaN."""
    model, tok = tiny
    task = get_task("arith")
    examples = list(task.split(8, 2, 0).train)
    long_prompt = examples[0].__class__("word " * 200, examples[0].response, examples[0].target)
    data = [long_prompt] * 4 + examples[:4]
    settings = TrainSettings(steps=4, lr=1e-3, batch_size=4, max_len=96, warmup_ratio=0.0,
                             mix_within_batches=False)
    ctx = make_ctx(model, tok, 0, settings)
    stats = train_task(model, make_method("sft", {}), ctx, task, data, settings, 0)
    assert stats["skipped_batches"] >= 1 and stats["truncated_examples"] == 4
    assert all(torch.isfinite(torch.tensor(stats["losses"])))


def test_all_sequences_cut_to_their_prompt_is_a_clear_error(tiny):
    import pytest

    from harness.errors import HarnessError

    model, tok = tiny
    task = get_task("arith")
    settings = TrainSettings(steps=2, lr=1e-3, batch_size=4, max_len=8, warmup_ratio=0.0)
    ctx = make_ctx(model, tok, 0, settings)
    with pytest.raises(HarnessError, match="raise train.max_len"):
        train_task(model, make_method("sft", {}), ctx, task, list(task.split(8, 2, 0).train),
                   settings, 0)


def test_adamw_is_fused_and_agrees_with_the_loop_implementation():
    import torch

    from harness.config import TrainSettings
    from harness.training import adamw

    torch.manual_seed(0)
    start = [torch.randn(64, 32), torch.randn(32)]
    grads = [torch.randn_like(t) for t in start]
    settings = TrainSettings(steps=1, lr=1e-2, weight_decay=0.1)
    ours = [t.clone().requires_grad_() for t in start]
    loop = [t.clone().requires_grad_() for t in start]
    opt = adamw(ours, settings)
    assert opt.defaults["fused"] is True
    ref = torch.optim.AdamW(loop, lr=1e-2, weight_decay=0.1, foreach=False)
    for _ in range(3):
        for p, q, g in zip(ours, loop, grads):
            p.grad, q.grad = g.clone(), g.clone()
        opt.step()
        ref.step()
    for p, q, s in zip(ours, loop, start):
        assert torch.allclose(p, q, atol=1e-6) and not torch.equal(p, s)
