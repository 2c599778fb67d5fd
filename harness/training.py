"""The training step: one task of a stream, for any method.

AdamW over the parameters that require grad, linear warm-up then cosine decay, gradient
accumulation, gradient-norm clipping, bf16 autocast on CUDA. The optimiser and schedule
start afresh for every task (as in the papers' sequential fine-tuning). Deterministic for
a given seed: batch order derives from (seed, task index, epoch).
"""

from __future__ import annotations

import math
import time

import torch
from transformers import get_cosine_schedule_with_warmup

from harness.config import TrainSettings
from harness.data import autocast, length_grouped_batches
from harness.errors import HarnessError
from harness.methods.base import call_hook


def total_steps(settings: TrainSettings, n_examples: int) -> int:
    if settings.steps:
        return int(settings.steps)
    batches = math.ceil(n_examples / settings.batch_size)
    return max(1, math.ceil(settings.epochs * batches / settings.grad_accum))


def _micro_batches(tokenizer, examples, settings: TrainSettings, seed: int):
    """Endless stream of length-grouped micro-batches, a new shuffle each epoch."""
    epoch = 0
    while True:
        yield from length_grouped_batches(tokenizer, examples, settings.batch_size,
                                          settings.max_len, seed=seed * 1000 + epoch)
        epoch += 1


def train_task(model, method, ctx, task, examples: list, settings: TrainSettings,
               task_index: int, on_step=None) -> dict:
    """Train `model` on one task's examples with `method`; return step statistics."""
    if not examples:
        raise HarnessError(f"method '{method.name}' produced no training data for task "
                           f"'{task.name}'", "check the method's train_data hook")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise HarnessError(f"method '{method.name}' left no trainable parameters",
                           "its wrap_model hook must leave some parameters with requires_grad")
    steps = int(call_hook(method, "plan_steps", task, total_steps(settings, len(examples)), ctx))
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    schedule = get_cosine_schedule_with_warmup(
        optimizer, num_warmup_steps=round(settings.warmup_ratio * steps), num_training_steps=steps)
    batches = _micro_batches(ctx.tokenizer, examples, settings, ctx.seed * 100 + task_index)
    losses, tokens = [], 0
    model.train()
    start = time.perf_counter()
    for step in range(steps):
        optimizer.zero_grad(set_to_none=True)
        step_loss = 0.0
        for _ in range(settings.grad_accum):
            batch = next(batches).to(ctx.device)
            tokens += int(batch.attention_mask.sum())
            with autocast(ctx.device):
                loss = call_hook(method, "loss", model, batch, ctx)
            if not torch.isfinite(loss):
                raise HarnessError(f"method '{method.name}' produced a non-finite loss at step "
                                   f"{step + 1} of task '{task.name}'",
                                   "lower the learning rate or check the method's loss hook")
            (loss / settings.grad_accum).backward()
            step_loss += float(loss.detach()) / settings.grad_accum
        torch.nn.utils.clip_grad_norm_(params, settings.max_grad_norm)
        optimizer.step()
        schedule.step()
        call_hook(method, "after_step", model, ctx)
        losses.append(step_loss)
        if on_step:
            on_step(step + 1, steps, step_loss)
    seconds = time.perf_counter() - start
    model.eval()
    return {"task": task.name, "steps": steps, "examples": len(examples),
            "loss_first": losses[0], "loss_last": losses[-1], "losses": losses,
            "tokens": tokens, "seconds": seconds, "sec_per_step": seconds / steps}
