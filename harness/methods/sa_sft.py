"""SA-SFT: self-augmented SFT ("Talking to Yourself", arXiv 2602.20162).

Before fine-tuning, the frozen base model writes self-dialogues: it continues the chat
template up to an empty user turn (so it writes a user message), then answers that
message; with `turns` > 1 it goes on for more exchanges. The dialogues are filtered (no
empty or truncated turns, length bounds, no duplicate user turns) and mixed into every
task at `ratio` self examples per task example (at most `cap`). Optimisation and the step
budget are unchanged; no external data.

The paper releases no code. Sampling at T 0.7, top-p 0.9 follows what is reported
elsewhere. The pool is generated once per (model, seed, generation settings), cached on
disk and shared by every cell that needs it; `source: current` instead regenerates per
task from the model as trained so far (not cached).
"""

from __future__ import annotations

import math
import random

from harness.data import user_turn_prefix
from harness.methods.base import Method, apply_lora
from harness.tasks import Dialogue


def keep_dialogue(turns: list[tuple[str, str]], min_chars: int, max_chars: int) -> bool:
    """Every turn non-empty and finished, and every text within the length bounds."""
    return all(u is not None and a is not None and min_chars <= len(u) <= max_chars
               and min_chars <= len(a) <= max_chars for u, a in turns)


class SASFT(Method):
    name = "sa-sft"
    description = "mix self-dialogues written by the base model into each task (SA-SFT)"
    defaults = {
        "ratio": 1.0,  # self-generated examples per task example
        "cap": None,  # at most this many per task
        "turns": 1,  # exchanges per dialogue (loss on the last answer)
        "temperature": 0.7,
        "top_p": 0.9,
        "max_new_tokens": 160,  # per turn; a turn that does not finish is dropped
        "min_chars": 8,
        "max_chars": 1200,
        "oversample": 3.0,  # candidates generated per example needed (filters drop some)
        "batch_size": 64,  # generation batch (large: on CPU a token step costs ~ the same)
        "source": "base",  # base: once from the frozen base; current: per task, from the model now
        "lora": False,  # True or a dict of LoRA settings to train adapters only
    }

    def setup(self, ctx):
        largest = max((len(ex) for _, ex in ctx.stream), default=0)
        self.needed = self._count(largest)
        self.pool = []
        if self.params["source"] == "base" and self.needed:
            key = [ctx.model_id, ctx.seed, self.needed,
                   {k: self.params[k] for k in ("turns", "temperature", "top_p", "max_new_tokens",
                                                "min_chars", "max_chars", "oversample")}]
            pool = ctx.cache.get_or_compute("sa_sft", key, lambda: self.dialogues(ctx, ctx.seed))
            self.pool = [Dialogue(d["prompt"], d["response"], "", history=tuple(map(tuple, d["history"])))
                         for d in pool]
            ctx.log(f"  sa-sft: {len(self.pool)} self-dialogues from the base model")

    def wrap_model(self, model, ctx):
        return apply_lora(model, self.params["lora"]) if self.params["lora"] else model

    def _count(self, n_examples: int) -> int:
        n = round(self.params["ratio"] * n_examples)
        return n if self.params["cap"] is None else min(n, self.params["cap"])

    def dialogues(self, ctx, seed: int) -> list[dict]:
        """Generate, filter and deduplicate self-dialogues with ctx's current model."""
        p = self.params
        want = math.ceil(self.needed * p["oversample"])
        sampling = {"do_sample": True, "temperature": p["temperature"], "top_p": p["top_p"],
                    "top_k": 0, "chat": False}
        convs: list[list[tuple]] = [[] for _ in range(want)]
        for turn in range(p["turns"]):
            live = [c for c in convs if all(u is not None and a is not None for u, a in c)]
            heads = [user_turn_prefix(ctx.tokenizer, c) for c in live]
            users = self._finished(ctx, heads, seed * 1000 + 2 * turn, sampling)
            asks = [(c, u) for c, u in zip(live, users) if u]
            answers = self._finished(ctx, [u for _, u in asks], seed * 1000 + 2 * turn + 1,
                                     {**sampling, "chat": True}, history=[c for c, _ in asks])
            for c, u in zip(live, users):
                c.append((u, None))
            for (c, _), a in zip(asks, answers):
                c[-1] = (c[-1][0], a)
        kept, seen = [], set()
        for c in convs:
            if len(c) == p["turns"] and keep_dialogue(c, p["min_chars"], p["max_chars"]):
                norm = " ".join(c[0][0].lower().split())
                if norm not in seen:
                    seen.add(norm)
                    kept.append({"prompt": c[-1][0], "response": c[-1][1], "history": c[:-1]})
        return kept

    def _finished(self, ctx, prompts, seed, sampling, history=None) -> list[str | None]:
        """Sampled continuations; None where the model did not stop within the budget."""
        if history and any(history):  # answer after earlier turns: render them raw
            from harness.data import render_prompt

            prompts = [render_prompt(ctx.tokenizer, u, h) for u, h in zip(prompts, history)]
            sampling = {**sampling, "chat": False}
        if not prompts:
            return []
        ids = ctx.generate(prompts, self.params["max_new_tokens"], ids=True, seed=seed,
                           batch_size=self.params["batch_size"], **sampling)
        eos = {ctx.tokenizer.eos_token_id, ctx.tokenizer.pad_token_id}
        return [ctx.tokenizer.decode(x, skip_special_tokens=True).strip()
                if x and x[-1] in eos else None for x in ids]

    def train_data(self, task, examples, ctx):
        n = self._count(len(examples))
        pool = self.pool
        if self.params["source"] == "current":
            pool = [Dialogue(d["prompt"], d["response"], "", history=tuple(map(tuple, d["history"])))
                    for d in self.dialogues(ctx, ctx.seed * 100 + len(ctx.history))]
        if len(pool) < n:
            ctx.log(f"  WARNING sa-sft: only {len(pool)} self-dialogues passed the filters, "
                    f"{n} wanted for {task.name}; mixing all of them")
        rng = random.Random(f"sa-sft:{ctx.seed}:{task.name}")
        mixed = rng.sample(pool, min(n, len(pool)))
        ctx.record("self_examples", len(mixed), task=task.name)
        ctx.record("self_pool", len(pool), task=task.name)
        return list(examples) + mixed
