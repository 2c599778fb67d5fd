"""SelfAug ("Distribution Self-Alignment", arXiv 2509.03934).

loss = CE on the response tokens + alpha * KL between the base model's and the tuned
model's next-token distributions at the input (prompt) positions, summed over the full
vocabulary and averaged over those positions. The base distribution comes from the same
network with the adapter disabled under LoRA, or from a frozen copy of the base weights
under full fine-tuning (ctx.base_model), always under no_grad. Before the first optimiser
step the two models are equal and the KL term is zero.

Direction: the released code computes KL(base || tuned) (`direction: base-tuned`, the
default); the paper writes KL(tuned || base) (`direction: tuned-base`). The paper evaluates
with LoRA: set `lora: true` (and a LoRA learning rate in the suite's `train:`).
No state to checkpoint: the base distribution comes from the base weights, which a
resumed cell loads again.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.methods import Method, OptionalLoRA, logits_at, token_divergence


class SelfAug(OptionalLoRA, Method):
    name = "selfaug"
    version = "1"  # bump when a change moves its numbers (docs/writing-a-method.md)
    tune = {"alpha": [0.1, 0.5, 1.0, 2.0]}  # `harness tune`'s grid
    description = "CE + alpha * KL to the base model's distribution at the prompt positions"
    defaults = {
        "alpha": 0.5,
        "direction": "base-tuned",  # base-tuned: KL(base||tuned) (code); tuned-base (paper)
        "lora": False,  # True or a dict of LoRA settings to train adapters only
    }

    def __init__(self, **params):
        super().__init__(**params)
        if self.params["direction"] not in {"base-tuned", "tuned-base"}:
            raise ValueError(f"direction must be base-tuned or tuned-base, "
                             f"not {self.params['direction']!r}")

    def terms(self, model, batch, ctx) -> tuple[torch.Tensor, torch.Tensor]:
        """(cross-entropy on the response, KL at the prompt positions)."""
        prompt, response = batch.prompt_mask, batch.response_mask
        tuned_prompt, tuned_response = logits_at(model, batch, prompt, response)
        with ctx.base_model() as base:
            (base_prompt,) = logits_at(base, batch, prompt)
        # base-tuned is KL(base || tuned): the base plays the teacher
        kind = "forward" if self.params["direction"] == "base-tuned" else "reverse"
        kl = token_divergence(tuned_prompt, base_prompt, kind).mean()
        ce = F.cross_entropy(tuned_response.float(), batch.labels[:, 1:][batch.labels[:, 1:] != -100])
        return ce, kl

    def loss(self, model, batch, ctx):
        ce, kl = self.terms(model, batch, ctx)
        return ce + ctx.aux(self.params["alpha"] * kl)
