"""SDFT step: ours against our SFT step, and against TRL's experimental SDFTTrainer.

Rounds interleave our SFT steps, our SDFT steps and TRL's SDFT steps on fresh copies of
the same weights and data (batch 8, max length 192, lr 5e-5). An SDFT step includes its
rollouts (one 64-token-budget sample per prompt, T 1, top-p 1), so its cost depends on how
long the sampled completions are: their mean length is printed for both implementations.
"""

from __future__ import annotations

import statistics
import tempfile

from scripts.perf.common import (BATCH, LR, MAX_LEN, arith_train, bf16, device, fmt_spread,
                                    intervals, load)
from scripts.perf.sft import Ours, _stamps_callback

MAX_NEW = 64
# What TRL's SDFTTrainer is set to, to match our SDFT defaults (reported with the figures).
TRL_MATCHED = ("EMA teacher (rate 0.01, synced every step), full-vocabulary forward "
               "KL(teacher||student) (distillation_mode full_logits, alpha 0), first 3 completion "
               "tokens skipped, one 64-token completion per prompt at T 1, top-p 1, top-k 0, "
               "our teacher template, per-sequence mean then batch mean, no importance "
               "correction (one generation per step)")
TRL_MISMATCHED = ("TRL keeps a second full model copy as the EMA teacher (ours swaps EMA "
                  "tensors into the live network); both sample with model.generate, ours through "
                  "harness.generation (prompts sorted by length, left padding); different "
                  "random completions "
                  "(lengths differ, see mean completion tokens); TRL's loss counts a sequence "
                  "shorter than the skipped prefix as 0, ours leaves it out")


class OursSdft(Ours):
    """Ours with the rollouts' completion lengths and sampling time recorded."""

    def __init__(self, model_path: str, examples: list, params: dict | None = None):
        super().__init__("sdft", {"max_new_tokens": MAX_NEW, **(params or {})}, model_path,
                         examples)
        self.completion_tokens: list[float] = []
        rollouts = self.method.rollouts

        def counted(model, batch, ctx):
            student, teacher, sampled = rollouts(model, batch, ctx)
            self.completion_tokens.append(float((student.labels != -100).sum()) / len(batch.examples))
            return student, teacher, sampled

        self.method.rollouts = counted


class TrlSdft:
    """trl.experimental.sdft.SDFTTrainer set as close to our SDFT as its options allow."""

    def __init__(self, model_path: str, examples: list, steps: int):
        from datasets import Dataset
        from transformers import PrinterCallback
        from trl.experimental.sdft import SDFTConfig, SDFTTrainer

        from harness.methods.sdft import TEACHER_TEMPLATE

        model, tok = load(model_path)
        cuda = device().type == "cuda"
        template = TEACHER_TEMPLATE.replace("{query}", "{prompt}").replace(
            "{demonstration}", "{privileged_context}")
        args = SDFTConfig(
            output_dir=tempfile.mkdtemp(prefix="perf-trl-sdft-"), per_device_train_batch_size=BATCH,
            learning_rate=LR, lr_scheduler_type="cosine", warmup_steps=round(0.1 * steps),
            max_grad_norm=1.0, weight_decay=0.0, activation_checkpointing=False, bf16=bf16(),
            use_cpu=not cuda, report_to="none", save_strategy="no", disable_tqdm=True,
            max_steps=steps, seed=0, teacher_model_kind="ema", teacher_update_rate=0.01,
            teacher_sync_steps=1, distillation_mode="full_logits", distillation_alpha=0.0,
            num_loss_tokens_to_skip=3, num_generations=1, max_completion_length=MAX_NEW,
            temperature=1.0, top_p=1.0, top_k=0, teacher_prompt_template=template,
            max_prompt_length=MAX_LEN)
        rows = [{"prompt": [{"role": "user", "content": e.prompt}], "privileged_context": e.response}
                for e in examples]
        self.stamps = _stamps_callback()
        self.trainer = SDFTTrainer(model=model, args=args, processing_class=tok,
                                   train_dataset=Dataset.from_list(rows), callbacks=[self.stamps])
        self.trainer.remove_callback(PrinterCallback)
        self.completion_tokens: list[float] = []
        record = self.trainer._record_completion_metrics

        def counted(mode, batch):
            self.completion_tokens.append(float(batch["raw_completion_lengths"].float().mean()))
            return record(mode, batch)

        self.trainer._record_completion_metrics = counted

    def round(self, steps: int) -> list[float]:
        t = self.trainer
        self.stamps.begin, self.stamps.end = [], []
        t.optimizer = t.lr_scheduler = None
        t.train()
        return intervals(self.stamps.end)


def run(model_path: str, rounds: int, steps: int, with_trl: bool = True, say=print,
        sample_steps: int = 1) -> dict:
    """Rounds of (our SFT, our SDFT, TRL's SDFT) steps; ratios per round of median step
    times. With `sample_steps` > 1 also our SDFT sampling that many steps in one call,
    compared by whole rounds (its steps are uneven: the sampling falls on every N-th)."""
    examples = arith_train()
    sft, ours = Ours("sft", {}, model_path, examples), OursSdft(model_path, examples)
    ahead = OursSdft(model_path, examples, {"sample_steps": sample_steps}) \
        if sample_steps > 1 else None
    totals = {"sft": [], "sdft": [], "ahead": []}
    trl, why_not = None, "skipped: --no-trl-sdft"
    if with_trl:
        try:
            trl = TrlSdft(model_path, examples, steps)
        except Exception as exc:  # an experimental API: say why, do not print a figure
            why_not = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    times = {"sft": [], "sdft": [], "trl": []}
    for r in range(rounds):
        for name, side in (("sft", sft), ("sdft", ours), ("ahead", ahead)):
            if side is not None:
                done = side.round(steps)
                times.setdefault(name, []).append(done.seconds)
                totals[name].append(done.total / steps)
        if trl is not None:
            times["trl"].append(trl.round(steps))
        say(f"  round {r + 1}: s/step SFT {statistics.median(times['sft'][-1]):.2f}, SDFT "
            f"{statistics.median(times['sdft'][-1]):.2f}"
            + (f", TRL SDFT {statistics.median(times['trl'][-1]):.2f}" if trl else "")
            + (f"; whole round per step: SFT {totals['sft'][-1]:.2f}, SDFT "
               f"{totals['sdft'][-1]:.2f}, SDFT sample_steps {sample_steps} "
               f"{totals['ahead'][-1]:.2f}" if ahead else ""))
    out = summary({k: v for k, v in times.items() if k != "ahead"}, ours, trl, why_not)
    if ahead is not None:
        out["lines"] += ahead_lines(out, totals, sample_steps)
    return out


def ahead_lines(out: dict, totals: dict, sample_steps: int) -> list[str]:
    """`sample_steps` against on-policy SDFT and SFT, whole rounds per step, paired by round."""
    from scripts.perf.common import spread

    vs_sft = spread([a / b for a, b in zip(totals["ahead"], totals["sft"])])
    vs_sdft = spread([a / b for a, b in zip(totals["ahead"], totals["sdft"])])
    plain = spread([a / b for a, b in zip(totals["sdft"], totals["sft"])])
    out.update(ahead_over_sft=vs_sft, ahead_over_sdft=vs_sdft, sdft_over_sft_rounds=plain,
               sample_steps=sample_steps)
    return [f"whole rounds per step: SDFT / SFT {fmt_spread(plain)}; SDFT sample_steps "
            f"{sample_steps} / SFT {fmt_spread(vs_sft)}; / on-policy SDFT {fmt_spread(vs_sdft)}"]


def summary(times: dict, ours: OursSdft, trl: TrlSdft | None, why_not: str | None) -> dict:
    from scripts.perf.common import spread

    med = {k: [statistics.median(x) for x in v] for k, v in times.items()}
    vs_sft = spread([a / b for a, b in zip(med["sdft"], med["sft"])])
    out = {"sec_per_step": {k: statistics.median([s for x in v for s in x]) for k, v in times.items() if v},
           "sdft_over_sft": vs_sft,
           "ours_completion_tokens_mean": statistics.fmean(ours.completion_tokens),
           "lines": [f"SDFT step / our SFT step (time): {fmt_spread(vs_sft)}"]}
    if trl is None:
        out["lines"].append(f"TRL SDFT: not compared ({why_not})")
        return out
    vs_trl = spread([a / b for a, b in zip(med["sdft"], med["trl"])])
    out.update(sdft_over_trl=vs_trl, trl_matched=TRL_MATCHED, trl_mismatched=TRL_MISMATCHED,
               trl_completion_tokens_mean=statistics.fmean(trl.completion_tokens))
    out["lines"] += [f"SDFT step time ours/TRL SDFTTrainer: {fmt_spread(vs_trl)}",
                     f"  mean completion tokens per rollout: ours {out['ours_completion_tokens_mean']:.1f}"
                     f", TRL {out['trl_completion_tokens_mean']:.1f}",
                     f"  TRL matched: {TRL_MATCHED}", f"  TRL differs: {TRL_MISMATCHED}"]
    return out
