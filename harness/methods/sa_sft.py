"""SA-SFT: self-augmented SFT ("Talking to Yourself", arXiv 2602.20162).

Before fine-tuning, the frozen base model writes self-dialogues: it continues the chat
template up to an empty user turn (so it writes a user message), then answers that
message; with `turns` > 1 it goes on for more exchanges. Candidates are filtered (no
unfinished turn, length bounds, no duplicate first user turn; a user turn is checked before
it is answered, so no answer is generated for a rejected question) and generated in rounds
until the pool holds what the mixing ratio needs (at most `max_rounds`). The pool is mixed
into every task at `ratio` self examples per task example (at most `cap`). Optimisation and
the step budget are unchanged; no external data. No state to checkpoint: a resumed cell's
`setup` runs on the base model again and reads the same pools from the cache (or makes
them again, from the same seeds); `source: current` draws within each task.

The paper releases no code. Sampling at T 0.7, top-p 0.9 follows what is reported
elsewhere. The pool is generated once per (model, seed, generation settings, version of this
code), cached on disk and shared by every cell that needs it; `pool: per-task` draws a fresh
pool from the base model for every task of the stream instead of reusing one, and `source:
current` regenerates per task from the model as trained so far (not cached). A dialogue
that does not fit the training length (`train.max_len`) would lose its end, so it is left
out of the mix rather than cut. How many candidates each filter dropped goes into
result.json (`method_stats`).
"""

from __future__ import annotations

import math
from collections import Counter

from harness.methods import (Dialogue, HarnessError, Method, OptionalLoRA, derive, generator,
                             encode_example, finished, render_prompt, user_turn_prefix)

VERSION = 2  # of the generating code, in the cache key


def text_problem(text: str | None, min_chars: int, max_chars: int) -> str | None:
    """Why a generated turn is unusable (None: it is fine)."""
    if text is None:
        return "unfinished"
    if len(text) < min_chars:
        return "too short"
    return "too long" if len(text) > max_chars else None


def _is_pool(found) -> bool:
    """Is a cached pool well-formed? (Else it is generated again.)"""
    return (isinstance(found, dict) and isinstance(found.get("candidates"), int)
            and isinstance(found.get("dropped"), dict) and isinstance(found.get("dialogues"), list)
            and all(isinstance(d, dict) and {"prompt", "response", "history"} <= set(d)
                    for d in found["dialogues"]))


class SASFT(OptionalLoRA, Method):
    name = "sa-sft"
    version = "1"  # bump when a change moves its numbers (docs/writing-a-method.md)
    tune = {"ratio": [0.25, 0.5, 1.0, 2.0]}  # `harness tune`'s grid
    description = "mix self-dialogues written by the base model into each task (SA-SFT)"
    defaults = {
        "ratio": 1.0,  # self-generated examples per task example
        "cap": None,  # at most this many per task
        "turns": 1,  # exchanges per dialogue (loss on the last answer)
        "temperature": 0.7,
        "top_p": 0.9,
        "user_tokens": 64,  # budget for a self-written user turn; unfinished ones are dropped
        "answer_tokens": 256,  # budget for an answer; unfinished ones are dropped
        "min_chars": 8,
        "max_chars": 1200,
        "oversample": 2.0,  # candidates per missing dialogue in each round
        "max_rounds": 4,  # generation rounds before settling for a smaller pool
        "batch_size": 64,  # generation batch (large: on CPU a token step costs ~ the same)
        "source": "base",  # base: from the frozen base; current: per task, from the model now
        "pool": "shared",  # shared: one base pool for the stream; per-task: a fresh one per task
        "lora": False,  # True or a dict of LoRA settings to train adapters only
    }
    # what changes a pool, in its cache key (the batch size too: it decides which random
    # numbers each sampled row draws)
    GENERATION = ("turns", "temperature", "top_p", "user_tokens", "answer_tokens", "min_chars",
                  "max_chars", "oversample", "max_rounds", "batch_size")

    def __init__(self, **params):
        super().__init__(**params)
        for key, allowed in (("source", ("base", "current")), ("pool", ("shared", "per-task"))):
            if self.params[key] not in allowed:
                raise HarnessError(f"{key} must be {' or '.join(allowed)}, not "
                                   f"{self.params[key]!r}", f"set {key}: {allowed[0]}")

    def setup(self, ctx):
        largest = max((len(ex) for _, ex in ctx.stream), default=0)
        self.needed = self._count(largest)
        self.pools = {}  # task name -> pool drawn from the base model
        if self.params["source"] != "base" or not self.needed:
            return
        if self.params["pool"] == "shared":
            pool = self._base_pool(ctx, ctx.seed)
            self.pools = {task.name: pool for task, _ in ctx.stream}
        else:  # task 0 draws the shared pool's seed, so it reuses that pool's cache entry;
            # later tasks draw seeds of their own that no other cell's shared pool uses
            self.pools = {task.name: self._base_pool(
                ctx, derive(ctx.seed, "sa-sft pool", i),
                task.name) for i, (task, _) in enumerate(ctx.stream)}

    def _base_pool(self, ctx, seed: int, task: str | None = None) -> list[Dialogue]:
        """Self-dialogues of the base model for `seed`, cached across cells and runs."""
        key = [ctx.model_id, seed, self.needed, {k: self.params[k] for k in self.GENERATION},
               VERSION]
        found = ctx.cache.get_or_compute("sa_sft", key, lambda: self.dialogues(ctx, seed),
                                         valid=_is_pool)
        pool = self._unpack(found, ctx, task)
        ctx.log(f"  sa-sft: {len(pool)} self-dialogues from the base model "
                f"({found['candidates']} candidates; dropped: {self._dropped_text(found)})")
        return pool

    def _count(self, n_examples: int) -> int:
        n = round(self.params["ratio"] * n_examples)
        return n if self.params["cap"] is None else min(n, self.params["cap"])

    def dialogues(self, ctx, seed: int) -> dict:
        """Generate and filter self-dialogues with ctx's current model until `needed` pass:
        {"dialogues": [{prompt, response, history}], "candidates": n, "dropped": {why: n}}."""
        p = self.params
        kept, seen, dropped, candidates = [], set(), Counter(), 0
        for round_ in range(p["max_rounds"]):
            missing = self.needed - len(kept)
            if missing <= 0:
                break
            convs: list[list[tuple[str, str]]] = [[] for _ in range(math.ceil(missing * p["oversample"]))]
            candidates += len(convs)
            for turn in range(p["turns"]):
                users = self._sample(ctx, [user_turn_prefix(ctx.tokenizer, c) for c in convs],
                                     derive(seed, "sa-sft turn", round_, turn, 0),
                                     p["user_tokens"])
                asked = []
                for conv, user in zip(convs, users):
                    why = text_problem(user, p["min_chars"], p["max_chars"])
                    norm = " ".join((user or "").lower().split())
                    if why is None and turn == 0 and norm in seen:
                        why = "duplicate"
                    if why:
                        dropped[f"user {why}"] += 1
                        continue
                    if turn == 0:
                        seen.add(norm)
                    asked.append((conv, user))
                answers = self._sample(ctx, [render_prompt(ctx.tokenizer, u, c) for c, u in asked],
                                       derive(seed, "sa-sft turn", round_, turn, 1),
                                       p["answer_tokens"])
                convs = []
                for (conv, user), answer in zip(asked, answers):
                    why = text_problem(answer, p["min_chars"], p["max_chars"])
                    if why:
                        dropped[f"answer {why}"] += 1
                    else:
                        convs.append(conv + [(user, answer)])
            kept += [{"prompt": c[-1][0], "response": c[-1][1], "history": c[:-1]} for c in convs]
        return {"dialogues": kept, "candidates": candidates, "dropped": dict(dropped)}

    def _sample(self, ctx, texts: list[str], seed: int, budget: int) -> list[str | None]:
        """Sampled continuations of raw chat texts; None where the model did not stop."""
        if not texts:
            return []
        p = self.params
        ids = ctx.generate(texts, budget, ids=True, seed=seed, batch_size=p["batch_size"],
                           do_sample=True, temperature=p["temperature"], top_p=p["top_p"],
                           top_k=0, chat=False)
        return [ctx.tokenizer.decode(x, skip_special_tokens=True).strip()
                if finished(x, ctx.tokenizer) else None for x in ids]

    def _unpack(self, found: dict, ctx, task: str | None = None) -> list[Dialogue]:
        ctx.record("self_candidates", found["candidates"], task=task)
        for why, n in found["dropped"].items():
            ctx.record(f"dropped {why}", n, task=task)
        return [Dialogue(d["prompt"], d["response"], "", history=tuple(map(tuple, d["history"])))
                for d in found["dialogues"]]

    @staticmethod
    def _dropped_text(found: dict) -> str:
        return ", ".join(f"{n} {why}" for why, n in sorted(found["dropped"].items())) or "none"

    def train_data(self, task, examples, ctx):
        n = self._count(len(examples))
        pool = self.pools.get(task.name, [])
        if self.params["source"] == "current":
            pool = self._unpack(self.dialogues(ctx, derive(ctx.seed, "sa-sft current", len(ctx.history))), ctx, task.name)
        max_len = ctx.train_settings.max_len  # a cut dialogue would lose its end: leave it out
        fits = [d for d in pool if len(encode_example(ctx.tokenizer, d, max_len + 1)[0]) <= max_len]
        ctx.record("dropped longer than max_len", len(pool) - len(fits), task=task.name)
        pool = fits
        if len(pool) < n:
            ctx.log(f"  WARNING sa-sft: only {len(pool)} self-dialogues passed the filters, "
                    f"{n} wanted for {task.name}; mixing all of them (raise max_rounds or "
                    "answer_tokens)")
        rng = generator(ctx.seed, "sa-sft mix", task.name)
        mixed = rng.sample(pool, min(n, len(pool)))
        ctx.record("self_examples", len(mixed), task=task.name)
        ctx.record("self_pool", len(pool), task=task.name)
        return list(examples) + mixed
