"""External-data mixing: add general instruction data the model did not write.

The SA-SFT paper's main baseline (Alpaca/UltraChat-like data mixed into each task); we mix
the offline instruction set shipped in `benchmarks/external.py` at `ratio` external
examples per task example (capped at `cap` if set). Same optimiser steps as SFT.
No state to checkpoint: `setup` reloads the pool and each task draws from its own seeded
generator.
"""


from benchmarks.external import instructions
from harness.methods import Example, Method, generator


class MixExternal(Method):
    name = "mix-external"
    version = "1"  # bump when a change moves its numbers (docs/writing-a-method.md)
    tune = {"ratio": [0.25, 0.5, 1.0, 2.0]}  # `harness tune`'s grid
    description = "mix the shipped general instruction set into each task at a ratio"
    defaults = {"ratio": 1.0, "cap": None}

    def setup(self, ctx):
        self.pool = [Example(p["prompt"], p["response"], "") for p in instructions()]

    def train_data(self, task, examples, ctx):
        n = round(self.params["ratio"] * len(examples))
        if self.params["cap"] is not None:
            n = min(n, self.params["cap"])
        rng = generator(ctx.seed, "mix-external", task.name)
        extra = rng.sample(self.pool, n) if n <= len(self.pool) else rng.choices(self.pool, k=n)
        return list(examples) + extra
