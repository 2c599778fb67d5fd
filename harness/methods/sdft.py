"""On-policy SDFT ("Self-Distillation Enables Continual Learning", arXiv 2601.19897).

Per micro-batch the student (the model being trained, shown the query only) samples one
completion per prompt (T 1, top-p 1, batched with a KV cache). The teacher is the same
network with EMA weights, shown the query plus the gold demonstration in the paper's
template; both score the student's completion, and the loss is a per-token divergence
over the full vocabulary (forward KL(teacher || student), the released code's default;
`kl: reverse` is the paper's derivation, `kl: jsd` with `beta` the generalised JSD),
skipping the first `skip_tokens` completion tokens, averaged over a sequence's tokens and
then over sequences.

The EMA (phi <- rate*theta + (1-rate)*phi after every optimiser step) covers the trainable
parameters only, and the teacher forward swaps those tensors into the live network and
back (no copy of the frozen weights: under LoRA the teacher costs the adapters' size).
Sampling uses the same weights and numerics as training, so the code's importance-weight
correction for vLLM sampling is 1 and is left out.
"""

from __future__ import annotations

import contextlib
import time

import torch

from harness.data import pad_batch, render_prompt
from harness.methods.base import Method, apply_lora, response_logits, token_divergence

TEMPLATE = ("{query}\n\nThis is an example for a response to the question:\n{demonstration}\n\n"
            "Now answer with a response of your own, including the thinking process.")


def completion_positions(batch) -> torch.Tensor:
    """For each labelled token (row-major, as response_logits orders them), its index
    within its own completion: 0, 1, 2, ..."""
    labelled = batch.labels[:, 1:] != -100
    index = labelled.long().cumsum(1) - 1
    return index[labelled]


def sequence_mean(values: torch.Tensor, rows: torch.Tensor, n_rows: int) -> torch.Tensor:
    """Mean over each row's values, then over the rows that have any."""
    sums = torch.zeros(n_rows, dtype=values.dtype, device=values.device).index_add(0, rows, values)
    counts = torch.zeros(n_rows, dtype=values.dtype, device=values.device).index_add(
        0, rows, torch.ones_like(values))
    has = counts > 0
    return (sums[has] / counts[has]).mean()


class SDFT(Method):
    name = "sdft"
    description = "on-policy self-distillation from an EMA teacher shown the demonstration"
    defaults = {
        "ema_rate": 0.01,
        "kl": "forward",  # forward: KL(teacher||student); reverse; jsd
        "beta": 0.5,  # jsd only
        "skip_tokens": 3,  # first completion tokens left out of the loss
        "temperature": 1.0,
        "top_p": 1.0,
        "max_new_tokens": None,  # None: twice the longest gold response in the batch (+8)
        "template": TEMPLATE,
        "lora": False,  # True or a dict of LoRA settings to train adapters only
    }

    def __init__(self, **params):
        super().__init__(**params)
        if self.params["kl"] not in {"forward", "reverse", "jsd"}:
            raise ValueError(f"kl must be forward, reverse or jsd, not {self.params['kl']!r}")
        self.ema: dict[str, torch.Tensor] | None = None
        self.rollout_s = 0.0  # sampling time in the current task (most of a step's cost)

    def wrap_model(self, model, ctx):
        return apply_lora(model, self.params["lora"]) if self.params["lora"] else model

    def _trainable(self, model):
        return [(n, p) for n, p in model.named_parameters() if p.requires_grad]

    def train_data(self, task, examples, ctx):
        if self.ema is None:  # the teacher starts as the model before the first task
            self.ema = {n: p.detach().clone() for n, p in self._trainable(ctx.model)}
        return list(examples)

    @torch.no_grad()
    def after_step(self, model, ctx):
        for n, p in self._trainable(model):
            self.ema[n].lerp_(p.detach(), self.params["ema_rate"])

    @contextlib.contextmanager
    def teacher(self, model):
        """The live network with the EMA weights swapped in (tensor pointers, no copies)."""
        params = self._trainable(model)
        for n, p in params:
            p.data, self.ema[n] = self.ema[n], p.data
        try:
            with torch.no_grad():
                yield model
        finally:
            for n, p in params:
                p.data, self.ema[n] = self.ema[n], p.data

    def rollouts(self, model, batch, ctx):
        """(student batch, teacher batch): the same sampled completions after each prompt."""
        tok, p = ctx.tokenizer, self.params
        budget = p["max_new_tokens"] or 8 + 2 * max(
            len(tok(e.response, add_special_tokens=False)["input_ids"]) for e in batch.examples)
        completions = ctx.generate([e.prompt for e in batch.examples], budget, ids=True,
                                   do_sample=True, temperature=p["temperature"], top_p=p["top_p"],
                                   top_k=0, batch_size=len(batch.examples))

        def encode(prompts):
            heads = [tok(render_prompt(tok, q), add_special_tokens=False)["input_ids"] for q in prompts]
            return pad_batch(tok, [(h + c, len(h)) for h, c in zip(heads, completions)],
                             batch.examples).to(ctx.device)

        student = encode([e.prompt for e in batch.examples])
        teacher = encode([p["template"].format(query=e.prompt, demonstration=e.response)
                          for e in batch.examples])
        return student, teacher

    def after_task(self, task, model, ctx):
        ctx.record("rollout_s", round(self.rollout_s, 2), task=task.name)
        self.rollout_s = 0.0

    def loss(self, model, batch, ctx):
        start = time.perf_counter()
        student_batch, teacher_batch = self.rollouts(model, batch, ctx)
        self.rollout_s += time.perf_counter() - start
        with self.teacher(model) as t:
            teacher_logits, _ = response_logits(t, teacher_batch)
        student_logits, _ = response_logits(model, student_batch)
        per_token = token_divergence(student_logits, teacher_logits, self.params["kl"],
                                     self.params["beta"])
        keep = completion_positions(student_batch) >= self.params["skip_tokens"]
        if not keep.any():  # every completion shorter than the skipped prefix
            return student_logits.sum() * 0.0
        rows = (student_batch.labels[:, 1:] != -100).nonzero()[:, 0]
        return sequence_mean(per_token[keep], rows[keep], student_batch.input_ids.shape[0])
