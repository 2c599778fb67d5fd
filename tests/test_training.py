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


# -- memory settings (opt-in): gradient checkpointing, 8-bit AdamW, bf16 weights ----------

def test_gradient_checkpointing_trains_the_same_weights_and_is_switched_off_after(tiny_model_dir):
    """Recomputing activations in backward changes where memory goes, not the arithmetic:
    on a CPU the weights after 4 steps are bit-identical; generation after training gets
    its KV cache back (checkpointing is off again)."""
    import dataclasses

    from harness.methods import decoder_blocks
    from harness.models import load_model
    from harness.training import is_checkpointing

    def weights(checkpointing, name="sft", params=None):
        model, tok, _ = load_model(str(tiny_model_dir), "cpu")
        settings = TrainSettings(steps=4, lr=3e-3, batch_size=8, max_len=96,
                                 gradient_checkpointing=checkpointing)
        method = make_method(name, params or {})
        ctx = make_ctx(model, tok, 0, settings)
        torch.manual_seed(0)  # LoRA's initial adapters
        model = method.wrap_model(model, ctx)
        ctx._bind(model)
        calls = []
        decoder_blocks(model)[0].mlp.act_fn.register_forward_hook(lambda *a: calls.append(1))
        task = get_task("arith")
        train_task(model, method, ctx, task, list(task.split(16, 2, 0).train), settings, 0)
        assert len(calls) == (8 if checkpointing else 4)  # recomputed in each backward
        assert not is_checkpointing(model)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    assert torch.equal(weights(False), weights(True))
    lora = {"r": 4, "alpha": 8}
    assert torch.equal(weights(False, "lora", lora), weights(True, "lora", lora))
    from harness.identity import train_part

    assert "gradient_checkpointing" not in train_part(TrainSettings())  # not hashed at default


def test_default_optimizer_is_the_fused_adamw_as_before():
    from harness.training import adamw, make_optimizer

    params = [torch.zeros(8, requires_grad=True)]
    settings = TrainSettings(steps=1, lr=1e-3, weight_decay=0.1)
    ours, before = make_optimizer(params, settings), adamw(params, settings)
    assert type(ours) is type(before) is torch.optim.AdamW
    assert ours.defaults == before.defaults and ours.defaults["fused"] is True


def test_8bit_adamw_without_bitsandbytes_names_the_install(monkeypatch):
    import sys

    import pytest

    from harness.errors import HarnessError
    from harness.training import check_optimizers, make_optimizer

    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import fails, installed or not
    for name in ("adamw-8bit", "paged-adamw-8bit"):
        settings = TrainSettings(steps=1, optimizer=name)
        with pytest.raises(HarnessError, match="pip install bitsandbytes") as err:
            make_optimizer([torch.zeros(8, requires_grad=True)], settings)
        assert "\n" not in str(err.value)
        with pytest.raises(HarnessError, match="pip install bitsandbytes"):
            check_optimizers([TrainSettings(steps=1), settings])
    check_optimizers([TrainSettings(steps=1)])  # fused AdamW needs nothing


def test_8bit_adamw_refuses_cpu_parameters(monkeypatch):
    import sys
    import types

    import pytest

    from harness.errors import HarnessError
    from harness.training import make_optimizer

    fake = types.SimpleNamespace(optim=types.SimpleNamespace(AdamW8bit=None, PagedAdamW8bit=None))
    monkeypatch.setitem(sys.modules, "bitsandbytes", fake)
    with pytest.raises(HarnessError, match="needs the model on a CUDA device"):
        make_optimizer([torch.zeros(8, requires_grad=True)],
                       TrainSettings(steps=1, optimizer="adamw-8bit"))


def test_memory_settings_are_read_checked_and_hashed_only_when_set(tmp_path, tiny_model_dir):
    import dataclasses
    import pickle

    import pytest

    from harness.config import load_suite
    from harness.overrides import apply_sets
    from harness.errors import HarnessError
    from harness.grid import expand, plan
    from helpers import tiny_suite

    from harness.identity import train_part

    base = load_suite(tiny_suite(tmp_path, str(tiny_model_dir)))
    assert set(train_part(base.train)) == {
        "steps", "epochs", "lr", "batch_size", "grad_accum", "warmup_ratio", "weight_decay",
        "max_grad_norm", "max_len", "mix_within_batches"}  # as before the settings existed
    train = {"steps": 3, "lr": 1e-3, "batch_size": 4, "max_len": 96,
             "gradient_checkpointing": True, "optimizer": "paged-adamw-8bit"}
    (tmp_path / "b").mkdir()
    set_ = load_suite(tiny_suite(tmp_path / "b", str(tiny_model_dir), train=train))
    assert set_.train.gradient_checkpointing and set_.train.optimizer == "paged-adamw-8bit"
    a, b = expand(base)[0], expand(set_)[0]
    assert plan(b, set_).config["train"]["optimizer"] == "paged-adamw-8bit"
    assert plan(a, base).config_hash != plan(b, set_).config_hash
    back = dataclasses.replace(set_.train, optimizer="adamw", gradient_checkpointing=False)
    assert train_part(back) == train_part(base.train) and back == base.train
    unset = dataclasses.replace(set_, methods=[dataclasses.replace(
        m, train=dataclasses.replace(m.train, optimizer="adamw", gradient_checkpointing=False))
        for m in set_.methods])  # back at their defaults: the hash of before they existed
    assert plan(expand(unset)[0], unset).config_hash == plan(a, base).config_hash
    assert pickle.loads(pickle.dumps(set_.train)) == set_.train
    sets = {m.name: m for m in apply_sets(base, ["sft.train.optimizer=adamw-8bit"]).methods}
    assert sets["sft"].train.optimizer == "adamw-8bit" and sets["lora"].train.optimizer == "adamw"
    with pytest.raises(HarnessError, match="optimizer must be one of adamw, adamw-8bit"):
        apply_sets(base, ["sft.train.optimizer=sgd"])
    with pytest.raises(HarnessError, match="gradient_checkpointing must be true or false"):
        apply_sets(base, ["sft.train.gradient_checkpointing=1"])


def test_bf16_weights_load_in_bf16_and_train(tiny_model_dir, tmp_path):
    from harness.config import load_suite
    from harness.overrides import narrow
    from harness.grid import expand, plan
    from harness.models import load_model
    from harness.precision import using
    from helpers import tiny_suite

    with using("bf16-weights"):
        model, tok, _ = load_model(str(tiny_model_dir), "cpu")
        assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
        _, stats = run(model, tok, steps=3)
    assert all(torch.isfinite(torch.tensor(stats["losses"])))
    assert {p.dtype for p in load_model(str(tiny_model_dir), "cpu")[0].parameters()} == {torch.float32}
    suite = load_suite(tiny_suite(tmp_path, str(tiny_model_dir)))
    bf16 = narrow(suite, None, None, "bf16-weights")
    cell = expand(suite)[0]
    assert plan(cell, bf16).config["precision"] == "bf16-weights"
    assert plan(cell, bf16).config_hash != plan(cell, suite).config_hash
