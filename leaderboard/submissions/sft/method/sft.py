"""SFT: full fine-tuning with cross-entropy on the response tokens (the reference)."""

from harness.methods import Method


class SFT(Method):
    name = "sft"
    description = "full fine-tuning, cross-entropy on response tokens"
