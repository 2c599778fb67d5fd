"""What docs/writing-a-method.md promises an outside author, pinned: which model each hook
sees, what ctx.history and ctx.stream hold, how the loss is scaled under gradient
accumulation, how ctx.record lays out method_stats, what the cache accepts, and the anchor
helpers (with and without LoRA)."""

import dataclasses
import json

import pytest
import torch

from harness.cli import main
from harness.errors import HarnessError
from harness.methods import (Method, MethodError, anchor_distance, apply_lora, call_hook,
                             response_token_loss, trainable_anchor)
from harness.storage import Cache
from harness.tasks import get_task
from harness.training import train_task
from helpers import SETTINGS, batch_of as collate_batch, make_ctx, setup_method, tiny_suite
from helpers import train_stream_task

# A method that records, from inside each hook, what it sees; run by the real runner.
PROBE_METHOD = '''
from harness.methods import Method, apply_lora


class Probe(Method):
    name = "probe"

    def setup(self, ctx):
        self.base = ctx.model
        ctx.record("setup_sees_model", ctx.model is not None and not hasattr(ctx.model, "peft_config"))
        ctx.record("setup_history", list(ctx.history))
        ctx.record("stream", [[t.name, len(ex)] for t, ex in ctx.stream])
        ctx.record("again", 1)
        ctx.record("again", (2, 3))  # recorded again: replaces; a tuple is stored as a list

    def wrap_model(self, model, ctx):
        ctx.record("wrap_model_sees_unwrapped", ctx.model is model and model is self.base)
        self.wrapped = apply_lora(model, {"r": 2, "alpha": 4})
        return self.wrapped

    def train_data(self, task, examples, ctx):
        self.calls, self.steps, self.plans = 0, 0, 0
        i = len(ctx.history)
        ctx.record("history_in_train_data", list(ctx.history), task)  # a Task: its name
        ctx.record("model_is_wrapped", ctx.model is self.wrapped, task.name)
        ctx.record("stream_entry_is_this_task", ctx.stream[i][0] is task
                   and ctx.stream[i][1] == examples, task.name)
        return [] if task.name == "json-extract" else examples  # [] skips training on it

    def plan_steps(self, task, steps, ctx):
        self.plans += 1
        return steps

    def loss(self, model, batch, ctx):
        self.calls += 1
        self.loss_sees = (model is ctx.model is self.wrapped, model.training)
        return super().loss(model, batch, ctx)

    def after_step(self, model, ctx):
        self.steps += 1

    def after_task(self, task, model, ctx):
        ctx.record("history_in_after_task", list(ctx.history), task.name)
        ctx.record("loss_calls", self.calls, task.name)
        ctx.record("after_steps", self.steps, task.name)
        ctx.record("plan_steps_calls", self.plans, task.name)
        if self.calls:
            ctx.record("loss_sees_wrapped_in_train_mode", list(self.loss_sees), task.name)
'''


def test_what_each_hook_sees_through_the_runner(tmp_path, tiny_model_dir):
    plugin = tmp_path / "probe.py"
    plugin.write_text(PROBE_METHOD)
    suite = tiny_suite(tmp_path, str(tiny_model_dir), methods=["sft"], probes=["drift"],
                       train={"steps": 2, "grad_accum": 2, "lr": 1e-3, "batch_size": 2,
                              "max_len": 96})
    out = tmp_path / "out"
    assert main(["run", "--suite", str(suite), "--out", str(out), "--quiet",
                 "--methods", f"{plugin}:Probe"]) == 0
    (path,) = (out / "cells").glob("*/result.json")
    result = json.loads(path.read_text())
    stats = result["method_stats"]
    # layout: {"cell": ..., task name: ...}, in the order first recorded
    assert list(stats) == ["cell", "arith", "json-extract"]
    assert stats["cell"] == {
        "setup_sees_model": True,  # setup: ctx.model is the loaded base model, unwrapped
        "setup_history": [],
        "stream": [["arith", 8], ["json-extract", 8]],  # every task with data.n_train examples
        "again": [2, 3],
        "wrap_model_sees_unwrapped": True,  # wrap_model: ctx.model is its argument
    }
    arith, json_ = stats["arith"], stats["json-extract"]
    # ctx.history never includes the task being trained, in any hook of that task
    assert arith["history_in_train_data"] == arith["history_in_after_task"] == []
    assert json_["history_in_train_data"] == json_["history_in_after_task"] == ["arith"]
    for s in (arith, json_):
        assert s["model_is_wrapped"] and s["stream_entry_is_this_task"]
    # grad_accum 2: loss runs twice per optimiser step, after_step once, plan_steps once
    assert (arith["loss_calls"], arith["after_steps"], arith["plan_steps_calls"]) == (4, 2, 1)
    assert arith["loss_sees_wrapped_in_train_mode"] == [True, True]
    # a task skipped with [] still gets after_task (and enters ctx.history); no plan_steps
    assert (json_["loss_calls"], json_["after_steps"], json_["plan_steps_calls"]) == (0, 0, 0)
    assert [t["steps"] for t in result["training"]] == [2, 0]


class Linear(Method):
    """loss = k * sum(norm weight) on the k-th call: its gradient is k * ones."""

    name = "linear"

    def setup(self, ctx):
        self.calls, self.values, self.grads = 0, [], []

    def loss(self, model, batch, ctx):
        self.calls += 1
        loss = self.calls * model.model.norm.weight.sum()
        self.values.append(float(loss.detach()))
        return loss

    def after_step(self, model, ctx):  # the step's accumulated (not yet cleared) gradient
        self.grads.append(model.model.norm.weight.grad.clone())


@pytest.mark.parametrize("accum", [1, 3])
def test_loss_is_divided_by_grad_accum_so_a_step_sees_the_mean(tiny, accum):
    model, tok = tiny
    settings = dataclasses.replace(SETTINGS, steps=1, grad_accum=accum, max_grad_norm=1e9,
                                   lr=1e-6)
    method = Linear()
    ctx = make_ctx(model, tok, 0, settings)
    task = get_task("arith")
    ctx.stream = [(task, list(task.split(8, 2, 0).train))]
    method.setup(ctx)
    stats = train_task(model, method, ctx, task, ctx.stream[0][1], settings, 0)
    assert method.calls == accum
    mean_k = sum(range(1, accum + 1)) / accum  # 1 for accum 1, 2 for accum 3
    (grad,) = method.grads
    assert torch.allclose(grad, torch.full_like(grad, mean_k), rtol=0, atol=1e-6)  # the mean
    assert stats["losses"] == [pytest.approx(sum(method.values) / accum)]


def test_record_lays_out_method_stats_and_refuses_what_is_not_json(tiny):
    model, tok = tiny
    ctx = make_ctx(model, tok)
    task = get_task("arith")
    value = {"n": [1, 2]}
    ctx.record("figure", value, task)  # a Task is filed under its name
    value["n"].append(3)  # a later change is not recorded: the value was copied
    ctx.record("share", 0.5, "arith")
    ctx.record("total", 7)  # no task: under "cell"
    ctx.record("total", 8)  # again: replaces
    ctx.record("by_int_key", {1: "a"})  # JSON keys are strings
    assert ctx.stats == {"arith": {"figure": {"n": [1, 2]}, "share": 0.5},
                         "cell": {"total": 8, "by_int_key": {"1": "a"}}}

    class Bad(Method):
        name = "bad"

        def after_task(self, task, model, ctx):
            ctx.record("norm", torch.tensor(1.0), task.name)

    with pytest.raises(MethodError, match="after_task hook: TypeError: ctx.record\\('norm'\\)"):
        call_hook(Bad(), "after_task", task, model, ctx)


def test_cache_keys_values_and_misses(tmp_path):
    cache, calls = Cache(tmp_path), []

    def compute(value):
        def fn():
            calls.append(value)
            return value
        return fn

    first = cache.get_or_compute("mine", ["model", (1, 2), {"b": 1, "a": 2}], compute((1, {2: "x"})))
    assert first == (1, {2: "x"})  # a miss returns what compute returned, as it is
    # the same key as JSON (tuples are lists, dict order does not count): a hit, no compute
    again = cache.get_or_compute("mine", ["model", [1, 2], {"a": 2, "b": 1}], compute(None))
    assert again == [1, {"2": "x"}] and calls == [(1, {2: "x"})]  # a hit is the JSON copy
    assert len(list((tmp_path / "mine").glob("*.json"))) == 1
    # another namespace is another entry; `valid` rejecting an entry recomputes it
    assert cache.get_or_compute("other", ["model", [1, 2], {"a": 2, "b": 1}], compute(5)) == 5
    assert cache.get_or_compute("other", ["model", [1, 2], {"a": 2, "b": 1}], compute(6),
                                valid=lambda v: v == 6) == 6
    # a value that is not JSON fails after computing, and leaves nothing stored
    with pytest.raises(TypeError):
        cache.get_or_compute("bad", "k", compute(torch.zeros(2)))
    assert not list((tmp_path / "bad").glob("*.json"))


def test_anchor_holds_the_starting_trainable_weights_and_measures_the_move(tiny):
    model, _ = tiny
    model.model.embed_tokens.weight.requires_grad_(False)  # frozen: not anchored
    anchor = trainable_anchor(model)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert list(anchor) == list(trainable) and "model.embed_tokens.weight" not in anchor
    for name, p in trainable.items():
        assert torch.equal(anchor[name], p) and not anchor[name].requires_grad
        assert anchor[name].data_ptr() != p.data_ptr()  # a copy, not a view
    assert float(anchor_distance(model, anchor)) == 0.0

    w = model.model.norm.weight
    q = model.model.layers[0].self_attn.q_proj.weight
    with torch.no_grad():
        w.add_(0.5)
        q[0, :3] += torch.tensor([1.0, -2.0, 3.0])
    assert torch.equal(anchor["model.norm.weight"], torch.ones_like(w))  # the anchor stays
    distance = anchor_distance(model, anchor)
    hand = w.numel() * 0.25 + (1 + 4 + 9)
    assert float(distance) == pytest.approx(hand)
    distance.backward()  # a gradient to the weights: 2 (w - w0)
    assert torch.allclose(w.grad, torch.full_like(w, 1.0))


def test_anchor_under_lora_holds_the_adapters_only(tiny, tiny_model_dir):
    model, tok = tiny
    unwrapped_anchor = trainable_anchor(model)
    model = apply_lora(model, {"r": 2, "alpha": 4})
    anchor = trainable_anchor(model)
    assert anchor and all(".lora_A." in n or ".lora_B." in n for n in anchor)
    assert set(anchor) == {n for n, p in model.named_parameters() if p.requires_grad}
    base = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    assert float(anchor_distance(model, anchor)) == 0.0

    class SFT(Method):
        name = "sft-lora"

    ctx = make_ctx(model, tok, 0, SETTINGS, str(tiny_model_dir))
    task = get_task("arith")
    ctx.stream = [(task, list(task.split(8, 2, 0).train))]
    train_task(model, SFT(), ctx, task, ctx.stream[0][1], SETTINGS, 0)
    moved = {n: float(((p.detach() - anchor[n]) ** 2).sum())
             for n, p in model.named_parameters() if n in anchor}
    assert float(anchor_distance(model, anchor)) == pytest.approx(sum(moved.values()), rel=1e-5)
    assert sum(moved.values()) > 0
    assert all(torch.equal(p, base[n]) for n, p in model.named_parameters() if n in base)
    # an anchor taken before wrapping names weights the wrapped model does not have
    with pytest.raises(HarnessError, match="parameters the model does not have"):
        anchor_distance(model, unwrapped_anchor)


def test_anchor_distance_is_l2sps_penalty_bit_for_bit(tiny):
    model, tok = tiny
    method, ctx, model = setup_method("l2sp", model, tok)
    anchor = trainable_anchor(model)  # taken where l2sp takes its own: after wrap_model
    train_stream_task(method, ctx, model, 0)
    assert float(method.penalty()) > 0
    assert torch.equal(anchor_distance(model, anchor), method.penalty())


def test_the_guides_anchor_example_runs_with_and_without_lora(tiny):
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "writing-a-method.md").read_text()
    (code,) = [c for c in re.findall(r"```python\n(.*?)```", doc, re.S) if "class MyL2SP" in c]
    namespace = {}
    exec(code, namespace)
    model, tok = tiny
    for lora in (False, {"r": 2, "alpha": 4}):
        method = namespace["MyL2SP"](lora=lora)
        ctx = make_ctx(model, tok, 0, SETTINGS)
        wrapped = method.wrap_model(model, ctx)
        assert all((".lora_" in n) == bool(lora) for n in method.anchor)
        batch = collate_batch(tok)
        assert torch.equal(method.loss(wrapped, batch, ctx), response_token_loss(wrapped, batch))
