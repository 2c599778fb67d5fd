"""Extraction into JSON: a person's name, age and city from one sentence.

Tests: a structured output format with fixed keys that the prompt does not spell out, so
it has to be learned from the demonstrations. Scored by exact equality of the parsed
object (key order and whitespace do not matter).
"""

import json
import re

from benchmarks.tasks._words import CITIES, FIRST, LAST
from harness.tasks import Example, Task

_SENTENCES = [
    "{name}, who is {age}, has lived in {city} for a few years.",
    "Last spring {name} ({age}) moved to {city} to open a small bakery.",
    "In {city}, {age}-year-old {name} teaches chemistry at a night school.",
    "{name} is {age} years old and works as a nurse in {city}.",
    "The {city} marathon was won by {name}, aged {age}.",
]
_OBJECT = re.compile(r"\{.*?\}", re.S)
# `key: value`, `"key": "value"`, `key = value` in any layout (JSON, YAML, prose lists)
_FIELD = re.compile(r"""["']?\b(name|age|city)\b["']?\s*[:=]\s*(?:"([^"]*)"|'([^']*)'|([^,;}\n]+))""",
                    re.I)


class JsonExtract(Task):
    name = "json-extract"
    version = "1"
    description = "extract name, age and city of a person into a JSON object"
    max_new_tokens = 40
    format_pattern = r"^\s*\{\s*\""

    def sample(self, rng):
        person = {"name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                  "age": rng.randint(19, 80), "city": rng.choice(CITIES)}
        text = rng.choice(_SENTENCES).format(**person)
        gold = json.dumps(person)
        return Example(f"Extract the person as JSON.\nText: {text}", gold, gold)

    def score(self, output, target):
        for match in _OBJECT.finditer(output):
            try:
                if json.loads(match.group(0)) == json.loads(target):
                    return 1.0
            except json.JSONDecodeError:
                continue
        return 0.0

    def score_content(self, output, target, prompt=""):
        """Each of name, age and city stated as a field with its right value, in any
        layout: the first `key: value` of each key counts (case and quotes aside). The
        sentence holds the values but no `key:` pairs, so echoing it earns nothing."""
        found: dict[str, str] = {}
        for match in _FIELD.finditer(output):
            value = next(g for g in match.groups()[1:] if g is not None)
            found.setdefault(match.group(1).lower(), value.strip().strip(".").lower())
        gold = {k: str(v).lower() for k, v in json.loads(target).items()}
        return float(found == gold)
