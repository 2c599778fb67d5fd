"""Tensor helpers for methods: logits at chosen positions, the SFT loss, divergences, an
anchor of the starting weights.

Pure functions of a model and a `harness.data.Batch`; nothing here keeps state. The
position masks they take are the batch's own (`Batch.prompt_mask`, `Batch.response_mask`).
"""

from __future__ import annotations

import contextvars

import torch
import torch.nn.functional as F

from harness.errors import HarnessError


def logits_at(model, batch, *masks: torch.Tensor) -> list[torch.Tensor]:
    """Logits [N_i, V] at the True positions of each [B, L] mask (the logits at position
    i predict token i+1), from one forward pass of the backbone.

    The vocabulary projection runs only at the requested positions: for short answers to
    long prompts this skips most of the LM head's work.
    """
    hidden, head = _backbone_and_head(model, batch)
    if head is None:  # models whose head is not a plain projection: full logits
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        return [logits[m] for m in masks]
    return [head(hidden[m]) for m in masks]


def response_logits(model, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits [N, V], targets [N]) at the N positions that predict a response token."""
    targets = batch.labels[:, 1:]
    (logits,) = logits_at(model, batch, batch.response_mask)
    return logits, targets[targets != -100]


# While the training loop computes a loss: the cross-entropies response_token_loss gave,
# so that the loop can tell a penalty added to it (harness/training.py, aux shares).
CROSS_ENTROPIES: contextvars.ContextVar[list | None] = contextvars.ContextVar(
    "cross_entropies", default=None)


def response_token_loss(model, batch) -> torch.Tensor:
    """Mean cross-entropy over response tokens (labels != -100): the SFT loss."""
    logits, targets = response_logits(model, batch)
    loss = F.cross_entropy(logits.float(), targets)
    seen = CROSS_ENTROPIES.get()
    if seen is not None:
        seen.append(loss.detach())
    return loss


# Inputs of more than CHUNK_ABOVE elements (N x V) are taken CHUNK_ELEMENTS at a time.
# 2^28 elements is a 1 GiB float32 [N, V] tensor: 2.7x the largest the leaderboard's grid
# can pass (batch 8 x (192 + 64) positions x 49152 = 1.0e8), so its results are unchanged.
CHUNK_ABOVE = 1 << 28
CHUNK_ELEMENTS = 1 << 26  # per chunk: 256 MiB for each float32 [n, V] intermediate


def token_divergence(student: torch.Tensor, teacher: torch.Tensor, kind: str = "forward",
                     beta: float = 0.5, reduction: str = "none",
                     log_probs: bool = False) -> torch.Tensor:
    """Divergence between two next-token distributions [N, V], summed over the full
    vocabulary (computed in float32): per position [N] (`reduction="none"`), or the sum
    over every position divided by N (`"batchmean"`, `F.kl_div`'s reduction, bit for bit;
    equal to the per-position mean up to rounding). The inputs are logits, or already
    log-probabilities with `log_probs` (then used as they are).

    forward: KL(teacher || student); reverse: KL(student || teacher); jsd: the generalised
    Jensen-Shannon divergence beta*KL(teacher || M) + (1-beta)*KL(student || M) with
    M = beta*teacher + (1-beta)*student (beta 0 and 1 are the two KLs' limits up to scale).
    These are TRL's `compute_divergence` with alpha = 0, 1 and beta respectively.

    Above CHUNK_ABOVE elements (long prompts, long rollouts, large vocabularies) it runs over
    chunks of positions, each recomputed in backward, so that its float32 [N, V]
    intermediates never exist at full size (only the inputs and their gradients do): equal
    to the whole
    computation up to rounding (batchmean sums in another order). Below, it is the whole
    computation, bit for bit as before chunking existed.
    """
    if reduction not in ("none", "batchmean"):
        raise ValueError(f"unknown reduction '{reduction}' (use none or batchmean)")
    if student.numel() > CHUNK_ABOVE and student.shape[0] > 1:
        return _chunked(student, teacher, kind, beta, reduction, log_probs)
    return _divergence(student, teacher, kind, beta, reduction, log_probs)


def _chunked(student, teacher, kind, beta, reduction, log_probs) -> torch.Tensor:
    rows = max(1, CHUNK_ELEMENTS // max(student.shape[-1], 1))
    if torch.is_grad_enabled() and (student.requires_grad or teacher.requires_grad):
        per_position = _ChunkedDivergence.apply(student, teacher, kind, beta, log_probs, rows)
    else:
        per_position = _per_chunk(student, teacher, kind, beta, log_probs, rows)
    return per_position if reduction == "none" else per_position.sum() / student.shape[0]


def _per_chunk(student, teacher, kind, beta, log_probs, rows) -> torch.Tensor:
    return torch.cat([_divergence(s, t, kind, beta, "none", log_probs)
                      for s, t in zip(student.split(rows), teacher.split(rows))])


def topk_log_probs(student: torch.Tensor, teacher: torch.Tensor, k: int,
                   tail: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Both next-token distributions restricted to the student's k most likely tokens at
    each position (TRL's top-k logit distillation, `trl.experimental.sdft`'s default
    objective), as float32 log-probabilities for `token_divergence(..., log_probs=True)`:
    [N, k] renormalised over those k tokens (TRL's default), or with `tail` [N, k + 1]
    with one more category holding the rest of each distribution's mass, so that the
    divergence approximates the full vocabulary's."""
    student, teacher = student.float(), teacher.float()
    top, index = student.topk(min(k, student.shape[-1]), dim=-1)
    s = top - student.logsumexp(-1, keepdim=True)
    t = teacher.gather(-1, index) - teacher.logsumexp(-1, keepdim=True)
    if not tail:
        return s.log_softmax(-1), t.log_softmax(-1)
    return _with_tail(s), _with_tail(t)


def _with_tail(log_probs: torch.Tensor) -> torch.Tensor:
    kept = log_probs.logsumexp(-1, keepdim=True).clamp(max=-1e-7)  # the mass of the top k
    return torch.cat([log_probs, torch.log(-torch.expm1(kept))], -1)


class _ChunkedDivergence(torch.autograd.Function):
    """Per-position divergence chunk by chunk; backward recomputes each chunk and writes
    its gradient into one [N, V] tensor per input (no full-size intermediates kept)."""

    @staticmethod
    def forward(ctx, student, teacher, kind, beta, log_probs, rows):
        ctx.save_for_backward(student, teacher)
        ctx.settings = (kind, beta, log_probs, rows)
        return _per_chunk(student, teacher, kind, beta, log_probs, rows)

    @staticmethod
    def backward(ctx, grad_out):
        student, teacher = ctx.saved_tensors
        kind, beta, log_probs, rows = ctx.settings
        wanted = ctx.needs_input_grad[:2]
        grads = [torch.empty_like(x) if want else None
                 for x, want in zip((student, teacher), wanted)]
        for start in range(0, student.shape[0], rows):
            part = slice(start, start + rows)
            pair = [x[part].detach().requires_grad_(want) for x, want in zip((student, teacher),
                                                                             wanted)]
            with torch.enable_grad():
                out = _divergence(*pair, kind, beta, "none", log_probs)
            found = torch.autograd.grad(out, [x for x in pair if x.requires_grad], grad_out[part])
            for grad, got in zip([g for g in grads if g is not None], found):
                grad[part] = got
        return grads[0], grads[1], None, None, None, None


def _divergence(student, teacher, kind, beta, reduction, log_probs) -> torch.Tensor:
    """token_divergence on the whole [N, V] at once."""
    if log_probs:
        s, t = student, teacher
    else:
        s, t = F.log_softmax(student.float(), -1), F.log_softmax(teacher.float(), -1)

    def total(pointwise: torch.Tensor) -> torch.Tensor:
        return pointwise.sum(-1) if reduction == "none" else pointwise.sum() / pointwise.shape[0]

    if kind == "forward":
        return total(t.exp() * (t - s))
    if kind == "reverse":
        return total(s.exp() * (s - t))
    if kind == "jsd":
        b = torch.tensor(beta, dtype=s.dtype, device=s.device)
        m = torch.logsumexp(torch.stack([t + b.log(), s + (1 - b).log()]), 0)
        return beta * total(t.exp() * (t - m)) + (1 - beta) * total(s.exp() * (s - m))
    raise ValueError(f"unknown divergence '{kind}' (use forward, reverse or jsd)")


def trainable_anchor(model) -> dict[str, torch.Tensor]:
    """A detached copy of every parameter that trains (`requires_grad`), by name: the
    starting point of a pull back towards it (L2-SP). Take it once the model is wrapped (at
    the end of `wrap_model`, or in the first `train_data`): under LoRA the parameters that
    train are the adapters, so the anchor holds their initial values, and the model they
    start from is the base model; otherwise it holds the base weights that train."""
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def anchor_distance(model, anchor: dict[str, torch.Tensor]) -> torch.Tensor:
    """sum over the anchored parameters of sum((w - w0)^2): a scalar with a gradient to the
    weights, 0 at the anchor. The same sum, in the same order, as L2-SP's penalty (bit for
    bit). Under LoRA it measures how far the adapters moved (not the merged weights)."""
    params = dict(model.named_parameters())
    missing = [name for name in anchor if name not in params]
    if missing:
        raise HarnessError(f"the anchor names {len(missing)} parameters the model does not "
                           f"have (e.g. {missing[0]})", "take the anchor from this model with "
                           "trainable_anchor(model) after wrap_model")
    total = sum(((params[name] - w0) ** 2).sum() for name, w0 in anchor.items())
    return total if torch.is_tensor(total) else torch.zeros(())


def decoder_blocks(model) -> torch.nn.ModuleList:
    """The stack of transformer blocks (bottom first), found by its length."""
    inner = _unwrapped(model)
    n = inner.config.num_hidden_layers
    for module in inner.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n:
            return module
    raise HarnessError(f"no list of {n} transformer blocks found in {type(inner).__name__}",
                       "this method needs a decoder-only model with a block list")


def _unwrapped(model):
    """The transformers model under a peft wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _backbone_and_head(model, batch):
    """(last hidden states, output projection), or (None, None) where logits are not a
    plain linear map of the hidden states (e.g. soft-capped logits)."""
    inner = _unwrapped(model)
    config = inner.config
    if getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None):
        return None, None
    backbone = getattr(inner, inner.base_model_prefix, None)
    head = inner.get_output_embeddings()
    if backbone is None or head is None:
        return None, None
    out = backbone(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
    return out.last_hidden_state, head
