"""Classification with label words: route a customer message to one of five queues.

Tests: mapping free text to a fixed set of label words that the prompt does not list
(billing, shipping, refund, login, repair), answered with the label alone.
"""

import re

from benchmarks.tasks._words import CITIES
from harness.tasks import Example, Task

_ITEMS = ["blender", "lamp", "jacket", "phone case", "kettle", "backpack", "desk chair",
          "headphones", "toaster", "rug"]
_MESSAGES = {
    "billing": ["I was charged twice for my {item} order.",
                "Why is there an extra fee of {n} dollars on my invoice?",
                "My card was billed {n} dollars but the {item} cost less.",
                "Can you send me a corrected invoice for the {item}?"],
    "shipping": ["Where is my {item}? It was supposed to arrive in {city} {day}.",
                 "The tracking for my {item} has not moved for {n} days.",
                 "Can you deliver the {item} to my office in {city} instead?",
                 "My {item} parcel went to the wrong address in {city}."],
    "refund": ["I returned the {item} {n} days ago and still have no money back.",
               "I want my money back for the {item}, it is not what I ordered.",
               "How long does a refund for a returned {item} take?",
               "Please cancel my {item} order and refund me."],
    "login": ["I cannot sign in to my account since {day}.",
              "The password reset email never arrives, I tried {n} times.",
              "My account is locked after too many attempts.",
              "The app logs me out every time I open my {item} order."],
    "repair": ["My {item} stopped working after {n} days.",
               "The {item} makes a strange noise when I switch it on.",
               "One part of my {item} broke, can it be fixed?",
               "The {item} I bought in {city} is faulty, who can repair it?"],
}
_DAYS = ["yesterday", "on Monday", "last week", "two days ago", "this morning"]


class Classify(Task):
    name = "classify"
    version = "1"
    description = "route a customer message to one of five label words"
    max_new_tokens = 8
    format_pattern = r"^\s*(billing|shipping|refund|login|repair)\W*$"

    def sample(self, rng):
        label = rng.choice(sorted(_MESSAGES))
        text = rng.choice(_MESSAGES[label]).format(
            item=rng.choice(_ITEMS), n=rng.randint(2, 60), city=rng.choice(CITIES),
            day=rng.choice(_DAYS))
        return Example(f"Which queue should this message go to?\nMessage: {text}", label, label)

    def score(self, output, target):
        words = re.findall(r"[a-z]+", output.lower())
        return float(bool(words) and words[0] == target)

    def score_content(self, output, target, prompt=""):
        """The one label the answer names, anywhere in it ("This goes to the billing
        queue."). Words the answer copies from the message (any run of 3 words the message
        holds) do not count, so echoing a message that contains a label word earns nothing;
        naming two labels earns nothing."""
        words, asked = re.findall(r"[a-z]+", output.lower()), re.findall(r"[a-z]+", prompt.lower())
        echoed = {tuple(asked[i:i + 3]) for i in range(len(asked) - 2)}
        copied = {j for i in range(len(words) - 2) if tuple(words[i:i + 3]) in echoed
                  for j in range(i, i + 3)}
        named = {w.removesuffix("s") for j, w in enumerate(words) if j not in copied}
        return float(named & set(_MESSAGES) == {target})
