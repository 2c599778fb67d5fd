"""A complete method plugin: SFT with a KL pull towards the base model on the answers.

    harness run --suite quickstart --methods examples/base_kl_sft.py:BaseKLSFT

loss = CE(response tokens) + beta * KL(base || model), the KL taken over the full
vocabulary at the response positions and averaged over them. It shows the three things
most methods need: settings with defaults (overridable in a suite's `methods:` section),
the frozen base model from the context, and the harness's response-position logits.
"""

import torch.nn.functional as F

from harness.methods import Method, response_logits, token_divergence


class BaseKLSFT(Method):
    name = "base-kl-sft"
    version = "1"
    description = "SFT plus beta * KL(base || model) on response tokens"
    defaults = {"beta": 0.5}

    def setup(self, ctx):
        ctx.log(f"  base-kl-sft: beta = {self.params['beta']}")

    def loss(self, model, batch, ctx):
        logits, targets = response_logits(model, batch)
        with ctx.base_model() as base:  # adapters disabled under LoRA, else a frozen copy
            base_logits, _ = response_logits(base, batch)
        ce = F.cross_entropy(logits.float(), targets)
        kl = token_divergence(logits, base_logits, reduction="batchmean")  # KL(base || model)
        return ce + ctx.aux(self.params["beta"] * kl)  # its share is logged per task
