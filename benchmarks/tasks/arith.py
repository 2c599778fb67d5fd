"""Arithmetic word problems with a fixed answer format ("#### N").

Tests: a two-step addition/subtraction in words, and a terse final-answer format that a
chat model does not use on its own (the format is what makes SFT on it drift).
"""

import re

from benchmarks.tasks._words import FIRST, OBJECTS
from harness.tasks import Example, Task, register

_ANSWER = re.compile(r"####\s*(-?\d+)")


@register
class Arith(Task):
    name = "arith"
    version = "1"
    description = "two-step word problems; answer line '#### N'"
    max_new_tokens = 32

    def sample(self, rng):
        who, what = rng.choice(FIRST), rng.choice(OBJECTS)
        a, b = rng.randint(3, 40), rng.randint(2, 30)
        if rng.random() < 0.5:
            c = rng.randint(1, 20)
            prompt = (f"{who} has {a} {what}. {who} gets {b} more and then gives away {c}. "
                      f"How many {what} does {who} have now?")
            work, answer, op = f"{a} + {b} - {c} = {a + b - c}", a + b - c, "-"
        else:
            c = rng.randint(2, 25)
            prompt = (f"{who} has {a} {what}, buys {b} more, then finds {c} more. "
                      f"How many {what} does {who} have now?")
            work, answer, op = f"{a} + {b} + {c} = {a + b + c}", a + b + c, "+"
        return Example(prompt, f"{work}\n#### {answer}", str(answer), key=f"{op}{a},{b},{c}")

    def score(self, output, target):
        found = _ANSWER.search(output)
        return float(found is not None and found.group(1) == target)
