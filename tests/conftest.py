"""Shared fixtures: a tiny random Llama with a real (small, byte-level BPE) tokenizer and a
ChatML chat template, built from a config and saved to disk. No downloads."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

USER_CACHE = os.environ.get("HARNESS_CACHE")  # before any test isolates its cache
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _corpus() -> list[str]:
    from harness.tasks import all_tasks

    probes = Path(__file__).resolve().parent.parent / "benchmarks" / "probes"
    lines = json.loads((probes / "general_prompts.json").read_text())
    lines += [q["question"] + " " + " ".join(q["choices"])
              for q in json.loads((probes / "knowledge.json").read_text())]
    for cls in all_tasks().values():
        split = cls().split(40, 10, 0)
        lines += [e.prompt + " " + e.response for e in split.train + split.test]
    return lines


def build_tiny_model(folder: Path, seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    bpe.train_from_iterator(_corpus(), trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|im_start|>",
                                  eos_token="<|im_end|>", pad_token="<|im_end|>")
    tok.chat_template = CHATML
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        tie_word_embeddings=True, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture
def tiny(tiny_model_dir):
    """(model, tokenizer) freshly loaded through the harness's own loader."""
    from harness.models import load_model

    model, tok, _ = load_model(str(tiny_model_dir), "cpu")
    return model, tok


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own cache, so cached base rows never leak between tests."""
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
