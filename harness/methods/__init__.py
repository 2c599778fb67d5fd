"""The public method API, and the registry of method names.

`__all__` is exactly the API that docs/writing-a-method.md documents (a test holds the two
together): the baselines, the methods under study and the examples import only these
names. The harness side, not part of the API: `METHODS` (names -> classes) and
`make_method`, `call_hook` and `MethodError` (how the harness calls a hook), and
`builtin_of` (what the estimates model a preset by).

A method is named by a built-in name (`harness list methods`), a name registered by an
installed package in the entry-point group `harness.methods` (this distribution registers
every method it ships there), or a file path and class,
`path/to/file.py:ClassName`, for a method not packaged yet.
"""

from __future__ import annotations

from harness.data import (Batch, completion_batch, encode_example, prompt_text, render_prompt,
                          user_turn_prefix)
from harness.errors import HarnessError
from harness.generation import finished
from harness.methods.api import Context, Method, MethodError, call_hook
from harness.methods.lora import LORA_DEFAULTS, OptionalLoRA, apply_lora
from harness.methods.nn import (anchor_distance, decoder_blocks, logits_at, response_logits,
                                response_token_loss, token_divergence, topk_log_probs,
                                trainable_anchor)
from harness.registry import Registry
from harness.seeding import derive, derive_seed, generator
from harness.tasks import Dialogue, Example, Plain

__all__ = [
    # api
    "Method", "Context",
    # nn
    "logits_at", "response_logits", "response_token_loss", "token_divergence", "topk_log_probs",
    "decoder_blocks", "trainable_anchor", "anchor_distance",
    # lora
    "LORA_DEFAULTS", "apply_lora", "OptionalLoRA",
    # data and helpers
    "Batch", "Example", "Dialogue", "Plain", "render_prompt", "prompt_text", "user_turn_prefix",
    "encode_example", "completion_batch", "finished", "derive_seed", "derive", "generator", "HarnessError",
]

# Every method is a plug-in (entry-point group `harness.methods`): the methods under study
# (harness/methods/), the baselines (baselines/) and the paper presets (harness_papers/) are
# registered in pyproject.toml exactly as a third party's are, so this table names none of
# them (a name here would tie the API module to the methods that import it, in a circle).
METHODS = Registry("method", Method, "harness.methods", {}, files=True,
                   hint="path/to/file.py:Class")

# the modules of the methods this distribution ships and ranks: the methods under study and
# the baselines (the paper presets are settings of these, not methods of their own)
SHIPPED_MODULES = ("harness.methods.", "baselines.")


def shipped() -> list[str]:
    """The names of the built-in methods (under study and baselines), from this distribution's
    own entry points: what the fingerprints and the version listing hold to version "1"."""
    from importlib.metadata import distribution

    return sorted(ep.name for ep in distribution("cl-harness").entry_points
                  if ep.group == "harness.methods" and ep.value.startswith(SHIPPED_MODULES))


def builtin_of(name: str) -> str:
    """The registered method that `name`'s class derives from furthest up (else `name`):
    what the memory and cost estimates model a preset (e.g. `sdft-trl`, an SDFT) or plugin
    by. A method that derives from no other registered method is modelled as itself."""
    try:
        cls = METHODS[name]
    except HarnessError:
        return name
    for klass in reversed(cls.__mro__):
        own = klass.__dict__.get("name")
        if isinstance(own, str) and own in METHODS and METHODS[own] is klass:
            return own
    return name


def make_method(spec: str, params: dict | None = None) -> Method:
    """An instance of the method named `spec` (a name or `file.py:Class`) with `params`."""
    return METHODS[spec](**(params or {}))
