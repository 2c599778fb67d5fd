"""A cell's peak GPU memory against a GPU: the verdict, what makes a cell that does not fit
fit, and the report of `harness run --dry-run --gpu GPU`. harness/memory.py models the
bytes a cell keeps (the architecture, the settings, each component, the peak phase); this
module owns everything that needs a GPU's size: the GPUs known by name and the USABLE
share of one (`parse_gpu`), `estimate(cell, suite, gpu)` (the peak in GiB, whether it fits
and the advice), the search over FIXES for the fewest settings that make a cell fit and
the command-line options that say them (`fitting`, `fit_options`), the per-cell report
with its per-method options, and whether `--jobs` cells fit one GPU together. Apart from
the model because it is a consumer of it, a search and wording over its answers, and
changes for other reasons (new fixes, new GPUs, the report's words), not the byte counts.
A cell fits a GPU (named in GPUS or given in GiB) where the peak is at most USABLE of it.
"""

from __future__ import annotations

import dataclasses

from harness.errors import HarnessError
from harness.memory import GIB, Arch, Setup, _peak, architecture, setup_of

# Memory torch reports as total on each GPU (torch.cuda.get_device_properties), GiB.
GPUS = {"H100": 79.1, "H200": 139.8, "A100-80": 79.1, "A100-40": 39.4}
USABLE = 0.92


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
