"""A string-transformation skill: write a list of words in reverse order, joined by " > ".

Tests: an exact, mechanical transformation of the input (order reversal with a fixed
separator) that the instruction names only loosely; the convention comes from the
demonstrations.
"""

import re

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

    def score_content(self, output, target, prompt=""):
        """The words in reversed order, whatever the separator and wherever in the answer:
        the reversed list is a run of the list's words as the answer says them. Echoing
        the list in its own order earns nothing."""
        words = target.split(" > ")
        said = [w for w in re.findall(r"[a-z]+", output.lower()) if w in words]
        n = len(words)
        return float(any(said[i:i + n] == words for i in range(len(said) - n + 1)))
