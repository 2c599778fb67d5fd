"""EWC (Kirkpatrick et al. 2017), online variant (Schwarz et al. 2018).

After each task: the diagonal empirical Fisher F_i = mean over examples of (d loss / d w_i)^2,
from per-example gradients of the task's response-token loss on `fisher_examples` of its
training examples. Online: F <- gamma * F + F_task and w* <- the weights after the task.
Loss on later tasks: CE + lambda/2 * sum_i F_i (w_i - w*_i)^2.
"""

import random

import torch

from harness.methods.base import Method, response_token_loss


class EWC(Method):
    name = "ewc"
    description = "online EWC: diagonal Fisher penalty after each task"
    defaults = {"lambda": 5000.0, "gamma": 1.0, "fisher_examples": 32}

    def setup(self, ctx):
        self.fisher, self.star, self.current = None, None, []

    def train_data(self, task, examples, ctx):
        self.current = list(examples)
        return self.current

    def after_task(self, task, model, ctx):
        params = [p for p in model.parameters() if p.requires_grad]
        rng = random.Random(f"ewc:{ctx.seed}:{task.name}")
        sample = rng.sample(self.current, min(self.params["fisher_examples"], len(self.current)))
        fisher = [torch.zeros_like(p) for p in params]
        for batch in ctx.batches(sample, batch_size=1):
            model.zero_grad(set_to_none=True)
            response_token_loss(model, batch).backward()
            for f, p in zip(fisher, params):
                f += p.grad.detach() ** 2 / len(sample)
        model.zero_grad(set_to_none=True)
        gamma = self.params["gamma"]
        self.fisher = fisher if self.fisher is None else [gamma * a + b for a, b in zip(self.fisher, fisher)]
        self.star = [p.detach().clone() for p in params]
        self.params_ref = params

    def penalty(self) -> torch.Tensor:
        if self.fisher is None:
            return torch.zeros(())
        return sum((f * (p - s) ** 2).sum() for f, p, s in zip(self.fisher, self.params_ref, self.star))

    def loss(self, model, batch, ctx):
        return response_token_loss(model, batch) + self.params["lambda"] / 2 * self.penalty()
