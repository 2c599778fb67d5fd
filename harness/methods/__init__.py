"""The public method API, and the registry of method names.

`__all__` is exactly the API that docs/writing-a-method.md documents (a test holds the two
together): the baselines, the methods under study and the examples import only these
names. The harness side, not part of the API: `METHODS` (names -> classes) and
`make_method`, `call_hook` and `MethodError` (how the harness calls a hook), and
`builtin_of` (what the estimates model a preset by).

A method is named by a built-in name (`harness list methods`), a name registered by an
installed package in the entry-point group `harness.methods`, or a file path and class,
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
from harness.seeding import derive_seed
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
    "encode_example", "completion_batch", "finished", "derive_seed", "HarnessError",
]

METHODS = Registry("method", Method, "harness.methods", {
    "dft": "baselines.dft:DFT",
    "ewc": "baselines.ewc:EWC",
    "freeze": "baselines.freeze:Freeze",
    "l2sp": "baselines.l2sp:L2SP",
    "lora": "baselines.lora:LoRA",
    "lwf": "baselines.lwf:LwF",
    "mix-external": "baselines.mix_external:MixExternal",
    "multitask": "baselines.multitask:Multitask",
    "replay": "baselines.replay:Replay",
    "sft": "baselines.sft:SFT",
    # the methods under study
    "sa-sft": "harness.methods.sa_sft:SASFT",
    "sdft": "harness.methods.sdft:SDFT",
    "sdft-rewrite": "harness.methods.sdft_rewrite:SDFTRewrite",
    "selfaug": "harness.methods.selfaug:SelfAug",
}, files=True, hint="path/to/file.py:Class")


def builtin_of(name: str) -> str:
    """The built-in method that `name`'s class is or derives from (else `name`): what the
    memory and cost estimates model a preset (e.g. `sdft-trl`, an SDFT) or plugin by."""
    try:
        cls = METHODS[name]
    except HarnessError:
        return name
    for klass in cls.__mro__:
        own = klass.__dict__.get("name")
        if own in METHODS.builtins and METHODS[own] is klass:
            return own
    return name


def make_method(spec: str, params: dict | None = None) -> Method:
    """An instance of the method named `spec` (a name or `file.py:Class`) with `params`."""
    return METHODS[spec](**(params or {}))
