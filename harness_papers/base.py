"""PaperTask: a task whose examples come from a paper's published data rather than from a
generator. It loads its train and test rows (harness_papers.sources), turns each row into
an Example with the paper's template, and splits: the first `n` of a seeded draw from each
side (all of it when `n` is at least the side's size), train items whose key is also a test
key removed. The content hash covers every example, as for the generated tasks.

A source without a test split gets one held out of its training rows by a fixed permutation
(numpy's `default_rng(seed).permutation`, which is what `datasets.Dataset.shuffle(seed)`
draws), so that every data seed trains on the same pool and tests on the same items.
"""

from __future__ import annotations

import dataclasses
import os
import random

from harness.errors import HarnessError
from harness.seeding import generator
from harness.tasks import Example, Split, Task, content_hash

from harness_papers.sources import FIXTURES_ENV, REPOS_ENV, Hub, Repo, load_rows

_CACHE: dict[tuple, tuple[list[Example], list[Example]]] = {}  # loaded once per process


def seeded_holdout(rows: list, test_n: int, val_n: int = 0, seed: int = 42) -> tuple[list, list, list]:
    """(train, val, test) after `Dataset.shuffle(seed)`'s permutation: train first, then
    `val_n` validation rows, then the last `test_n` rows for testing."""
    order = [int(i) for i in generator(seed, "holdout", kind="numpy").permutation(len(rows))]
    shuffled = [rows[i] for i in order]
    cut = len(rows) - test_n - val_n
    return shuffled[:cut], shuffled[cut: cut + val_n], shuffled[cut + val_n:]


def scaled(n: int, size: int) -> int:
    """A held-out count: `n`, or a fifth of a smaller source (the offline fixtures)."""
    return min(n, size // 5)


class PaperTask(Task):
    """Subclass: set `dataset`, `paper`, `train_source`/`test_source` (or override
    `load`), implement `example(row)` and `score`."""

    paper = ""  # the suite it belongs to, e.g. sdft-rewrite-2024
    eval_only = False  # no training data: measured, never trained on
    train_source: Hub | Repo | None = None
    test_source: Hub | Repo | None = None
    holdout_test = 0  # with no test source: test rows held out of the training rows
    holdout_val = 0  # ... and validation rows, excluded from both sides
    holdout_seed = 42
    paper_decoding = "greedy"  # how the paper decodes at evaluation (the harness is greedy)
    judged: str | None = None  # the paper's judge-scored metric, if any (harness.judge)
    notes = ""  # what differs from the paper, for docs and reports

    def sources(self) -> list[Hub | Repo]:
        """Everything the task reads (what `harness fetch` downloads)."""
        return [s for s in (self.train_source, self.test_source) if s is not None]

    def load(self) -> tuple[list[dict], list[dict]]:
        """(train rows, test rows) in the sources' format."""
        if self.test_source is not None:
            train = load_rows(self.train_source) if self.train_source is not None else []
            return train, load_rows(self.test_source)
        rows = load_rows(self.train_source)
        train, _, test = seeded_holdout(rows, scaled(self.holdout_test, len(rows)),
                                        scaled(self.holdout_val, len(rows)), self.holdout_seed)
        return train, test

    def example(self, row: dict) -> Example:
        raise NotImplementedError

    def test_example(self, row: dict) -> Example:
        """A test row as an example (the same as a training row unless overridden)."""
        return self.example(row)

    def examples(self) -> tuple[list[Example], list[Example]]:
        key = (self.name, self.version, os.environ.get(FIXTURES_ENV), os.environ.get(REPOS_ENV))
        if key not in _CACHE:
            train, test = self.load()
            _CACHE[key] = ([self.example(r) for r in train], [self.test_example(r) for r in test])
        return _CACHE[key]

    def sample(self, rng):
        raise HarnessError(f"task '{self.name}' reads a dataset; it does not generate examples",
                           "call split(), which loads the data")

    def split(self, n_train: int, n_test: int, data_seed: int = 0) -> Split:
        if self.eval_only and n_train:
            raise HarnessError(f"task '{self.name}' is evaluation-only (it has no training data)",
                               f"measure it as a probe, task:{self.name}, instead of training on it")
        train, test = self.examples()
        test_keys = {e.key or e.prompt for e in test}
        train = [e for e in train if (e.key or e.prompt) not in test_keys]
        rng = generator(data_seed, "task data", self.name, self.version)
        test, train = _pick(test, n_test, rng), _pick(train, n_train, rng)
        if not self.chat_template:  # trained as it is evaluated: in the task's own template
            test, train = [_plain(e) for e in test], [_plain(e) for e in train]
        return Split(self.name, tuple(train), tuple(test),
                     content_hash(self.name, self.version, test + train))

    def rubric(self):
        """The judge rubric of the paper's judged metric (`judged`), or None."""
        from harness.judge import RUBRICS

        return RUBRICS[self.judged]() if self.judged else None

    def judge_outputs(self, split: Split, outputs: list[str], judge):
        """The paper's judged metric over a cell's answers to `split.test` (`Row.outputs`):
        harness.judge.Judged, whose value is None ("needs a judge") without a judge."""
        import json

        from harness.judge import Item, judge_items

        def references(target: str) -> list[str]:
            try:
                value = json.loads(target)
            except ValueError:
                return [target]
            return [str(v) for v in value] if isinstance(value, list) else [target]

        items = [Item(e.key or e.prompt, out, references(e.target)) for e, out in zip(split.test, outputs)]
        return judge_items(self.rubric(), items, judge)

    def fetch(self) -> dict[str, int]:
        """Read every source once (filling the Hugging Face cache); rows per source."""
        return {s.describe(): len(load_rows(s)) for s in self.sources()}


def _pick(items: list, n: int, rng: random.Random) -> list:
    if n >= len(items):
        return list(items)
    return [items[i] for i in sorted(rng.sample(range(len(items)), n))]


def _plain(example):
    """The example as a `Plain` one (same fields, so the same content hash)."""
    from harness.tasks import Plain

    if type(example) is not Example:
        raise HarnessError(f"a task without the chat template gave a {type(example).__name__}",
                           "give such tasks plain Examples (their prompt holds the template)")
    return Plain(**dataclasses.asdict(example))
