"""Layer freezing: train only the top k transformer blocks; everything else stays frozen.

A standard forgetting baseline in the SA-SFT paper: the lower blocks (and the embeddings,
tied to the output head in small models) keep the base model's features.
No state across tasks: `wrap_model` freezes the same blocks again in a resumed cell.
"""

from harness.methods import HarnessError, Method, decoder_blocks


class Freeze(Method):
    name = "freeze"
    version = "1"  # bump when a change moves its numbers (docs/writing-a-method.md)
    tune = {"top_k": [2, 6, 12, 24]}  # `harness tune`'s grid; of 30 blocks in SmolLM2-135M
    description = "train only the top k transformer blocks (embeddings optional)"
    defaults = {"top_k": 6, "train_embeddings": False}

    def wrap_model(self, model, ctx):
        blocks = decoder_blocks(model)
        k = self.params["top_k"]
        if not 0 < k <= len(blocks):
            raise HarnessError(f"freeze.top_k must be in 1..{len(blocks)}, got {k}",
                               "set methods.freeze.top_k in the suite")
        model.requires_grad_(False)
        for block in blocks[len(blocks) - k:]:
            block.requires_grad_(True)
        if self.params["train_embeddings"]:
            model.get_input_embeddings().requires_grad_(True)
        return model
