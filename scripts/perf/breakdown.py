"""Where an SDFT step's time goes: the rollout, the teacher's forward, the student's forward
with the divergence, the backward; beside an SFT forward + backward on the same prompts.
The optimiser step is left out of both (it is the same for the two)."""

from __future__ import annotations

import statistics
import time

from scripts.perf.common import BATCH, MAX_LEN, arith_train
from scripts.perf.sft import Ours

PHASES = ("rollout", "teacher forward", "student forward + divergence", "backward",
          "SFT forward + backward")


def run(model_path: str, rounds: int, say=print) -> dict:
    """Median seconds of each phase over `rounds` batches of the arith training set."""
    from harness.data import collate
    from harness.methods import response_logits, response_token_loss, token_divergence

    examples = arith_train()
    ours = Ours("sdft", {"max_new_tokens": 64}, model_path, examples)
    method, ctx, model = ours.method, ours.ctx, ours.model
    times = {p: [] for p in PHASES}
    for r in range(rounds):
        batch = collate(ctx.tokenizer, examples[r * BATCH:(r + 1) * BATCH], MAX_LEN).to(ctx.device)
        stamps = [time.perf_counter()]
        student, teacher, _ = method.rollouts(model, batch, ctx)
        stamps.append(time.perf_counter())
        with method.teacher(model) as t:
            teacher_logits, _ = response_logits(t, teacher)
        stamps.append(time.perf_counter())
        student_logits, _ = response_logits(model, student)
        loss = token_divergence(student_logits, teacher_logits, "forward", 0.5).mean()
        stamps.append(time.perf_counter())
        loss.backward()
        stamps.append(time.perf_counter())
        model.zero_grad(set_to_none=True)
        response_token_loss(model, batch).backward()
        stamps.append(time.perf_counter())
        model.zero_grad(set_to_none=True)
        for phase, a, b in zip(PHASES, stamps, stamps[1:]):
            times[phase].append(b - a)
    medians = {p: statistics.median(v) for p, v in times.items()}
    sdft = sum(medians[p] for p in PHASES[:4])
    for p in PHASES[:4]:
        say(f"  {p}: {medians[p]:.2f} s ({medians[p] / sdft:.0%} of the SDFT step)")
    say(f"  {PHASES[4]}: {medians[PHASES[4]]:.2f} s; SDFT / SFT without the optimiser: "
        f"{sdft / medians[PHASES[4]]:.2f}x")
    return {"median_s": medians, "rounds": rounds}
