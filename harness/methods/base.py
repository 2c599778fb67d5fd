"""The public method API: a method is a class with a few hooks, all optional.

The harness calls, per cell (model, stream, method, seed):

    method = Method(**params_from_suite)
    method.setup(ctx)                          # once, on the untouched base model
    model = method.wrap_model(model, ctx)      # LoRA, freezing, ...
    for task in stream:
        data = method.train_data(task, examples, ctx)   # mixing, replay, rewriting
        for each optimiser step:
            loss = method.loss(model, batch, ctx)       # default: response-token CE
            ... backward, clip, optimiser, scheduler ...
            method.after_step(model, ctx)               # EMA teachers, ...
        method.after_task(task, model, ctx)             # Fisher, snapshots, ...
        (the harness evaluates the model: one row of R and of the probes)

Only parameters with `requires_grad` are optimised, so `wrap_model` decides what trains.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable

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
    keep = targets != -100
    predicts = torch.nn.functional.pad(keep, (0, 1), value=False)  # position i predicts i+1
    (logits,) = logits_at(model, batch, predicts)
    return logits, targets[keep]


def token_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                     kind: str = "forward", beta: float = 0.5) -> torch.Tensor:
    """Per-position divergence [N] between two next-token distributions, summed over the
    full vocabulary (computed in float32).

    forward: KL(teacher || student); reverse: KL(student || teacher); jsd: the generalised
    Jensen-Shannon divergence beta*KL(teacher || M) + (1-beta)*KL(student || M) with
    M = beta*teacher + (1-beta)*student (beta 0 and 1 are the two KLs' limits up to scale).
    These are TRL's `compute_divergence` with alpha = 0, 1 and beta respectively.
    """
    s = F.log_softmax(student_logits.float(), -1)
    t = F.log_softmax(teacher_logits.float(), -1)
    if kind == "forward":
        return (t.exp() * (t - s)).sum(-1)
    if kind == "reverse":
        return (s.exp() * (s - t)).sum(-1)
    if kind == "jsd":
        b = torch.tensor(beta, dtype=s.dtype, device=s.device)
        m = torch.logsumexp(torch.stack([t + b.log(), s + (1 - b).log()]), 0)
        return beta * (t.exp() * (t - m)).sum(-1) + (1 - beta) * (s.exp() * (s - m)).sum(-1)
    raise ValueError(f"unknown divergence '{kind}' (use forward, reverse or jsd)")


LORA_DEFAULTS = {"r": 16, "alpha": 32, "dropout": 0.0,
                 "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj",
                                    "gate_proj", "up_proj", "down_proj"]}


def apply_lora(model, settings: dict | bool | None = None):
    """Wrap `model` with peft LoRA adapters (only they train). `settings`: True for
    LORA_DEFAULTS, or a dict overriding some of r, alpha, dropout, target_modules."""
    from peft import LoraConfig, get_peft_model

    given = settings if isinstance(settings, dict) else {}
    unknown = set(given) - set(LORA_DEFAULTS)
    if unknown:
        raise HarnessError(f"unknown LoRA setting {', '.join(sorted(unknown))}",
                           f"use some of: {', '.join(LORA_DEFAULTS)}")
    lora = {**LORA_DEFAULTS, **given}
    config = LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
                        target_modules=list(lora["target_modules"]), task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def response_token_loss(model, batch) -> torch.Tensor:
    """Mean cross-entropy over response tokens (labels != -100): the SFT loss."""
    logits, targets = response_logits(model, batch)
    return F.cross_entropy(logits.float(), targets)


def decoder_blocks(model) -> torch.nn.ModuleList:
    """The stack of transformer blocks (bottom first), found by its length."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    n = inner.config.num_hidden_layers
    for module in inner.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n:
            return module
    raise HarnessError(f"no list of {n} transformer blocks found in {type(inner).__name__}",
                       "this method needs a decoder-only model with a block list")


def _backbone_and_head(model, batch):
    """(last hidden states, output projection), or (None, None) where logits are not a
    plain linear map of the hidden states (e.g. soft-capped logits)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = inner.config
    if getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None):
        return None, None
    backbone = getattr(inner, inner.base_model_prefix, None)
    head = inner.get_output_embeddings()
    if backbone is None or head is None:
        return None, None
    out = backbone(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
    return out.last_hidden_state, head


@dataclass
class Context:
    """What a method may use. One per cell."""

    tokenizer: Any
    device: torch.device
    seed: int
    model_id: str  # content identity of the base model (for cache keys)
    model_path: str  # where the base weights load from
    train_settings: Any  # harness.config.TrainSettings in force for this method
    cache: Any  # harness.cache.Cache: get_or_compute(namespace, key, fn)
    log: Callable[[str], None] = print
    history: list[str] = field(default_factory=list)  # tasks trained so far, in order
    stream: list = field(default_factory=list)  # [(Task, training examples)] of the whole stream
    stats: dict = field(default_factory=dict)  # what methods record(), for result.json
    _model: Any = None  # the model being trained (set by the harness)
    _frozen_base: Any = None

    @property
    def model(self):
        """The model being trained (as wrapped by the method)."""
        return self._model

    @contextlib.contextmanager
    def base_model(self):
        """The frozen base model, under no_grad. Under peft, the same network with its
        adapters disabled (no second copy); otherwise a frozen copy made on first use."""
        model = self._model
        if model is not None and hasattr(model, "disable_adapter"):
            with model.disable_adapter(), torch.no_grad():
                yield model
            return
        if self._frozen_base is None:  # reloaded from disk: the pristine weights
            from harness.models import load_model

            base, _, _ = load_model(self.model_path, str(self.device), log=self.log)
            self._frozen_base = base.requires_grad_(False)
        with torch.no_grad():
            yield self._frozen_base

    def batches(self, examples: list, batch_size: int | None = None, seed: int | None = None):
        """Length-grouped training batches of `examples` on the cell's device (one epoch)."""
        from harness.data import length_grouped_batches

        settings = self.train_settings
        found = length_grouped_batches(self.tokenizer, examples, batch_size or settings.batch_size,
                                       settings.max_len, self.seed if seed is None else seed)
        return [b.to(self.device) for b in found]

    def generate(self, prompts: list[str], max_new_tokens: int = 64, ids: bool = False,
                 **sampling) -> list:
        """Batched generation (KV cache) with the current model: decoded texts, or with
        `ids` the new token ids (ending with end-of-sequence when the model stopped).
        `sampling`: do_sample, temperature, top_p, top_k, seed, batch_size, and chat=False
        to continue raw text instead of answering a user turn."""
        from harness.data import generate

        out = generate(self._model, self.tokenizer, prompts, max_new_tokens, **sampling)
        return out if ids else [self.tokenizer.decode(x, skip_special_tokens=True) for x in out]

    def record(self, key: str, value, task: str | None = None) -> None:
        """Keep a figure in the cell's result.json (`method_stats`), under a task's name or
        under "cell": e.g. SDFT-rewrite's acceptance rate."""
        self.stats.setdefault(task or "cell", {})[key] = value


class MethodError(HarnessError):
    """A method's hook raised: names the method and the hook."""

    def __init__(self, method, hook: str, exc: BaseException):
        super().__init__(f"method '{method.name or type(method).__name__}' failed in its "
                         f"{hook} hook: {type(exc).__name__}: {exc}")


def call_hook(method, hook: str, *args):
    """Call `method.<hook>(*args)`, turning an unexpected exception into a MethodError."""
    try:
        return getattr(method, hook)(*args)
    except (HarnessError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise MethodError(method, hook, exc) from exc


class Method:
    """Base class: plain supervised fine-tuning. Override only what differs."""

    name: str = ""
    description: str = ""
    defaults: dict[str, Any] = {}  # hyper-parameters, overridable from the suite YAML
    continual: bool = True  # False for references such as joint training

    def __init__(self, **params):
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise HarnessError(
                f"method '{self.name}' has no setting {', '.join(sorted(unknown))}",
                f"use one of: {', '.join(self.defaults) or '(none)'}",
            )
        self.params = {**self.defaults, **params}

    def setup(self, ctx: Context) -> None:
        pass

    def wrap_model(self, model, ctx: Context):
        return model

    def train_data(self, task, examples: list, ctx: Context) -> list:
        return list(examples)

    def plan_steps(self, task, steps: int, ctx: Context) -> int:
        """Optimiser steps for this task (the suite's budget by default)."""
        return steps

    def loss(self, model, batch, ctx: Context) -> torch.Tensor:
        return response_token_loss(model, batch)

    def after_step(self, model, ctx: Context) -> None:
        pass

    def after_task(self, task, model, ctx: Context) -> None:
        pass
