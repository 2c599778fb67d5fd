"""A string-transformation skill: write a list of words in reverse order, joined by " > ".

Tests: an exact, mechanical transformation of the input (order reversal with a fixed
separator) that the instruction names only loosely; the convention comes from the
demonstrations.
"""

from harness.tasks import Example, Task

_WORDS = ["apple", "river", "candle", "pepper", "tiger", "window", "garden", "silver",
          "rocket", "violin", "forest", "button", "planet", "marble", "ladder", "orange",
          "pillow", "island", "hammer", "yellow", "bridge", "cotton", "dragon", "mirror"]


class Transform(Task):
    name = "transform"
    version = "1"
    description = "reverse a list of 3-5 words, joined by ' > '"
    max_new_tokens = 24
    format_pattern = r"\w+ > \w+ > \w+"

    def sample(self, rng):
        words = rng.sample(_WORDS, rng.randint(3, 5))
        gold = " > ".join(reversed(words))
        return Example(f"Chain these backwards: {', '.join(words)}", gold, gold)

    def score(self, output, target):
        line = output.strip().splitlines()[0].strip().rstrip(".") if output.strip() else ""
        return float(line == target)
