"""Settings that cannot work on a model, refused before any cell runs: read from the
model's config.json alone (no weights load), so a dry run and `harness submit` refuse them
too (docs/errors.md: beyond-the-model)."""

from __future__ import annotations

from pathlib import Path

from harness.config import Suite, cell_train
from harness.yamlio import fail

_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")
_HIDDEN_KEYS = ("hidden_size", "n_embd", "d_model")


def check_model_limits(suite: Suite, models: list[str]) -> None:
    """Settings that cannot work on a model, refused before any cell runs (inside a cell
    they fail late, with an index error): a generation budget (eval.max_new_tokens, a
    method's max_new_tokens) or a training sequence (max_len) beyond the model's context,
    a LoRA rank beyond its hidden size. Read from config.json alone: no weights load."""
    from harness.methods.lora import LORA_DEFAULTS
    from harness.methods.settings import in_force
    from harness.models import model_config

    for model in models:
        config = model_config(model)
        context = next((config[k] for k in _CONTEXT_KEYS if isinstance(config.get(k), int)), None)
        hidden = next((config[k] for k in _HIDDEN_KEYS if isinstance(config.get(k), int)), None)
        beyond = f"beyond model '{model}''s context of {context} tokens"
        if context and (suite.eval.max_new_tokens or 0) >= context:
            fail(f"suite {Path(suite.path).name}, eval", f"max_new_tokens "
                 f"{suite.eval.max_new_tokens} is {beyond}", f"use fewer, e.g. max_new_tokens: "
                 f"{min(256, context // 2)}")
        for method in suite.methods:
            where = f"suite {Path(suite.path).name}, methods.{method.name}"
            budget = method.params.get("max_new_tokens")
            if context and isinstance(budget, int) and budget >= context:
                fail(where, f"max_new_tokens {budget} is {beyond}",
                     f"use fewer, e.g. max_new_tokens: {min(256, context // 2)}")
            for stream in suite.streams:
                max_len = cell_train(suite, stream, method).max_len
                if context and max_len > context:
                    fail(where, f"train.max_len {max_len} (stream '{stream}') is {beyond}",
                         f"use at most max_len: {context}")
            settings = in_force(method) or method.params
            lora = settings.get("lora", settings if "target_modules" in settings else None)
            lora = {**LORA_DEFAULTS, **lora} if isinstance(lora, dict) else (
                LORA_DEFAULTS if lora is True else None)
            if hidden and lora and isinstance(lora.get("r"), int) and lora["r"] > hidden:
                fail(where, f"LoRA r {lora['r']} is beyond model '{model}''s hidden size "
                     f"{hidden}", f"use a rank well below it, e.g. r: {min(16, hidden)}")
