"""LwF (Li & Hoiem 2017) for language models: distil the previous model on current inputs.

Before each task, a frozen copy of the model (the base model before the first task) becomes
the teacher. loss = CE + alpha * T^2 * KL(teacher_T || student_T) at the response positions
of the current task's examples, with temperature T, summed over the vocabulary and
averaged over positions. Before the first optimiser step the student equals the teacher,
so the KL term is zero.
"""

import copy

import torch.nn.functional as F

from harness.methods.base import Method, response_logits


class LwF(Method):
    name = "lwf"
    description = "KL to the previous task's model on the current inputs"
    defaults = {"alpha": 1.0, "temperature": 2.0}

    def train_data(self, task, examples, ctx):
        self.teacher = copy.deepcopy(ctx.model).eval().requires_grad_(False)
        return list(examples)

    def distillation(self, model, batch):
        t = self.params["temperature"]
        student, targets = response_logits(model, batch)
        teacher, _ = response_logits(self.teacher, batch)
        kl = F.kl_div(F.log_softmax(student.float() / t, -1), F.log_softmax(teacher.float().detach() / t, -1),
                      log_target=True, reduction="batchmean")
        return F.cross_entropy(student.float(), targets), kl * t * t

    def loss(self, model, batch, ctx):
        ce, kl = self.distillation(model, batch)
        return ce + self.params["alpha"] * kl
