"""SA-SFT: dialogue rendering and filters, self-generated pools, mixing, caps and caching."""

import pytest
import torch

from harness.data import encode_example, render_prompt, user_turn_prefix
from harness.methods.sa_sft import text_problem
from harness.tasks import Dialogue
from helpers import SETTINGS, setup_method


def test_user_turn_prefix_ends_where_the_user_writes(tiny):
    _, tok = tiny
    assert user_turn_prefix(tok) == "<|im_start|>user\n"
    after = user_turn_prefix(tok, [("hi", "hello")])
    assert after == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nhello<|im_end|>\n<|im_start|>user\n"


def test_dialogue_history_is_context_not_loss(tiny):
    _, tok = tiny
    d = Dialogue("second?", "two", "", history=(("first?", "one"),))
    ids, n_prompt = encode_example(tok, d, 200)
    assert tok.decode(ids[:n_prompt]) == render_prompt(tok, "second?", d.history)
    assert "first?" in tok.decode(ids[:n_prompt]) and tok.decode(ids[n_prompt:]).startswith("two")


def test_dialogue_filters():
    assert text_problem("What is a cat?", 8, 100) is None
    assert text_problem(None, 8, 100) == "unfinished"  # hit the token budget
    assert text_problem("", 8, 100) == "too short"  # empty
    assert text_problem("Hi", 8, 100) == "too short"
    assert text_problem("x" * 101, 8, 100) == "too long"


@pytest.fixture
def chatty(tiny):
    """The tiny model with a bias towards end-of-turn, so that its samples finish."""
    model, tok = tiny
    head = model.get_output_embeddings()
    biased = torch.nn.Linear(head.in_features, head.out_features, bias=True)
    with torch.no_grad():
        biased.weight.copy_(head.weight)
        biased.bias.zero_()
        biased.bias[tok.eos_token_id] = 3.0
    model.set_output_embeddings(biased)
    return model, tok


def sa_sft_pool(tiny, seed, **params):
    model, tok = tiny
    params = {"min_chars": 1, "user_tokens": 32, "answer_tokens": 32, **params}
    method, ctx, _ = setup_method("sa-sft", model, tok, params)
    ctx.seed = seed
    return method.dialogues(ctx, seed)


def test_sa_sft_generation_is_identical_for_the_same_seed(chatty):
    a, b, c = sa_sft_pool(chatty, 0), sa_sft_pool(chatty, 0), sa_sft_pool(chatty, 1)
    assert len(a["dialogues"]) >= 4 and a == b and a != c
    assert len({d["prompt"] for d in a["dialogues"]}) == len(a["dialogues"])  # deduplicated


def test_sa_sft_counts_every_candidate_and_tops_up_in_rounds(chatty):
    one = sa_sft_pool(chatty, 0, max_rounds=1, oversample=1.0)
    more = sa_sft_pool(chatty, 0, max_rounds=6, oversample=1.0)
    for found in (one, more):  # every candidate is either kept or dropped for a reason
        assert found["candidates"] == len(found["dialogues"]) + sum(found["dropped"].values())
    assert one["candidates"] == 8  # the stream's largest task has 8 examples, ratio 1
    assert one["dropped"]  # the tiny model's samples do not all pass
    # later rounds ask only for what is missing and extend the first round's pool
    assert more["candidates"] > one["candidates"]
    assert more["dialogues"][:len(one["dialogues"])] == one["dialogues"]
    assert len(one["dialogues"]) < len(more["dialogues"]) <= 8
    strict = sa_sft_pool(chatty, 0, max_rounds=1, oversample=1.0, answer_tokens=1)
    assert strict["dialogues"] == [] and strict["dropped"].get("answer unfinished", 0) > 0


def test_sa_sft_multi_turn_dialogues(chatty):
    pool = sa_sft_pool(chatty, 0, turns=2, oversample=6)["dialogues"]
    assert pool and all(len(d["history"]) == 1 for d in pool)


def test_sa_sft_mixes_at_ratio_and_cap_and_caches(chatty, monkeypatch):
    model, tok = chatty
    lenient = {"min_chars": 1, "user_tokens": 32, "answer_tokens": 32, "oversample": 3, "ratio": 0.5}
    method, ctx, model = setup_method("sa-sft", model, tok, lenient)
    task, examples = ctx.stream[0]
    data = method.train_data(task, examples, ctx)
    assert data[:len(examples)] == examples
    assert len(data) - len(examples) == min(4, len(method.pools[task.name]))
    assert all(isinstance(d, Dialogue) for d in data[len(examples):])
    assert ctx.stats[task.name]["self_examples"] == len(data) - len(examples)
    capped, ctx, _ = setup_method("sa-sft", model, tok, {**lenient, "cap": 1})
    assert len(capped.train_data(task, examples, ctx)) == len(examples) + 1
    # the pool is cached: a second cell with the same model and seed generates nothing
    monkeypatch.setattr(type(method), "dialogues", lambda *a: pytest.fail("regenerated"))
    again, _, _ = setup_method("sa-sft", model, tok, lenient)
    assert again.pools == method.pools


def test_sa_sft_leaves_out_dialogues_longer_than_max_len(chatty):
    model, tok = chatty
    lenient = {"min_chars": 1, "user_tokens": 32, "answer_tokens": 32, "oversample": 3}
    method, ctx, model = setup_method("sa-sft", model, tok, lenient)
    task, examples = ctx.stream[0]
    long = Dialogue("question " * 40, "answer " * 80, "")
    method.pools[task.name] = [long] + method.pools[task.name]
    data = method.train_data(task, examples, ctx)
    assert long not in data
    assert ctx.stats[task.name]["dropped longer than max_len"] >= 1
    for d in data:  # nothing in the mix is cut: each keeps its end-of-turn token
        ids, _ = encode_example(tok, d, 10_000)
        assert len(ids) <= SETTINGS.max_len


def test_sa_sft_fresh_pool_per_task(chatty):
    model, tok = chatty
    lenient = {"min_chars": 1, "user_tokens": 32, "answer_tokens": 32, "oversample": 3}
    shared, _, _ = setup_method("sa-sft", model, tok, lenient)
    fresh, ctx, _ = setup_method("sa-sft", model, tok, {**lenient, "pool": "per-task"})
    assert shared.pools["arith"] is shared.pools["json-extract"]
    assert fresh.pools["arith"] == shared.pools["arith"]  # task 0 reuses the shared pool
    assert fresh.pools["json-extract"] != fresh.pools["arith"]
    assert ctx.stats["json-extract"]["self_candidates"] > 0


def test_sa_sft_per_task_pools_do_not_reuse_other_seeds_pools(chatty, monkeypatch):
    from harness.methods.sa_sft import SASFT

    seeds = []
    monkeypatch.setattr(SASFT, "_base_pool", lambda self, ctx, seed, task=None: seeds.append(seed) or [])
    model, tok = chatty
    setup_method("sa-sft", model, tok, {"pool": "per-task"}, stream=("arith", "json-extract", "facts"))
    assert seeds[0] == 0 and len(set(seeds)) == 3
    assert not set(seeds[1:]) & set(range(100))  # not the shared pool of any small seed
