"""EWC (Kirkpatrick et al. 2017), online variant (Schwarz et al. 2018).

After each task, a diagonal Fisher from `fisher_examples` of the task's training examples,
one at a time: F_i = mean over examples of (d loss_x / d w_i)^2, with loss_x the example's
cross-entropy averaged over its response tokens (each example's whole gradient, squared).
`fisher` picks the labels of loss_x:
- `empirical` (default): the gold response tokens, the empirical Fisher. It equals the
  Fisher information only where the model's predictions match the data; it is the default
  because most LLM continual-learning code computes it (and this baseline did before).
- `true`: one token per response position sampled from the model's own next-token
  distribution (after the gold prefix): a one-sample estimate of the true Fisher, the
  expectation under the model's predictions that Kirkpatrick et al. use.
Online: F <- gamma * F + F_task (gamma 1: a plain sum) and w* <- the weights after the task.
Loss on later tasks: CE + lambda/2 * sum_i F_i (w_i - w*_i)^2.
A resumed cell gets F and w* back through state_dict / load_state_dict.
"""


import torch
import torch.nn.functional as F

from harness.methods import Method, generator, response_logits, response_token_loss


class EWC(Method):
    name = "ewc"
    version = "1"  # bump when a change moves its numbers (docs/writing-a-method.md)
    tune = {"lambda": [1e4, 1e5, 1e6, 1e7]}  # `harness tune`'s grid
    # v1's 5000 left every cell SFT's, item for item
    description = "online EWC: diagonal Fisher penalty after each task"
    defaults = {"lambda": 5000.0, "gamma": 1.0, "fisher_examples": 32, "fisher": "empirical"}

    def __init__(self, **params):
        super().__init__(**params)
        if self.params["fisher"] not in {"empirical", "true"}:
            raise ValueError(f"fisher must be empirical or true, not {self.params['fisher']!r}")

    def setup(self, ctx):
        self.fisher, self.star, self.current = None, None, []

    def train_data(self, task, examples, ctx):
        self.current = list(examples)
        return self.current

    def fisher_loss(self, model, batch, generator) -> torch.Tensor:
        logits, targets = response_logits(model, batch)
        if self.params["fisher"] == "true":  # labels drawn from the model itself
            probs = F.softmax(logits.detach().float(), -1)
            targets = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        return F.cross_entropy(logits.float(), targets)

    def task_fisher(self, model, params, batches, generator) -> list[torch.Tensor]:
        """Diagonal Fisher of `params` from one-example batches: squared gradients, averaged."""
        fisher = [torch.zeros_like(p) for p in params]
        for batch in batches:
            model.zero_grad(set_to_none=True)
            self.fisher_loss(model, batch, generator).backward()
            for f, p in zip(fisher, params):
                f += p.grad.detach() ** 2 / len(batches)
        model.zero_grad(set_to_none=True)
        return fisher

    def after_task(self, task, model, ctx):
        params = [p for p in model.parameters() if p.requires_grad]
        rng = generator(ctx.seed, "ewc", task.name)
        sample = rng.sample(self.current, min(self.params["fisher_examples"], len(self.current)))
        draws = generator(rng.getrandbits(63), "ewc fisher", kind="torch", device=ctx.device)
        fisher = self.task_fisher(model, params, ctx.batches(sample, batch_size=1), draws)
        gamma = self.params["gamma"]
        self.fisher = fisher if self.fisher is None else [gamma * a + b for a, b in zip(self.fisher, fisher)]
        self.star = [p.detach().clone() for p in params]
        self.params_ref = params
        ctx.record("fisher", self.params["fisher"], task.name)
        ctx.record("fisher_examples", len(sample), task.name)

    def state_dict(self, ctx):
        return {"fisher": self.fisher, "star": self.star}

    def load_state_dict(self, state, ctx):
        params = [p for p in ctx.model.parameters() if p.requires_grad]
        if state["fisher"] is not None:
            self.fisher = [f.to(p.device) for f, p in zip(state["fisher"], params, strict=True)]
            self.star = [s.to(p.device) for s, p in zip(state["star"], params, strict=True)]
            self.params_ref = params

    def penalty(self) -> torch.Tensor:
        if self.fisher is None:
            return torch.zeros(())
        return sum((f * (p - s) ** 2).sum() for f, p, s in zip(self.fisher, self.params_ref, self.star))

    def loss(self, model, batch, ctx):
        return response_token_loss(model, batch) + self.params["lambda"] / 2 * self.penalty()
