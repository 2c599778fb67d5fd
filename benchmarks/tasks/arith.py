"""Arithmetic word problems with a fixed answer format ("#### N").

Tests: one small operation stated in words (an addition with a one-digit addend, or a
times-table product), answered with a working line and a terse final-answer line that a
chat model does not use on its own. The base model computes these sums and products
correctly most of the time (measured: 81% and 94% as bare equations), so what SFT must
learn is the format; and the format is what makes SFT on this task drift.

Version 2's space holds 296 distinct problems (29 x 8 sums, 8 x 8 products). A split that
needs more (e.g. 200 test items and 128 training examples) draws from the wide space of
version 3 instead (first addend up to 99, factors up to 12: 905 problems); splits that
fit keep version 2's bytes and hashes.
"""

import re

from benchmarks.tasks._words import FIRST, OBJECTS
from harness.tasks import Example, Task

_ANSWER = re.compile(r"####\s*(-?\d+)")
_NUMBER = re.compile(r"(?<![\d.])-?\d+(?:\.\d+)?")
_CONTAINERS = ["bags", "boxes", "jars", "baskets", "tins", "envelopes"]
# (first addend, addend, factor) ranges: version 2, and the wide space of version 3
_RANGES = {"2": ((2, 30), (2, 9), (2, 9)), "3": ((2, 99), (2, 9), (2, 12))}


def capacity(version: str) -> int:
    (a0, a1), (b0, b1), (f0, f1) = _RANGES[version]
    return (a1 - a0 + 1) * (b1 - b0 + 1) + (f1 - f0 + 1) ** 2


class Arith(Task):
    name = "arith"
    version = "2"
    description = "one-operation word problems (sum or product); answer line '#### N'"
    max_new_tokens = 24
    format_pattern = r"####|^\s*\d+ [+x] \d+ = \d+"

    def split(self, n_train, n_test, data_seed=0):
        """Version 2's split where it has room, else the wide space's (version 3)."""
        if n_train + n_test <= capacity("2"):
            return super().split(n_train, n_test, data_seed)
        return ArithWide().split(n_train, n_test, data_seed)

    def sample(self, rng):
        (a0, a1), (b0, b1), (f0, f1) = _RANGES[self.version]
        who, what = rng.choice(FIRST), rng.choice(OBJECTS)
        if rng.random() < 0.6:
            a, b = rng.randint(a0, a1), rng.randint(b0, b1)
            prompt = f"{who} has {a} {what} and finds {b} more. How many {what} does {who} have now?"
            work, answer, key = f"{a} + {b} = {a + b}", a + b, f"+{a},{b}"
        else:
            a, b = rng.randint(f0, f1), rng.randint(f0, f1)
            box = rng.choice(_CONTAINERS)
            prompt = f"{who} has {a} {box} with {b} {what} in each. How many {what} is that in total?"
            work, answer, key = f"{a} x {b} = {a * b}", a * b, f"x{a},{b}"
        return Example(prompt, f"{work}\n#### {answer}", str(answer), key=key)

    def score(self, output, target):
        found = _ANSWER.search(output)
        return float(found is not None and found.group(1) == target)

    def score_content(self, output, target, prompt=""):
        """The last number of the answer that is not one of the question's: echoing the
        question earns nothing, and no right answer is lost (a sum with an addend of 2 or
        more, or a product of two factors of 2 or more, never equals an operand)."""
        asked = {float(n) for n in _NUMBER.findall(prompt)}
        said = [float(n) for n in _NUMBER.findall(output) if float(n) not in asked]
        return float(bool(said) and said[-1] == float(target))


class ArithWide(Arith):
    """The wide space (version 3) of a split too large for version 2's; not registered: it
    is `arith` (same name, format and scorers), reached through Arith.split."""

    version = "3"

    def split(self, n_train, n_test, data_seed=0):
        return Task.split(self, n_train, n_test, data_seed)
