"""Batched generation with a KV cache, for the probes' base answers, the methods' rollouts
and self-generated data, and the teacher check; and whether a generation ended by itself."""

from __future__ import annotations

import time

import torch

from harness.data import render_prompt
from harness.precision import autocast
from harness.seeding import seeded


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int,
    batch_size: int = 16,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int | None = None,
    seed: int | None = None,
    chat: bool = True,
) -> list[list[int]]:
    """Batched generation with a KV cache; returns the new token ids per prompt (up to and
    including the end-of-sequence token), in the order of `prompts`.

    With `chat` each prompt is a user turn put into the chat template; without, the
    prompts are raw text to continue. Prompts are sorted by length so that each batch
    carries little left padding.
    """
    device = next(model.parameters()).device
    texts = [render_prompt(tokenizer, p) for p in prompts] if chat else list(prompts)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: list[list[int]] = [[] for _ in texts]
    if seed is not None:  # seeded sampling leaves the caller's random state as it was
        with seeded(seed, "sampling"):
            return generate(model, tokenizer, texts, max_new_tokens, batch_size, do_sample,
                            temperature, top_p, top_k, None, chat=False)
    eos = stop_ids(tokenizer)
    started = time.perf_counter()
    was_training = model.training
    model.eval()
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        enc = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True,
                        padding_side="left", add_special_tokens=False).to(device)
        sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p,
                    "top_k": top_k or 0} if do_sample \
            else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        with autocast(device):
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, use_cache=True,
                                 pad_token_id=tokenizer.pad_token_id, **sampling)
        for row, i in enumerate(idx):
            new = gen[row, enc["input_ids"].shape[1]:].tolist()
            cut = next((k + 1 for k, t in enumerate(new) if t in eos), len(new))
            out[i] = new[:cut]
    model.train(was_training)
    _SPENT[0] += time.perf_counter() - started
    return out


_SPENT = [0.0]  # seconds spent in generate() by this process


def generation_seconds() -> float:
    """Seconds this process has spent generating so far (a cell reports the difference:
    generation is part of its setup, training and evaluation, shown on its own)."""
    return _SPENT[0]


def stop_ids(tokenizer) -> set[int]:
    """Token ids that end a generation (end of sequence / turn, padding)."""
    return {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}


def finished(ids: list[int], tokenizer) -> bool:
    """Did a generation from `generate` stop by itself (rather than hit its budget)?"""
    return bool(ids) and ids[-1] in stop_ids(tokenizer)
