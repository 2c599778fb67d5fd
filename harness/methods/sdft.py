"""On-policy SDFT ("Self-Distillation Enables Continual Learning", arXiv 2601.19897).

Per micro-batch the student (the model being trained, shown the query only) samples one
completion per prompt (T 1, top-p 1, batched with a KV cache). The teacher is the same
network with EMA weights, shown the query plus the gold demonstration in the paper's
template; both score the student's completion, and the loss is a per-token divergence
over the full vocabulary (forward KL(teacher || student), the released code's default;
`kl: reverse` is the paper's derivation, `kl: jsd` with `beta` the generalised JSD),
skipping the first `skip_tokens` completion tokens, averaged over a sequence's tokens and
then over sequences. `topk: K` takes the divergence over the student's K most likely tokens
only (TRL's top-k logit distillation; `topk_tail` adds the rest of the mass as one more
category), and `rollouts: K` samples K completions per prompt, all distilled (TRL:
`num_generations`; TRL counts completions in its batch size, we count prompts).
`sample_steps: N` samples the rollouts of N optimiser steps in one call at the first step's
weights (TRL's `steps_per_generation`; fewer, larger calls): the later steps' rollouts are
then slightly off-policy, and their per-token divergence is weighted by the importance ratio
pi_now(token) / pi_sampled(token), capped at `is_clip` (the correction the released code
and TRL apply when sampler and learner differ; pi_sampled comes from a forward pass at
sampling time). The default, 1, is exactly on-policy and needs no correction.

Both distributions are taken at the sampling temperature (logits / T), as in the released
code. Rollouts get the released code's budget (1024 new tokens); one that hits the budget
is a prefix without an end token: it is distilled token by token as it stands (no end token
is added) and counted (`truncated_share` in method_stats, with the mean divergence per
completion position, `kl_by_position`).

The EMA (phi <- rate*theta + (1-rate)*phi after every optimiser step) covers the trainable
parameters only, and the teacher forward swaps those tensors into the live network and
back (no copy of the frozen weights: under LoRA the teacher costs the adapters' size).
`teacher_device: cpu` keeps the EMA in CPU memory instead (full fine-tuning of a 7B model:
the GPU holds no second copy of its weights): the teacher forward copies it in over the
student's weights and back, and the update copies the student's weights out, three copies
of the trainable weights over PCIe a step (about 45 GB for 7.6B bf16 parameters: ~2-4 s at
12-25 GB/s, against tens of seconds of rollouts) plus the update on the CPU. A resumed
cell gets the EMA back through state_dict / load_state_dict.
Under autocast the swap clears autocast's weight-cast cache on the way in and out: the
cache is keyed by the parameter, so without that the "teacher" would reuse the student's
cached low-precision weights. Sampling uses the same weights and numerics as training, so
the code's importance-weight correction for vLLM sampling is 1 and is left out.
"""

from __future__ import annotations

import contextlib
import time

import torch

from harness.methods import (HarnessError, Method, OptionalLoRA, Plain, completion_batch,
                             finished, prompt_text, response_logits, token_divergence,
                             topk_log_probs)

TEACHER_TEMPLATE = ("{query}\n\nThis is an example for a response to the question:\n{demonstration}\n\n"
            "Now answer with a response of your own, including the thinking process.")

# Completion positions grouped for kl_by_position: 0, 1, 2, 3-7, 8-15, 16-63, 64+.
POSITION_BUCKETS = ["0", "1", "2", "3-7", "8-15", "16-63", "64+"]
BUCKET_STARTS = torch.tensor([0, 1, 2, 3, 8, 16, 64])


def completion_positions(batch) -> torch.Tensor:
    """For each labelled token (row-major, as response_logits orders them), its index
    within its own completion: 0, 1, 2, ..."""
    predicts = batch.response_mask
    return (predicts.long().cumsum(1) - 1)[predicts]


def sequence_mean(values: torch.Tensor, rows: torch.Tensor, n_rows: int) -> torch.Tensor:
    """Mean over each row's values, then over the rows that have any."""
    sums = torch.zeros(n_rows, dtype=values.dtype, device=values.device).index_add(0, rows, values)
    counts = torch.zeros(n_rows, dtype=values.dtype, device=values.device).index_add(
        0, rows, torch.ones_like(values))
    has = counts > 0
    return (sums[has] / counts[has]).mean()


class SDFT(OptionalLoRA, Method):
    name = "sdft"
    version = "1"  # bump when a change moves its numbers (docs/writing-a-method.md)
    tune = {"ema_rate": [0.005, 0.01, 0.02, 0.05]}  # `harness tune`'s grid
    description = "on-policy self-distillation from an EMA teacher shown the demonstration"
    defaults = {
        "ema_rate": 0.01,
        "kl": "forward",  # forward: KL(teacher||student); reverse; jsd
        "beta": 0.5,  # jsd only
        "skip_tokens": 3,  # first completion tokens left out of the loss (released code: 3)
        "temperature": 1.0,
        "top_p": 1.0,
        "max_new_tokens": 1024,  # rollout budget (released code: max_completion_length 1024)
        "topk": 0,  # 0: the full vocabulary (released code); K: the student's top K (TRL: 100)
        "topk_tail": False,  # with topk: the rest of the mass as one category (TRL: off)
        "rollouts": 1,  # completions sampled per prompt (released code: 1; TRL: 8)
        "sample_steps": 1,  # optimiser steps sampled in one call (TRL: steps_per_generation)
        "is_clip": 2.0,  # cap of the importance ratio when sample_steps > 1 (TRL: 2.0)
        "template": TEACHER_TEMPLATE,
        "teacher_device": "model",  # where the EMA weights live: "model" or "cpu" (below)
        "lora": False,  # True or a dict of LoRA settings to train adapters only
    }

    def __init__(self, **params):
        super().__init__(**params)
        p = self.params
        if p["kl"] not in {"forward", "reverse", "jsd"}:
            raise HarnessError(f"kl must be forward, reverse or jsd, not {p['kl']!r}",
                               "set kl: forward (the released code's), reverse or jsd")
        if p["teacher_device"] not in {"model", "cpu"}:
            raise HarnessError(f"teacher_device must be model or cpu, not {p['teacher_device']!r}",
                               "set teacher_device: cpu to keep the EMA teacher off the GPU")
        for key in ("max_new_tokens", "temperature", "is_clip"):
            if not isinstance(p[key], (int, float)) or p[key] <= 0:
                raise HarnessError(f"{key} must be a positive number, not {p[key]!r}",
                                   f"set {key} to a positive number")
        for key, least in (("topk", 0), ("rollouts", 1), ("sample_steps", 1)):
            if isinstance(p[key], bool) or not isinstance(p[key], int) or p[key] < least:
                raise HarnessError(f"{key} must be a whole number >= {least}, not {p[key]!r}",
                                   f"set {key} to a whole number (TRL: topk 100, rollouts 8)")
        self.ema: dict[str, torch.Tensor] | None = None
        self.stash: dict[str, torch.Tensor] | None = None  # offloaded: the student's weights
        self.pending: dict = {}  # the step's rollouts not yet scored, by micro-batch
        self._reset_task_stats()

    def _reset_task_stats(self):
        self.rollout_s = 0.0  # sampling time in the current task (most of a step's cost)
        self.rollouts_n, self.truncated_n = 0, 0
        self.ratio_sum, self.ratio_n, self.clipped_n = 0.0, 0, 0  # sample_steps > 1
        self.kl_sum = torch.zeros(len(POSITION_BUCKETS), dtype=torch.float64)
        self.kl_count = torch.zeros(len(POSITION_BUCKETS), dtype=torch.float64)

    def _trainable(self, model):
        return [(n, p) for n, p in model.named_parameters() if p.requires_grad]

    def train_data(self, task, examples, ctx):
        if any(isinstance(e, Plain) for e in examples):
            raise HarnessError(f"sdft: task '{task.name}' writes its prompts in its own "
                               "template, not as a chat turn, so the teacher's template has no "
                               "place in them", "run sdft on chat-format tasks (the "
                               "sdft-onpolicy-2026 suite's), or sdft-rewrite on this one")
        if self.ema is None:  # the teacher starts as the model before the first task
            self._place_teacher(ctx.model, {n: p.detach() for n, p in self._trainable(ctx.model)})
        return list(examples)

    def _place_teacher(self, model, weights: dict) -> None:
        """Copy `weights` (by parameter name) into the EMA teacher: beside the trainable
        parameters, or in CPU memory with its stash with `teacher_device: cpu`."""
        params = self._trainable(model)
        offload = self.params["teacher_device"] == "cpu" and any(
            p.device.type != "cpu" for _, p in params)
        self.ema = {n: self._host(weights[n]) if offload else weights[n].to(p.device, copy=True)
                    for n, p in params}
        self.stash = {n: self._host(p.detach()) for n, p in params} if offload else None

    def state_dict(self, ctx):
        """The EMA teacher (None before the first task); the stash and the per-task
        figures are rebuilt within each task."""
        return {"ema": self.ema}

    def load_state_dict(self, state, ctx):
        if state["ema"] is not None:
            self._place_teacher(ctx.model, state["ema"])

    @staticmethod
    def _host(t: torch.Tensor) -> torch.Tensor:
        """A CPU copy, in pinned memory where CUDA is there (faster copies both ways)."""
        out = t.to("cpu", copy=True)
        return out.pin_memory() if torch.cuda.is_available() else out

    @torch.no_grad()
    def after_step(self, model, ctx):
        for n, p in self._trainable(model):
            if self.stash is None:
                self.ema[n].lerp_(p.detach(), self.params["ema_rate"])
            else:  # offloaded: through the stash buffer, no new host tensor a step
                self.ema[n].lerp_(self.stash[n].copy_(p.detach()), self.params["ema_rate"])

    @contextlib.contextmanager
    def teacher(self, model):
        """The live network with the EMA weights swapped in (tensor pointers, no copies);
        with the EMA offloaded to the CPU, copied in over the student's weights, which wait
        in the stash. Autocast caches its low-precision copy of each weight by parameter,
        which neither a `.data` swap nor an in-place copy invalidates: the cache is cleared
        on the way in and on the way out."""
        params = self._trainable(model)
        with torch.no_grad():
            for n, p in params:
                if self.stash is None:
                    p.data, self.ema[n] = self.ema[n], p.data
                else:
                    self.stash[n].copy_(p.data)
                    p.data.copy_(self.ema[n])
        torch.clear_autocast_cache()
        try:
            with torch.no_grad():
                yield model
        finally:
            with torch.no_grad():
                for n, p in params:
                    if self.stash is None:
                        p.data, self.ema[n] = self.ema[n], p.data
                    else:
                        p.data.copy_(self.stash[n])
            torch.clear_autocast_cache()

    def rollouts(self, model, batch, ctx):
        """(student batch, teacher batch, sampling log-probs or None): the same sampled
        completions after each prompt. Both prompts keep the example's system message and
        earlier turns; the teacher's user turn is the template around the query and the
        demonstration. At the first micro-batch of an optimiser step, every micro-batch of
        the step (and of the next `sample_steps` - 1 steps) is sampled in one call: the
        weights are the same until the step, so the step's own rollouts are on-policy;
        later steps' carry the sampling policy's token log-probs for the correction."""
        if id(batch) not in self.pending:
            steps = (ctx.steps_ahead(self.params["sample_steps"])
                     if any(b is batch for b in ctx.step_batches) else [[batch]])
            self.pending = self._sample([b for step in steps for b in step], ctx,
                                        on_policy=len(steps[0]), model=model)
        return self.pending.pop(id(batch))

    def _sample(self, batches, ctx, on_policy: int, model) -> dict:
        tok, p = ctx.tokenizer, self.params
        k = self.params["rollouts"]  # each prompt k times in a row
        examples = [e for b in batches for e in b.examples for _ in range(k)]
        student = [prompt_text(tok, e) for e in examples]
        teacher = [prompt_text(tok, e, p["template"].format(query=e.prompt,
                                                            demonstration=e.response))
                   for e in examples]
        completions = ctx.generate(student, int(p["max_new_tokens"]), ids=True, chat=False,
                                   do_sample=True, temperature=p["temperature"],
                                   top_p=p["top_p"], top_k=0, batch_size=len(examples))
        self.rollouts_n += len(completions)
        self.truncated_n += sum(not finished(c, tok) for c in completions)
        out, start = {}, 0
        for i, b in enumerate(batches):
            end = start + k * len(b.examples)
            pair = tuple(completion_batch(tok, texts[start:end], completions[start:end],
                                          examples[start:end], rendered=True).to(ctx.device)
                         for texts in (student, teacher))
            out[id(b)] = (*pair, None if i < on_policy else self._token_logps(model, pair[0]))
            start = end
        return out

    @torch.no_grad()
    def _token_logps(self, model, batch) -> torch.Tensor:
        """Log-probs of a batch's completion tokens at the sampling temperature, under the
        weights they were sampled with (now): the importance ratio's denominator."""
        logits, targets = response_logits(model, batch)
        return (logits.float() / self.params["temperature"]).log_softmax(-1).gather(
            -1, targets[:, None])[:, 0]

    def after_task(self, task, model, ctx):
        ctx.record("rollout_s", round(self.rollout_s, 2), task=task.name)
        ctx.record("rollouts", self.rollouts_n, task=task.name)
        ctx.record("truncated_share", round(self.truncated_n / max(self.rollouts_n, 1), 4),
                   task=task.name)
        if self.ratio_n:  # the importance ratios of off-policy tokens, and how many capped
            ctx.record("is_ratio_mean", round(self.ratio_sum / self.ratio_n, 4), task=task.name)
            ctx.record("is_clipped_share", round(self.clipped_n / self.ratio_n, 4),
                       task=task.name)
        means = (self.kl_sum / self.kl_count.clamp(min=1)).tolist()
        ctx.record("kl_by_position", {b: round(m, 5) for b, m, c in zip(
            POSITION_BUCKETS, means, self.kl_count.tolist()) if c}, task=task.name)
        self._reset_task_stats()

    def _count_positions(self, per_token: torch.Tensor, positions: torch.Tensor):
        """Accumulate the divergence per completion position (for kl_by_position)."""
        bucket = torch.bucketize(positions, BUCKET_STARTS, right=True) - 1
        values = per_token.detach().double().cpu()
        self.kl_sum.index_add_(0, bucket.cpu(), values)
        self.kl_count.index_add_(0, bucket.cpu(), torch.ones_like(values))

    def loss(self, model, batch, ctx):
        start = time.perf_counter()
        student_batch, teacher_batch, sampled_logps = self.rollouts(model, batch, ctx)
        self.rollout_s += time.perf_counter() - start
        with self.teacher(model) as t:
            teacher_logits, _ = response_logits(t, teacher_batch)
        student_logits, targets = response_logits(model, student_batch)
        p = self.params
        student_logits, teacher_logits = (student_logits / p["temperature"],  # both at the
                                          teacher_logits / p["temperature"])  # sampling T
        ratio = None if sampled_logps is None else (  # sampled at earlier weights
            student_logits.detach().float().log_softmax(-1).gather(-1, targets[:, None])[:, 0]
            - sampled_logps).clamp(-20, 20).exp().clamp(max=p["is_clip"])
        if p["topk"]:
            student_logits, teacher_logits = topk_log_probs(student_logits, teacher_logits,
                                                            p["topk"], p["topk_tail"])
        per_token = token_divergence(student_logits, teacher_logits, p["kl"], p["beta"],
                                     log_probs=bool(p["topk"]))
        positions = completion_positions(student_batch)
        self._count_positions(per_token, positions)
        if ratio is not None:
            per_token = per_token * ratio
            self.ratio_sum += float(ratio.sum())
            self.ratio_n += ratio.numel()
            self.clipped_n += int((ratio >= p["is_clip"]).sum())
        keep = positions >= self.params["skip_tokens"]
        if not keep.any():  # every completion shorter than the skipped prefix
            return student_logits.sum() * 0.0
        rows = student_batch.response_mask.nonzero()[:, 0]
        return sequence_mean(per_token[keep], rows[keep], student_batch.input_ids.shape[0])
