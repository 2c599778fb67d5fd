"""SFT: full fine-tuning with cross-entropy on the response tokens (the reference).
No state across tasks: a resumed cell needs only its weights."""

from harness.methods import Method


class SFT(Method):
    name = "sft"
    version = "1"  # bump when a change moves its numbers (docs/writing-a-method.md)
    description = "full fine-tuning, cross-entropy on response tokens"
