"""Tasks: what a stream is made of.

A task generates a pool of unique examples from a seed (our own code, no downloads),
splits it into disjoint train and test sets, and scores a model's output exactly. Every
training example carries a gold demonstration (`response`); SDFT's teacher needs it.
Every task comes from the entry-point group `harness.tasks` (`TASKS`, which imports one only
when it is used): this distribution registers the offline generators (benchmarks/tasks/) and
the papers' tasks (harness_papers/) there, as any installed package adds its own.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

from harness.errors import HarnessError
from harness.registry import Registry
from harness.seeding import generator
from harness.storage import stable_hash


@dataclass(frozen=True)
class Example:
    prompt: str  # the user turn
    response: str  # gold demonstration (what SFT trains on)
    target: str  # what the scorer compares against
    key: str = ""  # identity for the leak-free split (defaults to the prompt)


@dataclass(frozen=True)
class Dialogue(Example):
    """An example after earlier turns: `history` holds (user, assistant) pairs; the loss is
    on the last `response` only. Self-generated multi-turn data use it."""

    history: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Framed(Example):
    """An example whose user turn comes after a system message (`system`; empty: none), as
    some papers' tasks prompt (e.g. SDFT's science questions). Generated tasks never use
    it, so their examples and content hashes are unchanged."""

    system: str = ""


@dataclass(frozen=True)
class Plain(Example):
    """An example written in its task's own text template (`Task.chat_template` False, e.g.
    the Alpaca-style `### Instruction:` prompts of SDFT by rewriting): trained on as raw text,
    prompt then response then end-of-sequence, with no chat template, as it is evaluated."""


@dataclass(frozen=True)
class Split:
    task: str
    train: tuple[Example, ...]
    test: tuple[Example, ...]
    content_hash: str  # hash of the generator version and of every example


class Task:
    """Subclass and implement `sample` and `score`; register the class in the entry-point
    group `harness.tasks` (docs/tasks.md)."""

    name: str = ""
    version: str = "1"
    description: str = ""
    max_new_tokens: int = 48  # generation budget at evaluation
    format_pattern: str | None = None  # regex of the task's output format (style-leak probe)
    rewrite_instruction: str | None = None  # SDFT-rewrite's instruction sentence, if not the general one
    chat_template: bool = True  # False: `prompt` is the model's whole input, already in the task's
    #                             own template (e.g. Alpaca's), evaluated without the chat template
    dataset: str | None = None  # the published data a task reads (hub id or repository); None: generated

    def sample(self, rng: random.Random) -> Example:
        """Draw one example; the pool is deduplicated by `Example.key or prompt`."""
        raise NotImplementedError

    def score(self, output: str, target: str) -> float:
        """Score one model output in [0, 1]: strict, the answer in the task's format."""
        raise NotImplementedError

    def score_content(self, output: str, target: str, prompt: str = "") -> float:
        """Score the answer's content in [0, 1], whatever its wrapper (a model that drops
        the format but answers right gets credit here, not in `score`). `prompt` is the
        question, so that echoing it earns nothing. Default: the strict score (a task
        whose scorer already ignores the wrapper, and the papers' tasks)."""
        return self.score(output, target)

    def accept_rewrite(self, example: Example, text: str) -> bool:
        """Does a model's rewrite of `example.response` still answer correctly? (SDFT by
        rewriting trains on it only then.) Default: the task's own scorer gives it full
        marks, so a rewrite keeps whatever the scorer checks (answer and format)."""
        return self.score(text, example.target) == 1.0

    def rewrite_prompt(self, example: Example) -> str | None:
        """SDFT-rewrite's whole input for `example`, in the task's own template (e.g. a
        paper's rewrite template with a forced answer prefix: the model continues it); None:
        the method's template in a chat turn."""
        return None

    def split(self, n_train: int, n_test: int, data_seed: int = 0) -> Split:
        """Deterministic, disjoint train/test split: the same seed gives the same bytes."""
        rng = generator(data_seed, "task data", self.name, self.version)
        pool: dict[str, Example] = {}
        need, misses = n_train + n_test, 0
        while len(pool) < need:
            ex = self.sample(rng)
            key = ex.key or ex.prompt
            misses = misses + 1 if key in pool else 0
            pool.setdefault(key, ex)
            if misses > 2000:  # the generator's space is exhausted
                raise HarnessError(
                    f"task '{self.name}' cannot produce {need} distinct examples",
                    "lower n_train/n_test in the suite's `data` section",
                )
        examples = list(pool.values())
        test, train = tuple(examples[:n_test]), tuple(examples[n_test:])
        return Split(self.name, train, test, content_hash(self.name, self.version, examples))


def content_hash(name: str, version: str, examples, item=asdict) -> str:
    """The identity of a task's data, which keys caches and result files: the task's name,
    its generator's version and every example (test then train), each as `item(example)`.
    `item` is the whole example by default; a task with its own recipe (facts hashes
    prompt + response) keeps it, so that its recorded hashes stay valid."""
    return stable_hash([name, version, [item(e) for e in examples]])


# Every task is a plug-in (entry-point group `harness.tasks`): the offline benchmark's
# generators (benchmarks/tasks/) and the papers' tasks (harness_papers/) are registered in
# pyproject.toml exactly as a third party's are, so the harness names none of them.
TASKS = Registry("task", Task, "harness.tasks", {})


def all_tasks(datasets: bool = False) -> dict[str, type[Task]]:
    """name -> class of every task, built-in and installed, by name. The tasks that read
    published data (`Task.dataset`: the papers' tasks, harness_papers/) are left out
    unless `datasets`: generic callers (the lm-eval export, the style-leak probe, the test
    model's corpus) need tasks that generate their data offline."""
    return {name: cls for name, cls in TASKS.items() if datasets or cls.dataset is None}


def get_task(name: str) -> Task:
    return TASKS[name]()
