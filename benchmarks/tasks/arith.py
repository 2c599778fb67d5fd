"""Arithmetic word problems with a fixed answer format ("#### N").

Tests: one small operation stated in words (an addition with a one-digit addend, or a
times-table product), answered with a working line and a terse final-answer line that a
chat model does not use on its own. The base model computes these sums and products
correctly most of the time (measured: 81% and 94% as bare equations), so what SFT must
learn is the format; and the format is what makes SFT on this task drift.
"""

import re

from benchmarks.tasks._words import FIRST, OBJECTS
from harness.tasks import Example, Task

_ANSWER = re.compile(r"####\s*(-?\d+)")
_NUMBER = re.compile(r"(?<![\d.])-?\d+(?:\.\d+)?")
_CONTAINERS = ["bags", "boxes", "jars", "baskets", "tins", "envelopes"]


class Arith(Task):
    name = "arith"
    version = "2"
    description = "one-operation word problems (sum or product); answer line '#### N'"
    max_new_tokens = 24
    format_pattern = r"####|^\s*\d+ [+x] \d+ = \d+"

    def sample(self, rng):
        who, what = rng.choice(FIRST), rng.choice(OBJECTS)
        if rng.random() < 0.6:
            a, b = rng.randint(2, 30), rng.randint(2, 9)
            prompt = f"{who} has {a} {what} and finds {b} more. How many {what} does {who} have now?"
            work, answer, key = f"{a} + {b} = {a + b}", a + b, f"+{a},{b}"
        else:
            a, b = rng.randint(2, 9), rng.randint(2, 9)
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
