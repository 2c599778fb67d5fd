"""L2-SP (Li et al. 2018): cross-entropy plus a pull of the weights towards the base.

loss = CE + alpha/2 * sum_i (w_i - w0_i)^2 over the trained parameters; w0 is the base
model's value (the starting point of the cell, not of each task). The penalty is a plain
sum, so alpha scales with the number of parameters moved; our default is set for full
fine-tuning of a ~100M model at lr 5e-5 (the paper's 0.1 was for image classifiers).
No state to checkpoint: `wrap_model` takes the anchor from the base weights again in a
resumed cell (it runs before the checkpoint's weights are loaded).
"""

import torch

from harness.methods import Method, response_token_loss


class L2SP(Method):
    name = "l2sp"
    version = "1"  # bump when a change moves its numbers (docs/writing-a-method.md)
    tune = {"alpha": [0.01, 0.1, 1.0, 10.0]}  # `harness tune`'s grid
    description = "L2 penalty towards the base weights"
    defaults = {"alpha": 0.01}

    def wrap_model(self, model, ctx):
        self.anchor = [(p, p.detach().clone()) for p in model.parameters() if p.requires_grad]
        return model

    def penalty(self) -> torch.Tensor:
        return sum(((p - p0) ** 2).sum() for p, p0 in self.anchor)

    def loss(self, model, batch, ctx):
        return response_token_loss(model, batch) + self.params["alpha"] / 2 * self.penalty()
