"""Tokenisation with response-only labels, length-grouped batching, batched generation."""

import torch

from harness.data import collate, encode_pair, generate, length_grouped_batches, render_prompt
from harness.tasks import get_task


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
