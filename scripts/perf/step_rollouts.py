"""One generate call for a step's 4 micro-batches of 2 prompts against 4 calls of 2 (sdft's
rollouts with grad_accum 4, before and after it sampled a whole step at once), the embedded
135M model, one torch thread, 64 new tokens, T 1, interleaved rounds.

    python -m scripts.perf.step_rollouts
"""
import statistics
import time

import torch

from harness.generation import generate
from harness.models import load_model
from harness.tasks import get_task


def one(model, tok, prompts):
    generate(model, tok, prompts, 64, batch_size=8, do_sample=True, seed=1)


def four(model, tok, prompts):
    for i in range(0, 8, 2):
        generate(model, tok, prompts[i:i + 2], 64, batch_size=2, do_sample=True, seed=1)


def main(rounds: int = 4) -> None:
    torch.set_num_threads(1)
    model, tok, _ = load_model("smollm2-135m-instruct", "cpu", log=lambda m: None)
    prompts = [e.prompt for e in get_task("json-extract").split(8, 2, 0).train]
    ratios = []
    for r in range(rounds):
        t0 = time.perf_counter()
        one(model, tok, prompts)
        a = time.perf_counter() - t0
        t0 = time.perf_counter()
        four(model, tok, prompts)
        b = time.perf_counter() - t0
        ratios.append(b / a)
        print(f"round {r}: one call {a:.1f} s, four calls {b:.1f} s, ratio {b / a:.2f}", flush=True)
    print(f"four calls / one call: median {statistics.median(ratios):.2f} "
          f"(min {min(ratios):.2f}, max {max(ratios):.2f})")


if __name__ == "__main__":
    main()
