"""SFT step: ours (harness.training.train_task) against TRL's SFTTrainer, interleaved.

Both train a fresh copy of the same weights on the same 64 arith examples, batch 8, max
length 192, completion-only loss, lr 5e-5, warm-up then cosine, clipping at 1.0, no
packing, no padding-free. TRL gets our token ids (see `template_difference` for why).
A step's time is the interval between consecutive step-end timestamps (data loading,
optimiser and scheduler included, for both), so each round's first step is dropped.
"""

from __future__ import annotations

import collections
import dataclasses
import tempfile
import time

import torch

from scripts.perf.common import (BATCH, LR, MAX_LEN, arith_train, bf16, device, fmt_spread,
                                    intervals, load, spread)


@dataclasses.dataclass
class Round:
    seconds: list[float]  # per measured step (warm-up step dropped)
    tokens: list[int]  # non-padding tokens of the same steps
    total: float = 0.0  # the whole round, its first step included (ours only)

    @property
    def tokens_per_s(self) -> float:
        return sum(self.tokens) / sum(self.seconds)

    @property
    def sec_per_step(self) -> float:
        return sum(self.seconds) / len(self.seconds)


class Ours:
    """A method set up as the runner does (setup, wrap_model, train_data), trained one
    round at a time through train_task; the loss hook is wrapped to count tokens."""

    def __init__(self, name: str, params: dict, model_path: str, examples: list):
        from harness.config import TrainSettings
        from harness.methods import Context, make_method
        from harness.storage import Cache
        from harness.tasks import get_task

        model, tok = load(model_path)
        self.task, self.method = get_task("arith"), make_method(name, params)
        self.settings = TrainSettings(steps=1, lr=LR, batch_size=BATCH, max_len=MAX_LEN)
        self.ctx = Context(tokenizer=tok, device=device(), seed=0, model_id="perf",
                           model_path=model_path, train_settings=self.settings, cache=Cache(),
                           log=lambda m: None)
        self.ctx._bind(model)
        self.ctx.stream = [(self.task, examples)]
        self.method.setup(self.ctx)
        self.model = self.method.wrap_model(model, self.ctx)
        self.ctx._bind(self.model)
        self.data = self.method.train_data(self.task, examples, self.ctx)
        self.tokens: list[int] = []
        loss = self.method.loss

        def counted(model, batch, ctx):
            self.tokens.append(int(batch.attention_mask.sum()))
            return loss(model, batch, ctx)

        self.method.loss = counted  # call_hook looks the hook up on the instance

    def round(self, steps: int) -> Round:
        from harness.training import train_task

        stamps: list[float] = []
        self.tokens = []
        settings = dataclasses.replace(self.settings, steps=steps)
        self.ctx.train_settings = settings
        start = time.perf_counter()
        train_task(self.model, self.method, self.ctx, self.task, self.data, settings, 0,
                   on_step=lambda *_: stamps.append(time.perf_counter()))
        return Round(intervals(stamps), self.tokens[1:], stamps[-1] - start)


def _stamps_callback():
    from transformers import TrainerCallback

    class Stamps(TrainerCallback):
        def __init__(self):
            self.begin, self.end = [], []

        def on_step_begin(self, args, state, control, **kwargs):
            self.begin.append(time.perf_counter())

        def on_step_end(self, args, state, control, **kwargs):
            self.end.append(time.perf_counter())

    return Stamps()


def token_rows(tok, examples) -> list[dict]:
    """Our token ids and completion masks, as a pre-tokenised TRL dataset."""
    from harness.data import encode_example

    rows = []
    for e in examples:
        ids, n_prompt = encode_example(tok, e, MAX_LEN)
        rows.append({"input_ids": ids, "completion_mask": [0] * n_prompt + [1] * (len(ids) - n_prompt)})
    return rows


class Trl:
    """TRL's SFTTrainer on a copy of the model, one `train()` of `steps` steps per round.
    The collator is wrapped to count each batch's non-padding tokens."""

    def __init__(self, model_path: str, examples: list, steps: int):
        from datasets import Dataset
        from transformers import PrinterCallback
        from trl import SFTConfig, SFTTrainer

        model, tok = load(model_path)
        cuda = device().type == "cuda"
        args = SFTConfig(
            output_dir=tempfile.mkdtemp(prefix="perf-trl-"), per_device_train_batch_size=BATCH,
            max_length=MAX_LEN, completion_only_loss=True, packing=False, padding_free=False,
            learning_rate=LR, lr_scheduler_type="cosine", warmup_steps=round(0.1 * steps),
            max_grad_norm=1.0, weight_decay=0.0, activation_checkpointing=False, bf16=bf16(),
            use_cpu=not cuda, report_to="none", save_strategy="no", disable_tqdm=True,
            max_steps=steps, seed=0, dataloader_num_workers=0)
        self.stamps = _stamps_callback()
        self.trainer = SFTTrainer(model=model, args=args, processing_class=tok,
                                  train_dataset=Dataset.from_list(token_rows(tok, examples)),
                                  callbacks=[self.stamps])
        self.trainer.remove_callback(PrinterCallback)  # it prints every log dict
        self.tok, self.tokens = tok, []
        collate = self.trainer.data_collator

        def counted(rows):
            batch = collate(rows)
            self.tokens.append(int(batch["attention_mask"].sum()))
            return batch

        self.trainer.data_collator = counted

    def prepared(self, rows: list[dict]) -> list[dict]:
        """`rows` through TRL's own dataset preparation (tokenising, labels, truncation)."""
        from datasets import Dataset

        t = self.trainer
        return list(t._prepare_dataset(Dataset.from_list(rows), self.tok, t.args, False, None, "check"))

    @torch.no_grad()
    def loss(self, rows: list[dict]) -> float:
        """TRL's compute_loss on its collator's batch of `rows` (prepared), eval mode."""
        t = self.trainer
        t.model.eval()
        inputs = t._prepare_inputs(t.data_collator(self.prepared(rows)))
        return float(t.compute_loss(t.model, inputs))

    def round(self, steps: int) -> Round:
        self.stamps.begin, self.stamps.end, self.tokens = [], [], []
        self.trainer.optimizer = self.trainer.lr_scheduler = None  # fresh, as ours per task
        self.trainer.train()
        self.compute_only = [e - b for b, e in zip(self.stamps.begin, self.stamps.end)][1:]
        return Round(intervals(self.stamps.end), self.tokens[1:steps])


def template_difference(trl: Trl, tok, examples: list) -> str:
    """What TRL's own chat-template tokenisation labels that ours does not: its
    prompt-completion path keeps the template's trailing text after the end-of-turn
    token (SmolLM2/ChatML: a newline), ours stops at the end-of-turn token."""
    from harness.data import encode_example

    natural = trl.prepared([{"prompt": [{"role": "user", "content": e.prompt}],
                             "completion": [{"role": "assistant", "content": e.response}]}
                            for e in examples])
    ours = [encode_example(tok, e, MAX_LEN)[0] for e in examples]
    extra: collections.Counter = collections.Counter()
    for row in natural:
        mine = next((o for o in ours if row["input_ids"][: len(o)] == o), None)
        if mine is None:
            return "TRL's own tokenisation differs from ours inside the sequence (not only at its end)"
        extra[repr(tok.decode(row["input_ids"][len(mine):]))] += 1
    nat_loss = trl.loss([{"prompt": [{"role": "user", "content": e.prompt}],
                          "completion": [{"role": "assistant", "content": e.response}]}
                         for e in examples])
    if set(extra) == {"''"}:
        return f"TRL's own chat-template tokenisation gives the same ids (loss {nat_loss:.6f})"
    found = ", ".join(f"{k} x{v}" for k, v in extra.items())
    return (f"TRL's own chat-template tokenisation labels extra trailing tokens ({found}), "
            f"loss {nat_loss:.6f} on the same batch; so TRL is fed our token ids and masks")


@torch.no_grad()
def loss_agreement(ours: Ours, trl: Trl, examples: list) -> dict:
    """Same starting weights, same examples: our SFT loss and TRL's compute_loss."""
    from harness.data import collate

    batch = examples[:BATCH]
    ours.model.eval()
    mine = float(ours.method.loss(ours.model, collate(ours.ctx.tokenizer, batch, MAX_LEN)
                                  .to(device()), ours.ctx))
    ours.tokens = []  # the check is not a timed step
    theirs = trl.loss(token_rows(trl.tok, batch))
    note = template_difference(trl, trl.tok, batch)
    return {"ours": mine, "trl": theirs, "abs_diff": abs(mine - theirs), "note": note,
            "agree": abs(mine - theirs) <= 1e-5 * max(1.0, abs(mine))}


def run(model_path: str, rounds: int, steps: int, say=print) -> dict:
    """Loss check, then rounds of (our `steps` steps, TRL's `steps` steps)."""
    examples = arith_train()
    ours, trl = Ours("sft", {}, model_path, examples), Trl(model_path, examples, steps)
    check = loss_agreement(ours, trl, examples)
    say(f"SFT loss on the same batch: ours {check['ours']:.7f}  TRL {check['trl']:.7f}  "
        f"|diff| {check['abs_diff']:.1e}")
    say(f"  {check['note']}")
    if not check["agree"]:
        raise SystemExit(f"SFT losses disagree by {check['abs_diff']:.2e} (> 1e-5 relative): "
                         "the timings would compare different computations; stopping")
    mine, theirs, compute = [], [], []
    for r in range(rounds):
        mine.append(ours.round(steps))
        theirs.append(trl.round(steps))
        compute += trl.compute_only
        say(f"  round {r + 1}: ours {mine[-1].tokens_per_s:.0f} tok/s, "
            f"TRL {theirs[-1].tokens_per_s:.0f} tok/s")
    return summary(check, mine, theirs, compute)


def summary(check: dict, mine: list[Round], theirs: list[Round], compute: list[float]) -> dict:
    import statistics

    ratio = spread([a.tokens_per_s / b.tokens_per_s for a, b in zip(mine, theirs)])
    out = {"loss_check": check, "ratio_tokens_per_s": ratio}
    for name, runs in (("ours", mine), ("trl", theirs)):
        steps = [s for r in runs for s in r.seconds]
        tokens = [t for r in runs for t in r.tokens]
        out[name] = {"tokens_per_s": sum(tokens) / sum(steps),
                     "sec_per_step_median": statistics.median(steps),
                     "tokens_per_step_mean": sum(tokens) / len(tokens), "steps": len(steps)}
    out["trl"]["in_step_sec_median"] = statistics.median(compute) if compute else None
    out["line"] = f"SFT tokens/s ours/TRL: {fmt_spread(ratio)}"
    return out
