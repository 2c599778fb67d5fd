"""LoRA through peft: the `lora` baseline's adapters, and the `lora` setting that lets any
method train adapters only (the methods under study offer it)."""

from __future__ import annotations

from harness.errors import HarnessError

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


class OptionalLoRA:
    """Mixin for a Method with a `lora` setting (list `"lora": False` in its `defaults`):
    False trains the full model; True (LORA_DEFAULTS) or a dict of LoRA settings wraps it
    with adapters, and only they train. Put it before Method: `class M(OptionalLoRA, Method)`."""

    def wrap_model(self, model, ctx):
        lora = self.params["lora"]
        return apply_lora(model, lora) if lora else model
