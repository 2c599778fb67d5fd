"""LwF (Li & Hoiem 2017) for language models: distil the previous model on current inputs.

Before each task, a frozen copy of the model (the base model before the first task) becomes
the teacher. loss = CE + alpha * T^2 * KL(teacher_T || student_T), with temperature T, summed
over the vocabulary and averaged over the distilled positions. Before the first optimiser
step the student equals the teacher, so the KL term is zero.

`positions` says where the KL is taken, on the current task's examples:
- `prompt` (default): the positions that predict a prompt token from the prompt before it,
  i.e. the old model's predictions over the new task's inputs. This follows the original,
  which distils the old tasks' outputs on the new task's inputs, not on its targets; these
  positions are disjoint from the CE's, so the two terms do not pull against each other.
- `response`: the positions that predict a response token, the very positions where the CE
  pulls towards the new gold tokens and the KL towards the old model's predictions.

No state to checkpoint: the teacher is copied from the model at the start of each task, so
a resumed cell makes it from the checkpoint's weights, as an uninterrupted one would.
"""

import copy

import torch
import torch.nn.functional as F

from harness.methods import Method, logits_at, token_divergence


def distilled_positions(batch, positions: str) -> torch.Tensor:
    """[B, L] True where position i predicts token i+1 and both lie in the prompt
    (`prompt`), or where token i+1 is a response token (`response`)."""
    if positions == "response":
        return batch.response_mask
    p = batch.prompt_mask
    return F.pad(p[:, :-1] & p[:, 1:], (0, 1), value=False)


class LwF(Method):
    name = "lwf"
    version = "1"  # bump when a change moves its numbers (docs/writing-a-method.md)
    tune = {"alpha": [0.25, 0.5, 1.0, 2.0]}  # `harness tune`'s grid
    description = "KL to the previous task's model on the current inputs"
    defaults = {"alpha": 1.0, "temperature": 2.0, "positions": "prompt"}

    def __init__(self, **params):
        super().__init__(**params)
        if self.params["positions"] not in {"prompt", "response"}:
            raise ValueError(f"positions must be prompt or response, not {self.params['positions']!r}")

    def train_data(self, task, examples, ctx):
        self.teacher = copy.deepcopy(ctx.model).eval().requires_grad_(False)
        return list(examples)

    def distillation(self, model, batch):
        """(CE on the response tokens, T^2 * KL at the distilled positions): the student's
        logits at both sets of positions come from one forward pass."""
        t, labels = self.params["temperature"], batch.labels[:, 1:]
        response = distilled_positions(batch, "response")
        at = distilled_positions(batch, self.params["positions"])
        masks = [response] if self.params["positions"] == "response" else [at, response]
        logits = logits_at(model, batch, *masks)
        with torch.no_grad():
            (teacher,) = logits_at(self.teacher, batch, at)
        kl = token_divergence(logits[0].float() / t, teacher.float() / t, reduction="batchmean")
        return F.cross_entropy(logits[-1].float(), labels[labels != -100]), kl * t * t

    def loss(self, model, batch, ctx):
        ce, kl = self.distillation(model, batch)
        return ce + ctx.aux(self.params["alpha"] * kl)
