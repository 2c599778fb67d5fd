"""General-capability probes, run on every checkpoint of a cell.

A probe is measured either through lm-eval (it contributes a task to the row's single
lm-eval call: multiple choice, or any lm-eval task by name) or directly on the model
(drift and the behaviour probes compare it with the base model, which lm-eval has no
notion of). All direct probes use one fixed set of 24 general prompts and the base
model's greedy answers to them, generated once per model and cached on disk.

- `drift`: mean per-token KL(base || current) over the base model's answers. Lower is
  better; 0 for the base model.
- `knowledge`: multiple-choice questions scored by log-likelihood: the chat-formatted
  question, the assistant turn opened with "The answer is", each option scored by its
  length-normalised log-likelihood (lm-eval `acc_norm`).
- `style-leak`: the fraction of general prompts whose current answer takes on the output
  format of a built-in task (`Task.format_pattern`) when the base answer did not. Lower is
  better; 0 for the base model.
- `agreement`: mean ROUGE-L F1 between the current and the base model's greedy answers.
  Higher is better; 1 for the base model.
- `lm-eval:<task>[:<metric>]`: any lm-eval task (its first reported metric unless one is
  named); needs that task's data (the hub, or its local cache).
- `task:<name>[:<n>]`: a registered task's test set, scored by the task's own scorer.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
import torch.nn.functional as F

from harness.data import render_prompt
from harness.errors import HarnessError
from harness.generation import generate
from harness.lmeval_tasks import write_folder, write_task
from harness.methods.nn import token_divergence
from harness.precision import autocast
from harness.registry import Registry
from harness.storage import Cache
from harness.tasks import get_task

PROBE_DATA = Path(__file__).resolve().parent.parent / "benchmarks" / "probes"
GENERAL_MAX_NEW_TOKENS = 48
GENERAL_ANSWERS_VERSION = 1  # of the generating code, in the cache key: bump when it changes
GENERAL_BATCH = 16


def general_prompts() -> list[str]:
    return json.loads((PROBE_DATA / "general_prompts.json").read_text())


def base_general_answers(model, tokenizer, model_id: str) -> list[list[int]]:
    """The base model's greedy answers (token ids) to the general prompts; cached on disk,
    because generation is the expensive part and the base model never changes."""
    prompts = general_prompts()

    def valid(answers) -> bool:  # one list of token ids per prompt, else rebuilt
        return (isinstance(answers, list) and len(answers) == len(prompts)
                and all(isinstance(a, list) and all(type(t) is int for t in a) for a in answers))

    return Cache().get_or_compute(
        "general_answers", [model_id, prompts, GENERAL_MAX_NEW_TOKENS, "greedy", GENERAL_BATCH,
                            GENERAL_ANSWERS_VERSION],
        lambda: generate(model, tokenizer, prompts, GENERAL_MAX_NEW_TOKENS,
                         batch_size=GENERAL_BATCH), valid=valid)


def lmeval_task_names() -> set[str]:
    """Every task, group and tag name lm-eval knows (without include paths). Indexing them
    takes lm-eval ~15 s, so the list is cached per lm-eval installation."""
    import lm_eval
    import lm_eval.tasks

    key = [getattr(lm_eval, "__version__", "?"), str(Path(lm_eval.__file__).parent)]
    names = Cache().get_or_compute(
        "lmeval_tasks", key, lambda: sorted(lm_eval.tasks.TaskManager().all_tasks),
        valid=lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v))
    return set(names)


class RowState:
    """What the probes of one row share: lm-eval's results and, computed at most once, the
    current model's greedy answers to the general prompts."""

    def __init__(self, model, tokenizer, lmeval: dict | None = None):
        self.model, self.tokenizer, self.lmeval = model, tokenizer, lmeval or {}
        self._answers: list[str] | None = None

    @property
    def answered(self) -> bool:
        return self._answers is not None

    def general_answers(self) -> list[str]:
        if self._answers is None:
            ids = generate(self.model, self.tokenizer, general_prompts(), GENERAL_MAX_NEW_TOKENS)
            self._answers = [self.tokenizer.decode(x, skip_special_tokens=True) for x in ids]
        return self._answers


class Probe:
    name = ""
    version = "1"  # bump when what the probe measures changes (cached base rows depend on it)
    description = ""
    higher_is_better = True
    chance: float | None = None  # for normalised retention, where a chance level exists

    def prepare(self, base_model, tokenizer, model_id: str) -> None:
        """Called once per cell on the untouched base model, before any training."""

    def lmeval_task(self, workdir: Path) -> str | None:
        """Write an lm-eval task config under `workdir` if needed; return the task name."""
        return None

    def measure(self, row: RowState) -> float:
        raise NotImplementedError


class KnowledgeProbe(Probe):
    name = "knowledge"
    description = "40 general-knowledge multiple-choice questions, length-normalised log-likelihood accuracy"
    chance = 0.25
    task = "cl_probe_knowledge"
    data = "knowledge.json"  # under benchmarks/probes/

    def lmeval_task(self, workdir):
        rows = json.loads((PROBE_DATA / self.data).read_text())
        return write_folder(workdir / self.task, self.task, rows, {
            "output_type": "multiple_choice",
            "doc_to_text": "{{question}}",
            "doc_to_choice": "{{choices}}",
            "doc_to_target": "answer",
            "gen_prefix": "The answer is",  # a natural answer frame for a chat model
            "target_delimiter": " ",
            "metric_list": [{"metric": "acc_norm", "aggregation": "mean",
                             "higher_is_better": True}]})

    def measure(self, row):
        return float(row.lmeval["results"][self.task]["acc_norm,none"])


class KnowledgeV2Probe(KnowledgeProbe):
    """The same measurement on 229 questions (benchmarks/probes/knowledge_v2.py writes
    them): steps of 0.004 instead of 0.025. Its version carries its data's hash (the file
    sits in a folder that grid ids do not hash, so that existing grids keep their ids)."""

    name = "knowledge-v2"
    description = "229 multiple-choice questions (capitals, arithmetic, antonyms, units, words), length-normalised log-likelihood accuracy"
    task = "cl_probe_knowledge_v2"
    data = "v2/knowledge.json"

    @property
    def version(self) -> str:
        from harness.storage import stable_hash

        return "1-" + stable_hash((PROBE_DATA / self.data).read_text())


class _BaseAnswersProbe(Probe):
    """Probes that compare the current model with the base model's general answers."""

    def prepare(self, base_model, tokenizer, model_id):
        self.base_ids = base_general_answers(base_model, tokenizer, model_id)
        self.base_texts = [tokenizer.decode(x, skip_special_tokens=True) for x in self.base_ids]


class DriftProbe(_BaseAnswersProbe):
    name = "drift"
    description = "mean per-token KL(base || current) on the base model's answers to 24 general prompts"
    higher_is_better = False

    def __init__(self):
        self._base_logprobs: dict[str, list[torch.Tensor]] = {}  # per model, kept in memory

    def prepare(self, base_model, tokenizer, model_id):
        super().prepare(base_model, tokenizer, model_id)
        self.seqs = [(tokenizer(render_prompt(tokenizer, p), add_special_tokens=False)["input_ids"], a)
                     for p, a in zip(general_prompts(), self.base_ids)]
        if model_id not in self._base_logprobs:
            self._base_logprobs[model_id] = answer_logprobs(base_model, self.seqs)
        self.base = self._base_logprobs[model_id]

    def measure(self, row):
        current = answer_logprobs(row.model, self.seqs)
        total = sum(token_divergence(c, b, "forward", log_probs=True).sum()  # KL(base || current)
                    for b, c in zip(self.base, current))
        n_tokens = sum(b.shape[0] for b in self.base)
        return float(total / max(n_tokens, 1))


class StyleLeakProbe(_BaseAnswersProbe):
    name = "style-leak"
    description = "share of general prompts answered in a trained task's format the base answer did not have"
    higher_is_better = False

    def prepare(self, base_model, tokenizer, model_id):
        from harness.tasks import all_tasks

        super().prepare(base_model, tokenizer, model_id)
        patterns = [c.format_pattern for c in all_tasks().values() if c.format_pattern]
        self.pattern = re.compile("|".join(f"(?:{p})" for p in patterns), re.M)
        self.base_leaky = [bool(self.pattern.search(t)) for t in self.base_texts]

    def measure(self, row):
        leaky = [bool(self.pattern.search(t)) for t in row.general_answers()]
        return sum(now and not before for now, before in zip(leaky, self.base_leaky)) / len(leaky)


class AgreementProbe(_BaseAnswersProbe):
    name = "agreement"
    description = "mean ROUGE-L F1 between current and base greedy answers to 24 general prompts"

    def measure(self, row):
        from rouge_score import rouge_scorer

        # whitespace tokens: keeps symbols such as "####" or "{" that carry a format
        scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=_WhitespaceTokenizer())
        scores = [1.0 if base == now else scorer.score(base, now)["rougeL"].fmeasure
                  for base, now in zip(self.base_texts, row.general_answers())]
        return sum(scores) / len(scores)


class _WhitespaceTokenizer:
    def tokenize(self, text):
        return text.lower().split()


class LmEvalProbe(Probe):
    """Any lm-eval task, e.g. `lm-eval:hellaswag` or `lm-eval:mmlu:acc`."""

    def __init__(self, spec: str):
        parts = spec.split(":")
        self.name, self.task = spec, parts[1]
        self.metric = parts[2] if len(parts) > 2 else None
        self.description = f"lm-eval task {self.task}"

    def check(self) -> None:
        """Stop at suite load, not after the first cell has trained, on a name lm-eval
        does not know."""
        if self.task not in lmeval_task_names():
            raise HarnessError(f"unknown lm-eval task '{self.task}' in probe '{self.name}'",
                               "use a task listed by `lm_eval ls tasks`, e.g. lm-eval:hellaswag")

    def lmeval_task(self, workdir):
        return self.task

    def measure(self, row):
        results = row.lmeval["results"][self.task]
        keys = [k for k in results if "," in k and "stderr" not in k]
        if self.metric:
            keys = [k for k in keys if k.split(",")[0] == self.metric]
        if not keys:
            raise HarnessError(f"lm-eval task '{self.task}' reported no metric "
                               f"{self.metric or ''}".strip(),
                               f"choose one of: {', '.join(k.split(',')[0] for k in results if ',' in k)}")
        return float(results[keys[0]])


class TaskProbe(Probe):
    """`task:<name>[:<n>]`: a task's test set scored on every checkpoint, for the papers'
    evaluation-only sets (MultiArith, AdvBench, AlpacaEval, ChatRAG-Bench, MedText) and for a
    trained task's test set measured beside other streams. The first `n` items of the task's
    seeded selection (data seed 0), all of them by default; the value is the mean of the
    task's own per-item score, through the row's lm-eval call."""

    max_new_tokens: int | None = None  # None: the task's own budget

    def __init__(self, spec: str):
        parts = spec.split(":")
        if parts[0] != "task" or len(parts) not in (2, 3) or not parts[1]:
            raise HarnessError(f"bad task probe '{spec}'", "write task:<name> or task:<name>:<n>")
        if len(parts) == 3 and not (parts[2].isdigit() and int(parts[2]) > 0):
            raise HarnessError(f"bad item count in task probe '{spec}'",
                               "give a positive whole number, e.g. task:advbench:100")
        self.name, self.task = spec, get_task(parts[1])
        self.n = int(parts[2]) if len(parts) == 3 else None
        self.chat_template = self.task.chat_template
        self.lm_name = "cl_probe_task_" + parts[1].replace("-", "_")
        self.description = f"test set of task {parts[1]}: {self.task.description}"

    def lmeval_task(self, workdir):
        split = self.task.split(0, self.n if self.n is not None else 10**9, 0)
        return write_task(self.task, split, workdir / self.lm_name, self.max_new_tokens,
                          name=self.lm_name)

    def measure(self, row):
        return float(row.lmeval["results"][self.lm_name]["score,none"])


@torch.no_grad()
def answer_logprobs(model, seqs, batch_size: int = 8) -> list[torch.Tensor]:
    """Per (prompt ids, answer ids) pair: log-softmax over the vocabulary at each answer
    position, [len(answer), V]."""
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(seqs), batch_size):
        chunk = seqs[start : start + batch_size]
        width = max(len(h) + len(a) for h, a in chunk)
        ids = torch.zeros((len(chunk), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, (h, a) in enumerate(chunk):
            ids[r, : len(h) + len(a)] = torch.tensor(h + a)
            mask[r, : len(h) + len(a)] = 1
        with autocast(device):
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        logp = F.log_softmax(logits.float(), dim=-1).cpu()
        for r, (h, a) in enumerate(chunk):
            out.append(logp[r, len(h) - 1 : len(h) + len(a) - 1])  # position t predicts t+1
    return out


PROBES = Registry("probe", Probe, "harness.probes", {p.name: p for p in (
    DriftProbe, KnowledgeProbe, KnowledgeV2Probe, StyleLeakProbe, AgreementProbe)},
    hint="lm-eval:<task>, or task:<name> (a task's test set)")


def get_probe(name: str) -> Probe:
    """A fresh probe: a registered one, `lm-eval:<task>[:<metric>]`, or `task:<name>[:<n>]`
    (a task's test set)."""
    if name.startswith("lm-eval:") and len(name.split(":")) in (2, 3) and name.split(":")[1]:
        return LmEvalProbe(name)
    if name.startswith("task:"):
        return TaskProbe(name)
    return PROBES[name]()
