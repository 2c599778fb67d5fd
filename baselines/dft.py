"""DFT, Dynamic Fine-Tuning (arXiv 2508.05629): token cross-entropy weighted by the
model's own (detached) probability of the target token, -p.detach() * log p, averaged over
response tokens. Low-probability tokens, which drive large updates in SFT, count less.
No state across tasks: a resumed cell needs only its weights."""

import torch.nn.functional as F

from harness.methods import Method, response_logits


def dft_loss(logits, targets):
    logp = F.log_softmax(logits.float(), -1).gather(-1, targets[:, None]).squeeze(-1)
    return -(logp.exp().detach() * logp).mean()


class DFT(Method):
    name = "dft"
    version = "1"  # bump when a change moves its numbers (docs/writing-a-method.md)
    description = "cross-entropy weighted by the detached target-token probability"

    def loss(self, model, batch, ctx):
        return dft_loss(*response_logits(model, batch))
