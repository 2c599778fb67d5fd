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
        state = method.state_dict(ctx)                  # checkpoint (not after the last task)

Only parameters with `requires_grad` are optimised, so `wrap_model` decides what trains.

A re-run of a killed cell (harness/checkpoint.py) makes the method anew, calls `setup` and
`wrap_model` on the base model as above, loads the trainable weights of the last completed
task, and calls `method.load_state_dict(state, ctx)` before the next task. So a method
that keeps something from one task to the next that `setup`/`wrap_model` do not recompute
(a Fisher, an EMA teacher, a buffer of examples) must return it from `state_dict`.
"""

from __future__ import annotations

import contextlib
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from harness.errors import HarnessError
from harness.methods.nn import response_token_loss


@dataclass
class Context:
    """What a method may use. One per cell. (`train_settings` and `cache` are typed in
    comments: importing harness.config here would close an import cycle, as config checks
    methods.)"""

    tokenizer: Any
    device: torch.device
    seed: int
    model_id: str  # content identity of the base model (for cache keys)
    model_path: str  # where the base weights load from
    train_settings: Any  # harness.config.TrainSettings in force for this method
    cache: Any  # harness.storage.Cache: get_or_compute(namespace, key, fn)
    log: Callable[[str], None] = print
    history: list[str] = field(default_factory=list)  # tasks trained so far, in order
    stream: list = field(default_factory=list)  # [(Task, training examples)] of the whole stream
    stats: dict = field(default_factory=dict)  # what methods record(), for result.json
    step_batches: list = field(default_factory=list)  # the current optimiser step's micro-batches
    _model: Any = None  # the model being trained: set by the harness through _bind
    _frozen_base: Any = None
    _peek: Any = None  # the training loop's look-ahead (steps_ahead), during training only
    _aux: list = field(default_factory=list)  # the current loss's auxiliary terms (aux())

    def steps_ahead(self, n: int) -> list[list]:
        """In `loss`: the micro-batches of the next `n` optimiser steps of the task, the
        current one first (`step_batches`), each a list; fewer near the task's end. The
        same batches the loop will train on, drawn early: a method can do work for several
        steps at once (sdft's `sample_steps`). Outside training: [step_batches]."""
        if n < 1 or not self.step_batches:
            return []
        return [self.step_batches] + (self._peek(n - 1) if self._peek and n > 1 else [])

    def aux(self, term: torch.Tensor) -> torch.Tensor:
        """In `loss`: mark `term` as the loss's auxiliary part (a penalty, a distillation
        term beside the cross-entropy) and return it unchanged, as in `return ce +
        ctx.aux(alpha * penalty)`. The training loop records its share of the loss,
        |aux| / (|loss - aux| + |aux|), per task (result.json's `training[i].aux_share`):
        a penalty too weak to change anything shows as a share near 0."""
        self._aux.append(float(term.detach()))
        return term

    def _bind(self, model) -> None:
        """Harness only: make `model` the one being trained (after loading, and again
        after `wrap_model`), so that methods never set private attributes."""
        self._model = model

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
        from harness.generation import generate

        out = generate(self._model, self.tokenizer, prompts, max_new_tokens, **sampling)
        return out if ids else [self.tokenizer.decode(x, skip_special_tokens=True) for x in out]

    def record(self, key: str, value, task=None) -> None:
        """Keep a figure in the cell's result.json: `method_stats[task][key] = value`, under
        the task's name (a Task or its name) or, without one, under "cell"; recording a key
        again replaces it. The value must be JSON (numbers, strings, bools, None, lists,
        dicts with string keys): it is copied as JSON now, so a later change to it is not
        recorded, and a tensor or other object fails here, in the hook, not when the cell
        is written. E.g. SDFT-rewrite's acceptance rate."""
        import json

        try:
            value = json.loads(json.dumps(value))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"ctx.record({key!r}): the value is not JSON ({exc}); record "
                            "numbers, strings, lists or dicts (a tensor: .item() or .tolist())"
                            ) from None
        self.stats.setdefault(getattr(task, "name", task) or "cell", {})[str(key)] = value


class MethodError(HarnessError):
    """A method's hook raised: names the method and the hook."""

    def __init__(self, method, hook: str, exc: BaseException):
        super().__init__(f"method '{method.name or type(method).__name__}' failed in its "
                         f"{hook} hook: {type(exc).__name__}: {exc}")


def _loss_problem(value) -> str | None:
    if not isinstance(value, torch.Tensor):
        return f"got {type(value).__name__} {value!r:.40}" if isinstance(
            value, (int, float)) else f"got {type(value).__name__}"
    if value.numel() != 1 or value.dim() > 1:
        return f"got a tensor of shape {tuple(value.shape)}"
    if not value.is_floating_point():
        return f"got a {value.dtype} tensor"
    if torch.is_grad_enabled() and not value.requires_grad:
        return "got a tensor without grad (detached, or computed under torch.no_grad)"
    return None


def _steps_problem(value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        return f"got {value!r}"
    return None


def _model_problem(value) -> str | None:
    if not isinstance(value, torch.nn.Module):
        return f"got {type(value).__name__}"
    if getattr(value, "config", None) is None:  # training, generation and lm-eval need it
        return f"got a {type(value).__name__}, which is not a transformers model"
    return None


def _examples_problem(value) -> str | None:
    from harness.tasks import Example

    if not isinstance(value, (list, tuple)):
        return f"got {type(value).__name__}"
    bad = next((i for i, x in enumerate(value) if not isinstance(x, Example)), None)
    return None if bad is None else f"item {bad} is a {type(value[bad]).__name__}"


_STATE_TYPES = (type(None), bool, int, float, str, torch.Tensor, torch.dtype, torch.device)


def _state_problem(value, where: str = "") -> str | None:
    """Why `value` would not come back from the checkpoint (torch.load(weights_only=True)
    reads tensors, plain values, lists, tuples, dicts and task Examples), or None."""
    from harness.tasks import Example

    if not where and not isinstance(value, dict):
        return f"got {type(value).__name__}"
    if isinstance(value, dict):
        for key, item in value.items():
            found = _state_problem(item, f"{where}[{key!r}]")
            if found or not isinstance(key, (str, int)):
                return found or f"key {where}[{key!r}] is a {type(key).__name__}"
        return None
    if isinstance(value, (list, tuple)):
        return next(filter(None, (_state_problem(x, f"{where}[{i}]")
                                  for i, x in enumerate(value))), None)
    if isinstance(value, (_STATE_TYPES, Example)):
        return None
    return f"{where or 'it'} is a {type(value).__name__}"


# What a hook must return, where the harness relies on it: (rule, why a value breaks it)
HOOK_RULES = {
    "loss": ("must return a scalar floating-point tensor with grad (e.g. the mean token "
             "loss)", _loss_problem),
    "plan_steps": ("must return a whole number of optimiser steps >= 1", _steps_problem),
    "wrap_model": ("must return the model (the transformers model it was given, or a peft "
                   "model wrapping it), e.g. `return model`", _model_problem),
    "train_data": ("must return a list of training examples (harness.tasks.Example and its "
                   "subclasses)", _examples_problem),
    "state_dict": ("must return a dict of tensors, numbers, strings, lists, tuples, dicts "
                   "and task Examples (what the cell's checkpoint reads back)", _state_problem),
}


def call_hook(method, hook: str, *args):
    """Call `method.<hook>(*args)`: an unexpected exception (a plugin's sys.exit()
    included) becomes a MethodError, and a returned value that breaks the hook's rule
    (HOOK_RULES) one that names the hook and the rule; either fails the cell alone."""
    try:
        value = getattr(method, hook)(*args)
    except (HarnessError, KeyboardInterrupt):
        raise
    except (Exception, SystemExit) as exc:
        raise MethodError(method, hook, exc) from exc
    rule, problem = HOOK_RULES.get(hook, (None, lambda v: None))
    found = problem(value)
    if found:
        raise HarnessError(f"method '{method.name or type(method).__name__}': its {hook} "
                           f"hook {rule}; {found}", f"fix the method's {hook} hook")
    return value


class Method:
    """Base class: plain supervised fine-tuning. Override only what differs."""

    name: str = ""
    # the method's behaviour: bump it when a change moves its numbers (results of another
    # version are re-run; a comment or refactor keeps it). Declared in the class itself: a
    # subclass without its own is versioned by its source file's hash (harness/identity.py)
    version: str = ""
    description: str = ""
    defaults: dict[str, Any] = {}  # hyper-parameters, overridable from the suite YAML
    continual: bool = True  # False for references such as joint training
    tune: dict[str, list] = {}  # `harness tune`'s grid, chosen by the method's author: knob ->
    #   values (a setting or `train.lr`/`train.steps`), 4 settings in all; empty: the
    #   learning rate

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

    def state_dict(self, ctx: Context) -> dict:
        """What the method carries from one task to the next, for the cell's checkpoint:
        a dict of tensors, numbers, strings, lists, tuples, dicts and task Examples (what
        `torch.load(weights_only=True)` reads back). Default: nothing, right for a method
        whose attributes are all rebuilt by `setup`/`wrap_model` or within each task."""
        return {}

    def load_state_dict(self, state: dict, ctx: Context) -> None:
        """Take back what `state_dict` returned, after `setup` and `wrap_model` ran on the
        base model and the trainable weights were restored (ctx.model holds them)."""
