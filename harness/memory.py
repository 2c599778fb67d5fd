"""The peak GPU memory of a cell, estimated from the model's config.json (no weights
loaded), the suite's lengths and the cell's settings (harness/memory_settings.py). The
verdict against a GPU and what would make a cell that does not fit fit live in
harness/memory_fit.py.

`components(arch, setup)` gives the peak's components in bytes (`_peak`: the larger phase;
harness/memory_fit.py's `estimate(cell, suite, gpu)` gives them in GiB, 2^30 bytes): weights
(4 bytes a parameter, 2 with `precision: bf16-weights`; LoRA adapters float32), autocast
copies (bf16 autocast over float32 weights keeps a bf16 copy of each weight that trains,
and of the frozen ones backward needs), gradients, optimizer (AdamW's two moments in the
parameters' dtype, or 2 bytes a parameter for 8-bit AdamW; a paged one counted as on the
GPU), method copies (sdft's EMA teacher of the trainable weights, on the GPU unless
`teacher_device: cpu`; lwf's previous-task model; selfaug's frozen base model under full
fine-tuning, none under LoRA; ewc's Fisher and anchor; l2sp's anchor), activations saved
for backward (per token and block, measured on Llama blocks, tests/test_memory.py: 32h +
8kv + 16I bytes in float32, 28h + 4kv + 8I under bf16 autocast, 20h + 4kv + 8I with bf16
weights; with gradient checkpointing each block's input and one block recomputed), at
`train.batch_size` x `train.max_len` tokens (sdft: + its rollout; its sampling's KV cache
for a whole step's micro-batches at once), and logits at as many
positions (an upper bound; 12 bytes an element for cross-entropy, 36 for a full-vocabulary
KL, 12 where token_divergence works in chunks). Evaluation is its own phase (KV cache,
the probes' full logits). The peak is the larger phase. Upper bounds of what the harness
keeps, not a measurement: docs/performance.md says how they compare with one.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

from harness.errors import HarnessError

GIB = 1 << 30
KV_CHUNK = 1 << 28  # = harness.methods.nn.CHUNK_ABOVE (not imported: no torch needed here)
PROBE_TOKENS = 128  # a multiple-choice or drift probe sequence, tokens (an upper bound)


@dataclass(frozen=True)
class Arch:
    """What the estimate needs of a decoder-only model."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    params: int  # every parameter, tied embeddings once
    block_params: int  # one decoder block
    embed_params: int  # the input embeddings
    linears: tuple  # (name, in_features, out_features) of one block's projections

    @property
    def kv_width(self) -> int:
        return self.kv_heads * self.head_dim


def arch_from_config(config: dict) -> Arch:
    """The architecture of a config.json: from the Llama formula for Llama-shaped models
    (LLAMA_SHAPED, tests/test_newuser.py checks it against the meta count), else counted
    on a model built on the meta device (no memory), else the formula."""
    get = lambda *keys, default=None: next((config[k] for k in keys if config.get(k)), default)  # noqa: E731
    h = int(get("hidden_size", "n_embd", "d_model"))
    heads = int(get("num_attention_heads", "n_head"))
    kv = int(get("num_key_value_heads", default=heads))
    head_dim = int(get("head_dim", default=h // heads))
    inter = int(get("intermediate_size", "n_inner", "ffn_dim", default=4 * h))
    layers, vocab = int(get("num_hidden_layers", "n_layer")), int(config["vocab_size"])
    kind = config.get("model_type")
    if kind in LLAMA_SHAPED and "tie_word_embeddings" in config and not config.get("mlp_bias"):
        # the formula, exact, without importing the modelling code (seconds of a dry run)
        counted = _llama_count(h, heads, kv, head_dim, inter, layers, vocab,
                               bool(config["tie_word_embeddings"]),
                               bool(config.get("attention_bias", LLAMA_SHAPED[kind])))
    else:
        try:
            counted = _meta_count(json.dumps(config, sort_keys=True))
        except Exception:  # an architecture transformers does not know here: Llama's shapes
            counted = _llama_count(h, heads, kv, head_dim, inter, layers, vocab,
                                   bool(config.get("tie_word_embeddings", True)),
                                   bool(config.get("attention_bias", False)))
    params, block, embed, linears = counted
    return Arch(h, layers, heads, kv, head_dim, inter, vocab, params, block, embed, linears)


@functools.lru_cache(maxsize=16)
def _meta_count(config_json: str) -> tuple:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = json.loads(config_json)
    kind = config.pop("model_type")
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model(kind, **config))
    from harness.methods.nn import decoder_blocks

    block = decoder_blocks(model)[0]
    linears = tuple((n.rsplit(".", 1)[-1], m.in_features, m.out_features)
                    for n, m in block.named_modules() if isinstance(m, torch.nn.Linear))
    return (sum(p.numel() for p in model.parameters()), sum(p.numel() for p in block.parameters()),
            model.get_input_embeddings().weight.numel(), linears)


LLAMA_SHAPED = {"llama": False, "qwen2": True}  # model types -> q/k/v biases by default


def _llama_count(h, heads, kv, hd, inter, layers, vocab, tied, bias) -> tuple:
    linears = (("q_proj", h, heads * hd), ("k_proj", h, kv * hd), ("v_proj", h, kv * hd),
               ("o_proj", heads * hd, h), ("gate_proj", h, inter), ("up_proj", h, inter),
               ("down_proj", inter, h))
    block = sum(i * o for _, i, o in linears) + 2 * h
    block += (heads + 2 * kv) * hd if bias else 0
    embed = vocab * h
    return embed * (1 if tied else 2) + layers * block + h, block, embed, linears


def _hub(model_type, h, inter, layers, heads, kv, vocab, tied) -> dict:
    return {"model_type": model_type, "hidden_size": h, "intermediate_size": inter,
            "num_hidden_layers": layers, "num_attention_heads": heads,
            "num_key_value_heads": kv, "vocab_size": vocab, "tie_word_embeddings": tied}


# The architectures of the models the paper suites name, for an estimate where their
# config.json cannot be fetched (offline, or a gated model without a login).
KNOWN_CONFIGS = {
    "Qwen/Qwen2.5-3B-Instruct": _hub("qwen2", 2048, 11008, 36, 16, 2, 151936, True),
    "Qwen/Qwen2.5-7B-Instruct": _hub("qwen2", 3584, 18944, 28, 28, 4, 152064, False),
    "Qwen/Qwen2.5-14B-Instruct": _hub("qwen2", 5120, 13824, 48, 40, 8, 152064, False),
    "meta-llama/Meta-Llama-3-8B-Instruct": _hub("llama", 4096, 14336, 32, 32, 8, 128256, False),
    "meta-llama/Llama-2-7b-chat-hf": _hub("llama", 4096, 11008, 32, 32, 32, 32000, False),
}


@functools.lru_cache(maxsize=16)
def architecture(model: str) -> Arch:
    """The architecture of a model as the harness names it (embedded name, folder, hub id)."""
    from harness.models import model_config

    try:
        config = model_config(model)
    except HarnessError:
        if model not in KNOWN_CONFIGS:
            raise
        config = KNOWN_CONFIGS[model]
    return arch_from_config(config)


@dataclass(frozen=True)
class Setup:
    """The settings of one cell that decide its memory."""

    method: str
    params: dict
    precision: str  # auto | fp32 | bf16 | bf16-weights (auto: autocast, as on CUDA)
    checkpointing: bool
    optimizer: str
    batch: int
    grad_accum: int
    max_len: int
    eval_batch: int
    eval_tokens: int  # generation budget at evaluation
    probes: tuple

    @property
    def lora(self) -> dict | None:
        from harness.methods.lora import LORA_DEFAULTS

        given = LORA_DEFAULTS if self.method == "lora" else self.params.get("lora")
        return None if not given else {**LORA_DEFAULTS, **(given if isinstance(given, dict) else {})}


def setup_of(cell, suite) -> Setup:
    from harness.methods.settings import modelled_as
    from harness.tasks import get_task

    method, params = modelled_as(cell.method)  # a preset is estimated as the method it varies
    if method == "lora":
        params = {"lora": {k: params[k] for k in ("r", "alpha", "dropout", "target_modules")
                           if k in params}}
    train = cell.method.train
    budget = suite.eval.max_new_tokens or max(get_task(t).max_new_tokens for t in cell.tasks)
    return Setup(method, params, suite.precision, train.gradient_checkpointing,
                 train.optimizer, train.batch_size, train.grad_accum, train.max_len,
                 suite.eval.batch_size, int(budget), tuple(suite.probes))


def components(arch: Arch, s: Setup) -> tuple[dict, dict]:
    """(training phase, evaluation phase): bytes per component."""
    bf16_weights = s.precision == "bf16-weights"
    autocast = s.precision in ("auto", "bf16")
    wb = 2 if bf16_weights else 4
    lora = s.lora
    if lora:
        targets = set(lora["target_modules"])
        trainable = arch.layers * sum(lora["r"] * (i + o) for n, i, o in arch.linears
                                      if n in targets)
        tb = 4  # peft keeps adapters in float32
    elif s.method == "freeze":
        trainable = int(s.params.get("top_k", 6)) * arch.block_params
        trainable += arch.embed_params if s.params.get("train_embeddings") else 0
        tb = wb
    else:
        trainable, tb = arch.params, wb
    weights = arch.params * wb + (trainable * tb if lora else 0)
    offloaded = s.params.get("teacher_device") == "cpu"  # sdft's EMA in CPU memory
    copies = {"sdft": 0 if offloaded else trainable * tb, "lwf": weights, "ewc": 2 * trainable * tb,
              "l2sp": trainable * tb, "selfaug": 0 if lora else arch.params * wb}
    copy = copies.get(s.method, 0)
    # autocast's cache holds a bf16 copy of each weight that trains until the forward
    # ends; a frozen weight's copy lives on only where backward needs it (not recomputed)
    if not autocast:
        cast = 0
    elif lora:
        cast = 2 * trainable + (0 if s.checkpointing else 2 * arch.params)
    elif s.method == "freeze":
        cast = 2 * (trainable + arch.embed_params)  # the top blocks, and the output head
    else:
        cast = 2 * arch.params
    optimizer = 2 * trainable * (tb if s.optimizer == "adamw" else 1)
    h, kv, inter = arch.hidden, arch.kv_width, arch.intermediate
    per_token_layer = (32 * h + 8 * kv + 16 * inter if s.precision == "fp32" else
                       20 * h + 4 * kv + 8 * inter if bf16_weights else 28 * h + 4 * kv + 8 * inter)
    length = s.max_len
    rollout = int(s.params.get("max_new_tokens", 0)) if s.method == "sdft" else 0
    sequences = s.batch * (int(s.params.get("rollouts", 1)) if s.method == "sdft" else 1)
    tokens = sequences * (length + rollout)
    layers = int(s.params.get("top_k", 6)) if s.method == "freeze" else arch.layers
    if s.checkpointing:
        act = tokens * (layers * h * (2 if bf16_weights else 4) + per_token_layer)
    else:
        act = tokens * layers * per_token_layer
    act += tokens * (6 if bf16_weights else 9) * h  # embeddings, final norm
    kl = s.method in ("sdft", "selfaug", "lwf")
    positions = sequences * (rollout if s.method == "sdft" else length)
    elements = positions * arch.vocab
    logits = elements * (12 if not kl else 12 if elements > KV_CHUNK else 36)
    kv_bytes = 2 if (autocast or bf16_weights) else 4
    sampled = sequences * s.grad_accum * int(s.params.get("sample_steps", 1))  # sdft samples
    # a step's micro-batches (sample_steps steps') in one call
    rollout_kv = 2 * arch.layers * kv * sampled * (length + rollout) * kv_bytes if rollout else 0
    train = {"weights": weights, "autocast copies": cast, "gradients": trainable * tb,
             "optimizer": optimizer, "method copies": copy, "activations": act,
             "logits": logits}
    if rollout_kv > act + logits:  # sdft's sampling, before the forward, is the peak
        train.update({"activations": 0, "logits": 0, "rollout kv cache": rollout_kv})
    eval_kv = 2 * arch.layers * kv * s.eval_batch * (length + s.eval_tokens) * kv_bytes
    probe_batch = max([s.eval_batch] * ("knowledge" in s.probes) + [8] * ("drift" in s.probes)
                      + [0])
    evaluation = {"weights": weights, "autocast copies": 2 * trainable if autocast else 0,
                  "method copies": copy, "kv cache": eval_kv,
                  "logits": probe_batch * PROBE_TOKENS * arch.vocab * 10}
    return train, evaluation


def _peak(arch: Arch, s: Setup) -> tuple[float, str, dict]:
    train, evaluation = components(arch, s)
    t, e = sum(train.values()), sum(evaluation.values())
    return (t, "train", train) if t >= e else (e, "eval", evaluation)
