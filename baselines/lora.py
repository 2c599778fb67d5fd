"""LoRA (Hu et al. 2021) through peft: only low-rank adapters train; the base is frozen.
No state across tasks: `wrap_model` adds the adapters again in a resumed cell and the
checkpoint's trainable weights (the adapters) replace their fresh values."""

from harness.methods import LORA_DEFAULTS, Method, apply_lora


class LoRA(Method):
    name = "lora"
    version = "1"  # bump when a change moves its numbers (docs/writing-a-method.md)
    description = "low-rank adapters (peft) on the attention and MLP projections"
    defaults = dict(LORA_DEFAULTS)

    def wrap_model(self, model, ctx):
        return apply_lora(model, self.params)
