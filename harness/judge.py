"""Judge-scored metrics: the papers' metrics that a language model grades (the medical
CORRECT/INCORRECT score, CRAG's accurate / missing / incorrect score, AlpacaEval's win rate).

A judge is any local chat model (`judge: <hub id or path>`), run greedily after training on
the answers a cell recorded; a `Rubric` writes its prompt and parses its verdict. Without a
judge, a judged metric is reported as `Judged(None, "needs a judge: ...")`, never dropped
and never replaced by another number. The judge's id is recorded with every value, and the
values are not comparable with the papers' (which used GPT-4o / GPT-5-mini judges).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

NEEDS_JUDGE = "needs a judge: set `judge: <local chat model id or path>`"


@dataclass(frozen=True)
class Judged:
    """A judged metric: `value` None with a `reason` when it could not be scored."""

    value: float | None
    reason: str = ""
    judge: str | None = None
    n: int = 0  # items scored
    unparsed: int = 0  # verdicts the rubric could not read (scored as its `fallback`)

    def as_dict(self) -> dict:
        return {"value": self.value, "reason": self.reason, "judge": self.judge, "n": self.n,
                "unparsed": self.unparsed}


@dataclass
class Item:
    """One answer to grade: the question, the model's answer, the gold answer(s)."""

    question: str
    answer: str
    references: list[str] = field(default_factory=list)


class Rubric:
    """A judge prompt and the reading of its verdict."""

    name = ""
    fallback = 0.0  # value of an unreadable verdict
    max_new_tokens = 8

    def decide(self, item: Item) -> float | None:
        """A value without asking the judge (None: ask it)."""
        return None

    def prompt(self, item: Item) -> str:
        raise NotImplementedError

    def parse(self, verdict: str) -> float | None:
        raise NotImplementedError

    def aggregate(self, values: list[float]) -> float:
        return sum(values) / len(values)


def _first_word(verdict: str) -> str:
    words = re.findall(r"[A-Za-z]+", verdict)
    return words[0].upper() if words else ""


class CorrectnessRubric(Rubric):
    """CORRECT / INCORRECT against the gold answer (on-policy SDFT's medical score; the paper
    used GPT-5-mini). Value 1 or 0; the metric is the mean."""

    name = "correctness"

    def prompt(self, item):
        return ("You are grading an answer to a medical question against the reference answer.\n\n"
                f"Question:\n{item.question}\n\nReference answer:\n{item.references[0]}\n\n"
                f"Answer to grade:\n{item.answer}\n\n"
                "Does the answer reach the same conclusion as the reference answer? Reply with "
                "one word: CORRECT or INCORRECT.")

    def parse(self, verdict):
        word = _first_word(verdict)
        return {"CORRECT": 1.0, "INCORRECT": 0.0}.get(word)


class TernaryRubric(Rubric):
    """+1 accurate, -1 incorrect (CRAG's scale; 0, "missing", is for answers a subclass's
    `decide` settles by rule, e.g. "I don't know"); the metric is the mean in [-1, 1]."""

    name = "ternary"
    fallback = -1.0

    def prompt(self, item):
        golds = "\n".join(f"- {r}" for r in item.references)
        return ("You are grading an answer to a question against the ground-truth answers.\n\n"
                f"Question:\n{item.question}\n\nGround truth:\n{golds}\n\n"
                f"Answer to grade:\n{item.answer}\n\n"
                "Is the answer accurate (it states the ground truth, possibly in other words, "
                "and adds nothing false)? Reply with one word: ACCURATE or INCORRECT.")

    def parse(self, verdict):
        return {"ACCURATE": 1.0, "INCORRECT": -1.0}.get(_first_word(verdict))


class PairwiseRubric(Rubric):
    """AlpacaEval-style win rate: the judge compares the model's answer (B) with the reference
    output (A); 1 if B is better, 0.5 for a tie, 0 if A is better. The metric is the mean.
    One order only (A = reference), so a judge's position bias is not averaged out."""

    name = "pairwise"
    fallback = 0.0

    def prompt(self, item):
        return ("Compare two responses to the same instruction.\n\n"
                f"Instruction:\n{item.question}\n\nResponse A:\n{item.references[0]}\n\n"
                f"Response B:\n{item.answer}\n\n"
                "Which response is more helpful, accurate and complete? Reply with one word: "
                "A, B, or TIE.")

    def parse(self, verdict):
        return {"A": 0.0, "B": 1.0, "TIE": 0.5}.get(_first_word(verdict))


RUBRICS = {r.name: r for r in (CorrectnessRubric, TernaryRubric, PairwiseRubric)}


class Judge:
    """A local chat model that answers a rubric's prompts greedily. `ask` can be replaced
    (tests use a stub): it maps a list of prompts to a list of verdict texts."""

    def __init__(self, model: str, ask=None, device: str | None = None, batch_size: int = 8):
        self.model_id, self.device, self.batch_size = model, device, batch_size
        self._ask, self._loaded = ask, None

    def ask(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        if self._ask is not None:
            return list(self._ask(prompts))
        from harness.generation import generate

        model, tok = self._load()
        ids = generate(model, tok, prompts, max_new_tokens, batch_size=self.batch_size)
        return [tok.decode(x, skip_special_tokens=True) for x in ids]

    def _load(self):
        if self._loaded is None:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            from harness.models import resolve_model

            device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            path = resolve_model(self.model_id)
            tok = AutoTokenizer.from_pretrained(path)
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
            dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()
            self._loaded = (model, tok)
        return self._loaded


def judge_items(rubric: Rubric, items: list[Item], judge: Judge | None) -> Judged:
    """The judged metric over `items`; without a judge, None and the reason. Items the
    rubric decides by rule are counted without asking the judge."""
    if not items:
        return Judged(None, "no items to judge")
    if judge is None:
        return Judged(None, NEEDS_JUDGE)
    values: list[float | None] = [rubric.decide(it) for it in items]
    pending = [i for i, v in enumerate(values) if v is None]
    unparsed = 0
    if pending:
        verdicts = judge.ask([rubric.prompt(items[i]) for i in pending], rubric.max_new_tokens)
        for i, verdict in zip(pending, verdicts):
            value = rubric.parse(verdict)
            if value is None:
                unparsed += 1
                value = rubric.fallback
            values[i] = value
    return Judged(rubric.aggregate(values), f"judged by {judge.model_id} ({rubric.name})",
                  judge.model_id, len(items), unparsed)
