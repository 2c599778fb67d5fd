"""Tokenisation with response-only labels, length-grouped batching, batched generation."""

import torch

from harness.data import collate, encode_pair, length_grouped_batches, render_prompt
from harness.generation import generate
from harness.tasks import Example, get_task


def test_labels_cover_exactly_the_response_and_end_of_turn(tiny):
    _, tok = tiny
    ids, n_prompt = encode_pair(tok, "What is 2 + 2?", "#### 4", max_len=256)
    assert tok.decode(ids[:n_prompt]) == render_prompt(tok, "What is 2 + 2?")
    assert tok.decode(ids[n_prompt:]) == "#### 4<|im_end|>"
    batch = collate(tok, [get_task("arith").split(4, 1, 0).train[0]], 256)
    start = int((batch.labels[0] != -100).nonzero()[0])
    assert tok.decode(batch.input_ids[0, start:]).endswith("<|im_end|>")
    assert tok.decode(batch.input_ids[0, :start]).endswith("<|im_start|>assistant\n")
    assert batch.prompt_mask[0, :start].all() and not batch.prompt_mask[0, start:].any()


def test_truncation_respects_max_len(tiny):
    _, tok = tiny
    ids, n_prompt = encode_pair(tok, "word " * 100, "answer", max_len=20)
    assert len(ids) == 20 and n_prompt == 20


def test_length_grouping_covers_every_example_once_with_little_padding(tiny):
    _, tok = tiny
    examples = list(get_task("arith").split(48, 1, 0).train) + list(
        get_task("json-extract").split(48, 1, 0).train)
    batches = length_grouped_batches(tok, examples, batch_size=8, max_len=256, seed=0)
    seen = [e for b in batches for e in b.examples]
    assert sorted(map(id, seen)) == sorted(map(id, examples))
    padded = sum(b.input_ids.numel() for b in batches)
    real = sum(int(b.attention_mask.sum()) for b in batches)
    random_order = [collate(tok, examples[i::12], 256) for i in range(12)]  # unsorted batches
    padded_random = sum(b.input_ids.numel() for b in random_order)
    assert padded - real < padded_random - real  # grouping wastes less on padding
    assert (padded - real) / padded < 0.1


def test_batching_is_deterministic_per_seed(tiny):
    _, tok = tiny
    examples = list(get_task("arith").split(32, 1, 0).train)
    a = length_grouped_batches(tok, examples, 8, 256, seed=1)
    b = length_grouped_batches(tok, examples, 8, 256, seed=1)
    c = length_grouped_batches(tok, examples, 8, 256, seed=2)
    assert all(torch.equal(x.input_ids, y.input_ids) for x, y in zip(a, b))
    assert not all(x.input_ids.shape == y.input_ids.shape and torch.equal(x.input_ids, y.input_ids)
                   for x, y in zip(a, c))


def test_batched_generation_matches_one_by_one(tiny):
    model, tok = tiny
    prompts = ["Hi", "Tell me a story about a very long river and a boat", "Why?"]
    batched = generate(model, tok, prompts, max_new_tokens=8, batch_size=3)
    single = [generate(model, tok, [p], max_new_tokens=8)[0] for p in prompts]
    assert batched == single
    assert all(0 < len(x) <= 8 for x in batched)


def test_mixed_strata_share_every_batch_in_proportion(tiny):
    _, tok = tiny
    own = list(get_task("arith").split(48, 2, 0).train)
    added = [Example("Tell me about the sea " + "and waves " * (i % 7), "It is wide. " * 10, "")
             for i in range(24)]  # longer than the task's answers
    examples = own + added
    strata = [True] * len(own) + [False] * len(added)
    batches = length_grouped_batches(tok, examples, 6, 512, seed=1, strata=strata)
    seen = [e for b in batches for e in b.examples]
    assert sorted(map(id, seen)) == sorted(map(id, examples))  # each example exactly once
    for b in batches:  # 48 own + 24 added over 12 batches: 4 + 2 in each
        assert sum(e in added for e in b.examples) == 2 and len(b.examples) == 6
    unmixed = length_grouped_batches(tok, examples, 6, 512, seed=1)
    assert any(all(e in added for e in b.examples) for b in unmixed)  # what mixing prevents


def test_one_stratum_batches_as_without_strata(tiny):
    _, tok = tiny
    examples = list(get_task("arith").split(40, 2, 0).train)
    plain = length_grouped_batches(tok, examples, 8, 96, seed=3)
    same = length_grouped_batches(tok, examples, 8, 96, seed=3, strata=[True] * len(examples))
    assert [b.examples for b in plain] == [b.examples for b in same]
