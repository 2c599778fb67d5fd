"""How long are SDFT's on-policy rollouts, and what does a step's sampling cost?

Samples one completion per prompt from the base model as SDFT's student does (T 1.0,
top-p 1.0, one batch of the first N training examples, a KV cache) and prints the lengths,
how many stopped by themselves, and the seconds the batch took:

    python -m scripts.diagnostics.rollout_lengths [--tasks arith,json-extract] [--max-new-tokens 1024]
"""

from __future__ import annotations

import argparse
import time

from harness.generation import finished, generate
from harness.models import load_model
from harness.seeding import seeded
from harness.tasks import get_task


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--tasks", default="arith,json-extract")
    parser.add_argument("--n", type=int, default=8, help="prompts in the batch (SDFT's batch size)")
    parser.add_argument("--max-new-tokens", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    model, tokenizer, _ = load_model(args.model, args.device)
    for name in args.tasks.split(","):
        examples = get_task(name).split(64, 32, 0).train[: args.n]
        start = time.perf_counter()
        with seeded(args.seed, f"rollouts {name}"):
            ids = generate(model, tokenizer, [e.prompt for e in examples], args.max_new_tokens,
                           batch_size=args.n, do_sample=True, temperature=1.0, top_p=1.0, top_k=0)
        print(f"{name}: lengths {sorted(len(x) for x in ids)}, stopped "
              f"{sum(finished(x, tokenizer) for x in ids)}/{len(ids)}, "
              f"{time.perf_counter() - start:.1f} s for the batch", flush=True)


if __name__ == "__main__":
    main()
