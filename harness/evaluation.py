"""Evaluate a live model on a stream's tasks and on the probes: one row of R and P.

Stream tasks go through lm-eval in process (HFLM over the live model, a task YAML over
local JSON, greedy decoding, the chat template applied, per-item samples kept for paired
statistics). All tasks and lm-eval-based probes of a row share one `simple_evaluate` call;
tasks that bring their own template (`Task.chat_template` False: the papers' Alpaca-style
prompts) are evaluated in a second call without the chat template.

A row may evaluate some of the tasks only (`eval.rows: own-and-final`): the others' entries
are None. Exactly: lm-eval batches items of tasks that share a generation budget together,
and a batch's padding can move a greedy answer, so the batches that hold a wanted item are
generated whole, as a full row forms them; only batches with none are skipped.
A row may run no probe (`eval.probe_rows: final`): their lm-eval tasks are skipped the same
way (a log-likelihood call of skipped tasks alone is not computed) and their values None.
"""

from __future__ import annotations

import contextlib
import os

import logging
import time
from dataclasses import dataclass, field

from harness.config import EvalSettings
from harness.lmeval_tasks import write_task
from harness.precision import autocast
from harness.probes import LmEvalProbe, Probe, RowState
from harness.seeding import isolated
from harness.storage import cache_dir, stable_hash
from harness.tasks import Split, Task

GENERAL_PROMPTS_KEY = "general-prompts"  # key of the general prompts' answers in Row.outputs


@dataclass
class Row:
    scores: dict[str, float | None]  # task -> mean score; None: not evaluated in this row
    items: dict[str, list[float] | None]  # task -> per-item scores, in test-set order
    outputs: dict[str, list[str] | None]  # task -> the model's answer per item (inspection)
    probes: dict[str, float]
    seconds: float
    probe_seconds: float = 0.0  # of `seconds`, spent measuring the probes
    content: dict[str, list[float]] = field(default_factory=dict)  # task -> per-item content
    #   scores (Task.score_content: the answer whatever its wrapper); `items` are strict


def _capped(probe, max_new_tokens: int | None):
    """A probe that generates with a task's budget (`task:` probes) under the suite's
    `eval.max_new_tokens` where one is set, as the stream's tasks are (a copy: probes are
    shared)."""
    if max_new_tokens is None or not hasattr(probe, "max_new_tokens"):
        return probe
    import copy

    capped = copy.copy(probe)
    capped.max_new_tokens = max_new_tokens
    return capped


class Evaluator:
    """Scores a model on fixed test sets and probes; built once per cell."""

    def __init__(self, tasks: list[Task], splits: list[Split], probes: list[Probe],
                 settings: EvalSettings, tokenizer):
        import lm_eval.tasks

        self.tasks, self.probes, self.settings, self.tokenizer = tasks, probes, settings, tokenizer
        key = stable_hash([[s.content_hash for s in splits], [p.name for p in probes],
                           settings.max_new_tokens])
        workdir = cache_dir() / "lmeval" / key
        self.task_names = [write_task(t, s, workdir / t.name, settings.max_new_tokens)
                           for t, s in zip(tasks, splits)]
        self.probe_tasks = [_capped(p, settings.max_new_tokens).lmeval_task(workdir)
                            for p in probes]
        logging.getLogger("lm-eval").setLevel(logging.ERROR)
        logging.getLogger("lm_eval").setLevel(logging.ERROR)
        needs_defaults = any(isinstance(p, LmEvalProbe) for p in probes)
        self.task_manager = lm_eval.tasks.TaskManager(include_path=str(workdir),
                                                      include_defaults=needs_defaults)

    def evaluate(self, model, tasks: range | None = None, probes: bool = True) -> Row:
        """One row: the tasks at indices `tasks` (default: all; the others' entries are
        None) and, where `probes`, every probe (else their values are None)."""
        start = time.perf_counter()
        wanted = range(len(self.tasks)) if tasks is None else tasks
        live = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft
        was_training = live.training
        live.eval()
        lm = _quiet_hflm()(pretrained=live, tokenizer=self.tokenizer,
                           batch_size=self.settings.batch_size)
        lm.skip = frozenset([n for j, n in enumerate(self.task_names) if j not in wanted]
                            + ([] if probes else [n for n in self.probe_tasks if n]))
        # tasks in their own template (`chat_template` False) go in a second call
        raw = [n for t, n in zip(self.tasks + self.probes, self.task_names + self.probe_tasks)
               if n and not getattr(t, "chat_template", True)]
        names = [n for n in self.task_names + self.probe_tasks if n and n not in raw]
        # No global reseeding (lm-eval's defaults reset random/numpy/torch), and whatever
        # the evaluation draws leaves the caller's generators as they were.
        with isolated(), autocast(live.device):
            out = self._simple_evaluate(lm, names, chat=True) if names else \
                {"results": {}, "samples": {}}
            if raw:
                extra = self._simple_evaluate(lm, raw, chat=False)
                for key in ("results", "samples"):
                    out[key] = {**out[key], **extra[key]}
        scores, items, outputs, content = {}, {}, {}, {}
        for j, (task, name) in enumerate(zip(self.tasks, self.task_names)):
            if j not in wanted:
                for found in (scores, items, content, outputs):
                    found[task.name] = None
                continue
            samples = sorted(out["samples"][name], key=lambda s: s["doc_id"])
            items[task.name] = [float(s["score"]) for s in samples]
            content[task.name] = [float(s["content"]) for s in samples]
            outputs[task.name] = [s["filtered_resps"][0] for s in samples]
            scores[task.name] = sum(items[task.name]) / len(items[task.name])
        state = RowState(live, self.tokenizer, out)
        probes_started = time.perf_counter()
        with isolated():
            values = {p.name: p.measure(state) if probes else None for p in self.probes}
        probe_seconds = time.perf_counter() - probes_started
        if state.answered:  # what the model now says to general prompts, for inspection
            outputs[GENERAL_PROMPTS_KEY] = state.general_answers()
        live.train(was_training)
        return Row(scores, items, outputs, values, time.perf_counter() - start, probe_seconds,
                   content)

    def _simple_evaluate(self, lm, names: list[str], chat: bool) -> dict:
        import lm_eval

        with _no_environment_report():
            return lm_eval.simple_evaluate(
                model=lm, tasks=names, task_manager=self.task_manager, num_fewshot=0,
                apply_chat_template=chat, log_samples=True, bootstrap_iters=0,
                verbosity="ERROR", random_seed=None, numpy_random_seed=None,
                torch_random_seed=None,
                # code tasks (e.g. humaneval) execute the model's code: only with the user's
                # consent, the variable Hugging Face's code_eval metric asks for too
                confirm_run_unsafe_code=os.environ.get("HF_ALLOW_CODE_EVAL") == "1",
            )


def _no_environment_report():
    """lm_eval stamps every result with the working directory's git hash (a `git`
    subprocess, which prints "fatal: not a git repository" outside a checkout) and torch's
    environment report (~0.5 s of subprocesses a call); a cell records its hardware and
    versions once itself, so evaluation skips both. Only what lm_eval has is replaced."""
    from unittest import mock

    import lm_eval.evaluator as evaluator

    skipped = {"get_git_commit_hash": lambda: None, "add_env_info": lambda storage: None}
    present = {k: v for k, v in skipped.items() if hasattr(evaluator, k)}
    return mock.patch.multiple(evaluator, **present) if present else contextlib.nullcontext()


def _quiet_hflm():
    """HFLM without its tqdm bars (our own progress display covers evaluation), that
    generates only the batches holding an item of a task not in `skip`."""
    from lm_eval.models.huggingface import HFLM

    class QuietHFLM(HFLM):
        skip: frozenset = frozenset()  # lm-eval task names no row entry needs

        def generate_until(self, requests, disable_tqdm=False):
            keep = needed(self, requests) if self.skip else range(len(requests))
            answers = super().generate_until([requests[k] for k in keep], disable_tqdm=True) \
                if keep else []
            out = [""] * len(requests)  # the skipped tasks' items: scored, never recorded
            for k, answer in zip(keep, answers, strict=True):
                out[k] = answer
            return out

        def loglikelihood(self, requests, disable_tqdm=False):
            if self._all_skipped(requests):
                return [(0.0, False)] * len(requests)
            return super().loglikelihood(requests, disable_tqdm=True)

        def loglikelihood_rolling(self, requests, disable_tqdm=False):
            if self._all_skipped(requests):
                return [0.0] * len(requests)
            return super().loglikelihood_rolling(requests, disable_tqdm=True)

        def _all_skipped(self, requests) -> bool:
            """Only skipped tasks' requests (scored, never recorded): none is computed.
            A call that holds any other is computed whole, its batches unchanged."""
            return bool(self.skip) and all(r.task_name in self.skip for r in requests)

    return QuietHFLM


def needed(lm, requests) -> list[int]:
    """The indices of the requests in every batch that holds one of a task not in
    `lm.skip`, with the batches formed as HFLM.generate_until forms them from all the
    requests (grouped by generation settings, longest prompt first, `lm.batch_size` a
    batch): generated alone, these batches are the same batches, so their answers are
    those of a full row (tests/test_eval_rows.py checks the batches against lm-eval's)."""
    from lm_eval.models.utils import Collator

    order = Collator([(*r.args, k) for k, r in enumerate(requests)],
                     sort_fn=lambda x: (-len(lm.tok_encode(x[0])), x[0]),
                     group_by="gen_kwargs", group_fn=lambda x: x[1])
    keep = []
    for batch in order.get_batched(n=lm.batch_size):
        if any(requests[x[2]].task_name not in lm.skip for x in batch):
            keep += [x[2] for x in batch]
    return sorted(keep)
