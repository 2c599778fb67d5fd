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
        """The words in reversed order, whatever the separator and wrapper: the list's
        words as the answer says them are exactly the reversed list, once (after an echo
        of the list in its own order, if the answer starts with one). An echo alone, a
        stutter ("apple > apple > candle") or a list that runs on earns nothing."""
        words = target.split(" > ")
        said = [w for w in re.findall(r"[a-z]+", output.lower()) if w in words]
        return float(said in (words, words[::-1] + words))
