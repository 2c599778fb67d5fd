"""Turning (prompt, response) pairs into token batches (generation: harness/generation.py).

Training batches are length-grouped so that almost no compute is spent on padding: the
examples are shuffled with the seed, cut into chunks of `group` batches, sorted by length
inside each chunk, batched, and the batch order shuffled again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from harness.seeding import generator
from harness.tasks import Plain


def _messages(prompt: str, history=(), system: str = "") -> list[dict]:
    turns = [m for user, reply in history
             for m in ({"role": "user", "content": user}, {"role": "assistant", "content": reply})]
    head = [{"role": "system", "content": system}] if system else []
    return head + turns + [{"role": "user", "content": prompt}]


def render_prompt(tokenizer, prompt: str, history=(), system: str = "") -> str:
    """The text a chat model sees before its answer (after a `system` message and earlier
    `history` turns of (user, assistant) pairs); a plain fallback without a template."""
    if tokenizer.chat_template:
        return tokenizer.apply_chat_template(
            _messages(prompt, history, system), tokenize=False, add_generation_prompt=True
        )
    return "".join(f"{u}\n{a}\n" for u, a in history) + f"{prompt}\n"


def user_turn_prefix(tokenizer, history=()) -> str:
    """The chat text up to the start of an empty user turn (after `history`): what a model
    continues to write a user message of its own (Magpie-style self-dialogue)."""
    if not tokenizer.chat_template:
        return "".join(f"{u}\n{a}\n" for u, a in history)
    marker = "\x00USER\x00"
    text = tokenizer.apply_chat_template(_messages(marker, history), tokenize=False)
    return text[: text.index(marker)]


def encode_pair(tokenizer, prompt: str, response: str, max_len: int,
                history=(), system: str = "", chat: bool = True) -> tuple[list[int], int]:
    """Token ids of prompt+response (+ end of turn) and the number of prompt tokens.

    The loss is taken on the (last) response's tokens only, including the end-of-turn token
    so the model learns to stop. Too long sequences are cut at `max_len` (response side).
    `chat=False`: the prompt is already in its task's own template: raw text, then the
    response and end-of-sequence (a `Plain` example).
    """
    if not chat:
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        r_ids = tokenizer(response + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
        ids = (p_ids + r_ids)[:max_len]
        return ids, min(len(p_ids), len(ids))
    head = render_prompt(tokenizer, prompt, history, system)
    if tokenizer.chat_template:
        full = tokenizer.apply_chat_template(
            _messages(prompt, history, system) + [{"role": "assistant", "content": response}],
            tokenize=False,
        )
        tail = full[len(head):] if full.startswith(head) else response + tokenizer.eos_token
        tail = tail.rstrip("\n")  # the template's newline after end-of-turn carries nothing
    else:
        tail = response + tokenizer.eos_token
    p_ids = tokenizer(head, add_special_tokens=False)["input_ids"]
    r_ids = tokenizer(tail, add_special_tokens=False)["input_ids"]
    ids = (p_ids + r_ids)[:max_len]
    return ids, min(len(p_ids), len(ids))


@dataclass
class Batch:
    input_ids: torch.Tensor  # [B, L], right-padded
    attention_mask: torch.Tensor  # [B, L]
    labels: torch.Tensor  # [B, L], -100 on prompt and padding
    examples: list  # the source examples, for methods that need more than tokens

    def to(self, device) -> "Batch":
        return Batch(self.input_ids.to(device), self.attention_mask.to(device),
                     self.labels.to(device), self.examples)

    @property
    def prompt_mask(self) -> torch.Tensor:
        """[B, L] True at real (non-padding) prompt positions."""
        return (self.labels == -100) & self.attention_mask.bool()

    @property
    def response_mask(self) -> torch.Tensor:
        """[B, L] True at the positions whose next token is a response token: where the
        logits that the SFT loss scores sit (position i predicts token i+1)."""
        return torch.nn.functional.pad(self.labels[:, 1:] != -100, (0, 1), value=False)


def collate(tokenizer, examples: list, max_len: int) -> Batch:
    encoded = [encode_example(tokenizer, e, max_len) for e in examples]
    return pad_batch(tokenizer, encoded, examples)


def prompt_text(tokenizer, example, prompt: str | None = None) -> str:
    """The text before an example's response, as training encodes it (`encode_example`):
    a `Plain` example's own template, else the chat template around its system message,
    earlier turns and user turn. `prompt` replaces the user turn (a teacher's or rewriter's
    prompt about the example, kept after the same system message)."""
    prompt = example.prompt if prompt is None else prompt
    if isinstance(example, Plain):
        return prompt
    return render_prompt(tokenizer, prompt, getattr(example, "history", ()),
                         getattr(example, "system", ""))


def encode_example(tokenizer, example, max_len: int) -> tuple[list[int], int]:
    return encode_pair(tokenizer, example.prompt, example.response, max_len,
                       getattr(example, "history", ()), getattr(example, "system", ""),
                       chat=not isinstance(example, Plain))


def pad_batch(tokenizer, encoded: list[tuple[list[int], int]], examples: list) -> "Batch":
    """Right-padded batch of (token ids, number of prompt tokens); labels on the rest."""
    width = max(len(ids) for ids, _ in encoded)
    pad = tokenizer.pad_token_id
    ids = torch.full((len(encoded), width), pad, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    labels = torch.full((len(encoded), width), -100, dtype=torch.long)
    for row, (seq, n_prompt) in enumerate(encoded):
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
        labels[row, n_prompt : len(seq)] = torch.tensor(seq[n_prompt:], dtype=torch.long)
    return Batch(ids, mask, labels, list(examples))


def completion_batch(tokenizer, prompts: list[str], completions: list[list[int]],
                     examples: list, rendered: bool = False) -> Batch:
    """A batch of `prompts` (user turns put into the chat template; with `rendered`, texts
    already as the model sees them, e.g. from `prompt_text`), each followed by its
    completion's token ids (labels on the completions): how on-policy methods score
    sampled rollouts."""
    heads = [tokenizer(p if rendered else render_prompt(tokenizer, p),
                       add_special_tokens=False)["input_ids"] for p in prompts]
    return pad_batch(tokenizer, [(h + c, len(h)) for h, c in zip(heads, completions)], examples)


def length_grouped_batches(
    tokenizer, examples: list, batch_size: int, max_len: int, seed: int, group: int = 16,
    strata: list | None = None,
) -> list[Batch]:
    """One epoch of batches; deterministic for a given seed.

    With `strata` (a label per example, e.g. the task's own data vs data a method mixed
    in), every batch carries each stratum in proportion to its size, and lengths are
    grouped within each stratum: otherwise length grouping would put long self-generated
    answers and short task answers into separate batches.
    """
    rng = generator(seed, "batches")
    lengths = [len(encode_example(tokenizer, e, max_len)[0]) for e in examples]
    if strata is not None and len(set(strata)) > 1:
        groups = _mixed_batches(strata, lengths, batch_size, group, rng)
    else:
        order = list(range(len(examples)))
        rng.shuffle(order)
        step = batch_size * group
        groups = []
        for chunk in (order[i : i + step] for i in range(0, len(order), step)):
            chunk.sort(key=lambda i: lengths[i])
            groups += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(groups)
    return [collate(tokenizer, [examples[j] for j in g], max_len) for g in groups]


def _mixed_batches(strata: list, lengths: list[int], batch_size: int, group: int,
                   rng: random.Random) -> list[list[int]]:
    """Index lists of batches holding every stratum in proportion, length-grouped within
    each stratum over runs of `group` batches."""
    n_batches = -(-len(strata) // batch_size)
    batches: list[list[int]] = [[] for _ in range(n_batches)]
    for label in sorted(set(strata), key=str):
        members = [i for i, s in enumerate(strata) if s == label]
        rng.shuffle(members)
        # deal the stratum over the batches as evenly as possible, then sort by length
        # within each run of `group` batches and deal again with the same counts
        counts = [len(members) // n_batches + (b < len(members) % n_batches)
                  for b in range(n_batches)]
        start = 0
        for run in range(0, n_batches, group):
            size = sum(counts[run : run + group])
            pick = sorted(members[start : start + size], key=lambda i: lengths[i])
            start += size
            for b in range(run, min(run + group, n_batches)):
                batches[b] += pick[: counts[b]]
                pick = pick[counts[b]:]
    return batches
