"""Device time of a cell on a named GPU, estimated by arithmetic for `--dry-run --gpu`
(nothing is measured; docs/paper-suites.md says how far to trust it).

Training: tokens x FLOPs per token / (the GPU's bf16 dense peak x TRAIN_MFU), with every
sequence counted at `train.max_len` and the data at the suite's caps (`data.n_train`), so
an upper bound where the data are shorter or fewer; FLOPs per token and parameter: 6 for
full fine-tuning (freeze too: an upper bound), 4 under LoRA (no weight gradients of the
frozen base), +2 with gradient
checkpointing (a second forward), +2 for a second model's forward (sdft's teacher,
selfaug's and lwf's references). Generation is bound by memory bandwidth: a decoding step
reads the weights once, at DECODE_EFFICIENCY of the GPU's bandwidth (Hugging Face
`generate`, not vLLM); sdft samples once a step, sdft-rewrite and sa-sft once a task at
their batch, evaluation once per row for every task the row evaluates (`eval.rows`) and
every `task:` probe at `eval.batch_size` with the budget in force. lm-eval probes are not counted.
"""

from __future__ import annotations

import math

from harness.tasks import get_task
from harness.training import total_steps

# bf16 dense peak FLOP/s and memory bandwidth (bytes/s) of the SXM parts, from the vendor's
# data sheets
GPU_SPECS = {"H100": (989e12, 3.35e12), "H200": (989e12, 4.8e12),
             "A100-80": (312e12, 2.04e12), "A100-40": (312e12, 1.56e12)}
TRAIN_MFU = 0.35  # share of peak a transformers fine-tuning step reaches [assumption]
DECODE_EFFICIENCY = 0.25  # share of bandwidth a `generate` step reaches [assumption]
REWRITE_BATCH = 64  # sdft-rewrite's generation batch (harness/methods/sdft_rewrite.py)


def cell_seconds(cell, suite, arch, gpu: str) -> dict | None:
    """{"train", "generate", "evaluate"} seconds of `cell` on `gpu` (a name in GPU_SPECS;
    None for a GPU given only by its memory); "evaluate" includes the base-model row,
    "base_row" on its own."""
    if gpu not in GPU_SPECS:
        return None
    peak, bandwidth = GPU_SPECS[gpu]
    from harness.methods.settings import modelled_as

    train, (method, params) = cell.method.train, modelled_as(cell.method)
    lora = bool(params.get("lora")) or method == "lora"
    n = suite.data.n_train
    steps = len(cell.tasks) * total_steps(train, n)
    per_token = (4 if lora else 6) + 2 * train.gradient_checkpointing \
        + 2 * (method in ("sdft", "selfaug", "lwf"))
    tokens = steps * train.batch_size * train.grad_accum * train.max_len \
        * (int(params.get("rollouts", 1)) if method == "sdft" else 1)  # completions a prompt
    weight_bytes = arch.params * (2 if suite.precision == "bf16-weights" else 4)  # autocast
    # reads the float32 weights to cast them
    decode = weight_bytes / (bandwidth * DECODE_EFFICIENCY)  # seconds a decoding step
    calls = 0  # decoding steps
    if method == "sdft":  # one call per sample_steps steps; the later steps' rollouts get a
        ahead = int(params.get("sample_steps", 1))  # forward pass for their log-probs
        calls = math.ceil(steps / ahead) * int(params.get("max_new_tokens", 1024))
        per_token += 2 * (ahead - 1) / ahead
    elif method == "sdft-rewrite":
        calls = len(cell.tasks) * math.ceil(n / REWRITE_BATCH) * int(params.get("max_new_tokens", 512))
    elif method == "sa-sft":
        asked = n * float(params.get("ratio", 1.0)) * float(params.get("oversample", 2.0))
        calls = math.ceil(asked / int(params.get("batch_size", 64))) * (
            int(params.get("user_tokens", 64)) + int(params.get("answer_tokens", 256)))
    T = len(cell.tasks)
    probed = [p.split(":")[1] for p in suite.probes if p.startswith("task:")]

    def row(names) -> int:  # decoding steps of one evaluation row
        return sum(math.ceil(suite.data.n_test / suite.eval.batch_size)
                   * (suite.eval.max_new_tokens or get_task(t).max_new_tokens) for t in names)

    base = row(list(cell.tasks) + probed)
    trained = sum(row([cell.tasks[j] for j in suite.eval.row_tasks(i, T)]
                      + (probed if suite.eval.probes_run(i, T) else []))
                  for i in range(1, T + 1))  # what `eval.rows` and `eval.probe_rows` run
    return {"train": tokens * per_token * arch.params / (peak * TRAIN_MFU),
            "generate": calls * decode, "evaluate": (base + trained) * decode,
            "base_row": base * decode}


def report_line(suite, gpu: str) -> str | None:
    """`--dry-run --gpu`: the grid's estimated GPU-hours, and per method."""
    from harness.grid import expand
    from harness.memory import architecture

    if gpu not in GPU_SPECS:
        return None
    per_method: dict[str, float] = {}
    for cell in expand(suite):
        s = cell_seconds(cell, suite, architecture(cell.model), gpu)
        per_method[cell.method.name] = per_method.get(cell.method.name, 0.0) + sum(
            s[k] for k in ("train", "generate", "evaluate"))
    total = sum(per_method.values()) / 3600
    methods = ", ".join(f"{m} {s / 3600:.2g}" for m, s in per_method.items())
    return (f"GPU-hours on one {gpu} (estimate, an upper bound: sequences at train.max_len, "
            f"data at the suite's caps; {TRAIN_MFU:.0%} of peak in training, "
            f"{DECODE_EFFICIENCY:.0%} of bandwidth in generation; lm-eval probes not "
            f"counted): {total:.3g} in all; {methods}")
