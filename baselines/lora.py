"""LoRA (Hu et al. 2021) through peft: only low-rank adapters train; the base is frozen."""

from harness.methods.base import Method


class LoRA(Method):
    name = "lora"
    description = "low-rank adapters (peft) on the attention and MLP projections"
    defaults = {
        "r": 16,
        "alpha": 32,
        "dropout": 0.0,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj",
                           "gate_proj", "up_proj", "down_proj"],
    }

    def wrap_model(self, model, ctx):
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(
            r=self.params["r"], lora_alpha=self.params["alpha"],
            lora_dropout=self.params["dropout"], target_modules=self.params["target_modules"],
            task_type="CAUSAL_LM",
        )
        return get_peft_model(model, config)
