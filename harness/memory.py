"""The peak GPU memory of a cell, estimated from the model's config.json (no weights
loaded), the suite's lengths and the cell's settings (harness/memory_settings.py), with
what would make a cell that does not fit fit.

`estimate(cell, suite, gpu)` gives the peak's components in GiB (2^30 bytes): weights
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
the probes' full logits). The peak is the larger phase; a cell fits a GPU (named in GPUS
or given in GiB) where the peak is at most USABLE of it. Upper bounds of what the harness
keeps, not a measurement: docs/performance.md says how they compare with one.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass

from harness.errors import HarnessError

GIB = 1 << 30
# Memory torch reports as total on each GPU (torch.cuda.get_device_properties), GiB.
GPUS = {"H100": 79.1, "H200": 139.8, "A100-80": 79.1, "A100-40": 39.4}
USABLE = 0.92
KV_CHUNK = 1 << 28  # = harness.methods.nn.CHUNK_ABOVE (not imported: no torch needed here)
PROBE_TOKENS = 128  # a multiple-choice or drift probe sequence, tokens (an upper bound)


def parse_gpu(spec: str | float) -> tuple[str, float]:
    """(label, GiB) of `--gpu H100 | H200 | A100 | A100-40 | A100-80 | 24 | 24GiB`."""
    if isinstance(spec, (int, float)):
        return f"{spec:g} GiB", float(spec)
    text = str(spec).strip().upper().replace("GB", "").replace("GIB", "").replace(" ", "")
    aliases = {"A100": "A100-80", "A10080": "A100-80", "A10040": "A100-40"}
    name = aliases.get(text.replace("-", ""), text)
    if name in GPUS:
        return name, GPUS[name]
    try:
        gib = float(text)
    except ValueError:
        gib = 0.0
    if not 0 < gib < float("inf"):  # nan and inf too
        raise HarnessError(f"unknown GPU '{spec}'",
                           f"name one of {', '.join(GPUS)} or give its memory in GiB, e.g. 24")
    return f"{gib:g} GiB", gib


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


# What may make a cell fit, least change to its results first: checkpointing computes the
# same numbers; a smaller micro-batch with more accumulation the same effective batch; sdft's
# teacher in CPU memory the same numbers, slower. LoRA, which changes what is trained, only
# where nothing else is enough.
FIXES = (("train.gradient_checkpointing: true", {"checkpointing": True}),
         ("train.batch_size / 2 with train.grad_accum x 2", "halve"),
         ("eval.batch_size / 2", "halve-eval"),
         ("sdft.teacher_device: cpu", "teacher-cpu"),
         ("train.optimizer: adamw-8bit", {"optimizer": "adamw-8bit"}),
         ("precision: bf16-weights", {"precision": "bf16-weights"}),
         ("LoRA", "lora"))


def _apply(s: Setup, fix) -> Setup | None:
    if fix == "halve":
        return None if s.batch < 2 else dataclasses.replace(
            s, batch=s.batch // 2, grad_accum=s.grad_accum * 2)
    if fix == "halve-eval":
        return None if s.eval_batch < 2 else dataclasses.replace(s, eval_batch=s.eval_batch // 2)
    if fix == "teacher-cpu":
        return None if s.method != "sdft" or s.params.get("teacher_device") == "cpu" else \
            dataclasses.replace(s, params={**s.params, "teacher_device": "cpu"})
    if fix == "lora":
        if s.lora:
            return None
        if s.method == "sft":
            return dataclasses.replace(s, method="lora", params={"lora": True})
        from harness.methods import METHODS

        try:
            has_lora = "lora" in METHODS[s.method].defaults
        except HarnessError:
            has_lora = False
        return dataclasses.replace(s, params={**s.params, "lora": True}) if has_lora else None
    changed = dataclasses.replace(s, **fix)
    return None if changed == s else changed


def advice(arch: Arch, s: Setup, gib: float) -> str:
    """The fewest settings of FIXES that make the cell fit on `gib` GiB (the first such
    set in FIXES' order, sets with LoRA last), halving the batches further where all of
    them are not enough; or that nothing does."""
    return fitting(arch, s, gib)[0]


def fitting(arch: Arch, s: Setup, gib: float) -> tuple[str, Setup | None]:
    """advice()'s words, and the setup that fits (None where none does)."""
    import itertools

    limit = USABLE * gib * GIB
    combos = [c for k in range(1, len(FIXES) + 1) for c in itertools.combinations(FIXES, k)]
    for combo in sorted(combos, key=lambda c: FIXES[-1] in c):  # stable: LoRA last
        changed = s
        for _, fix in combo:
            changed = _apply(changed, fix) if changed is not None else None
        if changed is not None and (peak := _peak(arch, changed)[0]) <= limit:
            return (f"fits with {', '.join(label for label, _ in combo)} ({peak / GIB:.1f} GiB)",
                    changed)
    current, labels = s, []
    for label, fix in FIXES:
        changed = _apply(current, fix) if not str(fix).startswith("halve") else None
        current, labels = (changed, labels + [label]) if changed is not None else (current, labels)
    while _peak(arch, current)[0] > limit and (current.batch > 1 or current.eval_batch > 1):
        current = _apply(current, "halve") or current
        current = _apply(current, "halve-eval") or current
    peak, batches = _peak(arch, current)[0], (f"train.batch_size {current.batch} and "
                                              f"eval.batch_size {current.eval_batch}")
    if peak <= limit:
        return f"fits with {', '.join(labels)}, {batches} ({peak / GIB:.1f} GiB)", current
    return (f"does not fit even with {', '.join(labels)}, {batches} ({peak / GIB:.1f} GiB): "
            "use a GPU with more memory or a smaller model"), None


def fit_options(method: str, s: Setup, fits: Setup) -> list[str]:
    """The command-line options (and suite settings) that turn setup `s` of `method` into
    `fits`: what the user types to make the cell fit."""
    train = {"gradient_checkpointing": (s.checkpointing, fits.checkpointing),
             "batch_size": (s.batch, fits.batch), "grad_accum": (s.grad_accum, fits.grad_accum),
             "optimizer": (s.optimizer, fits.optimizer)}
    options = [f"--set {method}.train.{k}={str(new).lower() if isinstance(new, bool) else new}"
               for k, (old, new) in train.items() if old != new]
    if fits.params.get("teacher_device") != s.params.get("teacher_device"):
        options.append(f"--set {method}.teacher_device={fits.params['teacher_device']}")
    if fits.precision != s.precision:
        options.append(f"--precision {fits.precision}")
    if fits.lora and not s.lora:
        options.append("--methods lora (instead of sft)" if s.method == "sft" and
                       fits.method == "lora" else f"--set {method}.lora=true")
    if fits.eval_batch != s.eval_batch:
        options.append(f"eval.batch_size: {fits.eval_batch} in the suite")
    return options


def estimate(cell, suite, gpu_gib: float | str | None = None) -> dict:
    """A cell's estimated peak GPU memory and its components (GiB), and where a GPU is
    given (a name or GiB), whether it fits and which setting would make it fit."""
    arch = architecture(cell.model)
    s = setup_of(cell, suite)
    peak, phase, parts = _peak(arch, s)
    out = {"cell": cell.id, "params": arch.params, "peak_gib": round(peak / GIB, 2),
           "phase": phase, "components": {k: round(v / GIB, 2) for k, v in parts.items()},
           "settings": {"precision": s.precision, "optimizer": s.optimizer,
                        "gradient_checkpointing": s.checkpointing, "lora": bool(s.lora),
                        "batch_size": s.batch, "max_len": s.max_len}}
    if gpu_gib is not None:
        label, gib = parse_gpu(gpu_gib)
        out.update(gpu=label, gpu_gib=gib, fits=peak <= USABLE * gib * GIB)
        out["advice"] = None if out["fits"] else advice(arch, s, gib)
    return out


def report(suite, gpu: str | float, jobs: int | None = None,
           devices: list[str] | None = None) -> list[str]:
    """Lines for `harness run --dry-run --gpu GPU`: each cell's peak, the verdict and the
    advice, how many cells do not fit, and whether `--jobs` cells fit one GPU together."""
    from harness.grid import expand

    label, gib = parse_gpu(gpu)
    lines = [f"peak GPU memory per cell (estimate; {fit_limit(label, gib)}):"]
    misfits = 0
    for cell in expand(suite):
        e = estimate(cell, suite, gib)
        parts = ", ".join(f"{k} {v:.1f}" for k, v in e["components"].items() if v >= 0.05)
        verdict = "fits" if e["fits"] else f"DOES NOT FIT (> {USABLE * gib:.1f} GiB): " \
            f"{e['advice']}"
        misfits += not e["fits"]
        lines.append(f"  {cell.id}: {e['peak_gib']:.1f} GiB ({e['phase']}: {parts}) {verdict}")
    lines.append(f"{misfits} of {len(lines) - 1} cells do not fit on {label}" if misfits
                 else f"every cell fits on {label}")
    lines += fit_lines(suite, gib) if misfits else []
    shared = sharing_line(suite, gib, label, jobs, devices)
    return lines + ([shared] if shared else [])


def fit_lines(suite, gib: float) -> list[str]:
    """Per method whose cells do not all fit: the options that make its largest cell fit
    (the estimate's answer for that cell; a cell of other lengths may need less)."""
    from harness.grid import expand

    worst: dict[str, tuple] = {}
    for cell in expand(suite):
        arch, s = architecture(cell.model), setup_of(cell, suite)
        peak = _peak(arch, s)[0]
        if peak > USABLE * gib * GIB and peak > worst.get(cell.method.name, (0,))[0]:
            worst[cell.method.name] = (peak, arch, s)
    lines = []
    for method, (_, arch, s) in worst.items():
        words, fits = fitting(arch, s, gib)
        lines.append(f"  {method}: " + (" ".join(fit_options(method, s, fits)) if fits else words))
    return ["to make every cell fit (per method, for its largest cell; checkpointing and "
            "accumulation leave the results as they are, LoRA and 8-bit states do not):"] + lines


def fit_limit(label: str, gib: float) -> str:
    """The limit a cell's peak is held to, as the limit: the GPU's memory is not it."""
    total = " of" if label.endswith("GiB") else f" of the {label}'s"
    return f"fits if peak <= {USABLE * gib:.1f} GiB ({USABLE:.0%}{total} {gib:g} GiB)"


def sharing(jobs: int | None, devices: list[str] | None) -> int:
    """How many cells may run at once on one GPU: `--jobs` shared round-robin over
    `--devices` (all on one GPU without it)."""
    return -(-(jobs or 1) // max(1, len(devices or ())))


def shared_fit(suite, gib: float, at_once: int) -> dict:
    """With `at_once` cells on one GPU of `gib` GiB: the worst case (the largest peaks
    together; each worker's CUDA context comes out of the (1 - USABLE) margin) and the most
    cells a GPU holds at once in that case (0: not even the largest alone)."""
    from harness.grid import expand

    peaks = sorted((estimate(c, suite)["peak_gib"] for c in expand(suite)), reverse=True)
    limit, total, most = USABLE * gib, 0.0, 0
    for peak in peaks:
        if total + peak > limit:
            break
        total, most = total + peak, most + 1
    worst = sum(peaks[:at_once])
    return {"at_once": at_once, "worst_gib": round(worst, 2), "fits": worst <= limit,
            "most": most}


def sharing_line(suite, gib: float, label: str, jobs: int | None,
                 devices: list[str] | None) -> str | None:
    """The verdict on `--jobs` for one GPU, or None where each GPU runs one cell."""
    at_once = sharing(jobs, devices)
    if at_once < 2:
        return None
    f = shared_fit(suite, gib, at_once)
    head = (f"--jobs {jobs}: up to {at_once} cells at once on one GPU ({label}); the {at_once} "
            f"largest peaks sum to {f['worst_gib']:.1f} GiB")
    if f["fits"]:
        return f"{head}: fits"
    return (f"{head}: DOES NOT FIT ({fit_limit(f'{gib:g} GiB', gib)}): use --jobs "
            f"{max(1, f['most']) * max(1, len(devices or ()))}; a cell that runs out of "
            "memory fails alone and re-runs with the next `harness run`")
