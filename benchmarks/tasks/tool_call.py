"""Function calling from an API description: answer a request with one JSON call.

Tests: choosing the right tool among four and filling its arguments from the request, in
the exact call format `{"tool": NAME, "args": {...}}` (the format is shown only through
the demonstrations). Scored by exact equality of the parsed call.
"""

import json
import re

from benchmarks.tasks._words import CITIES, FIRST
from harness.tasks import Example, Task

TOOLS = (
    "Tools:\n"
    "- get_weather(city, unit): unit is \"C\" or \"F\"\n"
    "- set_alarm(time, label): time as HH:MM\n"
    "- send_message(to, text)\n"
    "- convert_currency(amount, source, target): currency codes"
)
_CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CHF", "NOK"]
_LABELS = ["gym", "meeting", "medicine", "school run", "flight", "laundry"]
_TEXTS = ["running late", "see you at noon", "call me back", "dinner is ready",
          "happy birthday", "the keys are on the table"]
_OBJECT = re.compile(r"\{.*\}", re.S)
_SIGNATURES = {"get_weather": ("city", "unit"), "set_alarm": ("time", "label"),
               "send_message": ("to", "text"), "convert_currency": ("amount", "source", "target")}
_PY_CALL = re.compile(rf"\b({'|'.join(_SIGNATURES)})\s*\(([^()]*)\)")


def _call(tool: str, **args) -> str:
    return json.dumps({"tool": tool, "args": args})


class ToolCall(Task):
    name = "tool-call"
    version = "1"
    description = "pick one of four tools and fill its arguments as a JSON call"
    max_new_tokens = 48
    format_pattern = r"^\s*\{\s*\"tool\""
    rewrite_instruction = "Refer to the reference answer and write your own response."

    def sample(self, rng):
        kind = rng.randrange(4)
        if kind == 0:
            city, unit = rng.choice(CITIES), rng.choice(["C", "F"])
            word = {"C": "Celsius", "F": "Fahrenheit"}[unit]
            request = rng.choice([f"How warm is it in {city} right now, in {word}?",
                                  f"Weather for {city} please, degrees {word}."])
            call = _call("get_weather", city=city, unit=unit)
        elif kind == 1:
            time = f"{rng.randint(5, 22):02d}:{rng.choice([0, 15, 30, 45]):02d}"
            label = rng.choice(_LABELS)
            request = rng.choice([f"Wake me at {time} for {label}.",
                                  f"Set an alarm for {time} called {label}."])
            call = _call("set_alarm", time=time, label=label)
        elif kind == 2:
            who, text = rng.choice(FIRST), rng.choice(_TEXTS)
            request = rng.choice([f"Tell {who}: {text}.", f"Message {who} saying {text}."])
            call = _call("send_message", to=who, text=text)
        else:
            amount = rng.choice([5, 10, 20, 25, 40, 50, 75, 100, 150, 200, 500])
            source, target = rng.sample(_CURRENCIES, 2)
            request = rng.choice([f"How much is {amount} {source} in {target}?",
                                  f"Convert {amount} {source} to {target}."])
            call = _call("convert_currency", amount=amount, source=source, target=target)
        return Example(f"{TOOLS}\n\nRequest: {request}", call, call)

    def score(self, output, target):
        match = _OBJECT.search(output)
        if not match:
            return 0.0
        try:
            return float(json.loads(match.group(0)) == json.loads(target))
        except json.JSONDecodeError:
            return 0.0

    def score_content(self, output, target, prompt=""):
        """The right tool with the right arguments in any call layout: a JSON object
        (`tool`/`name`/`function` and `args`/`arguments`/`parameters`, or the arguments
        beside the name) or a Python-style call `get_weather(city="Lima", unit="C")`.
        Values compare as text (100 and "100" agree). The tool list in the prompt reads as
        calls with the parameter names for values, so echoing it earns nothing."""
        gold = json.loads(target)
        want = (gold["tool"], {k: str(v) for k, v in gold["args"].items()})
        return float(want in _calls(output))


def _calls(text: str) -> list[tuple[str, dict]]:
    """Every (tool, {arg: value as text}) the text states, as JSON or as a Python call."""
    calls, decoder = [], json.JSONDecoder()
    for start in (i for i, c in enumerate(text) if c == "{"):
        try:
            obj, _ = decoder.raw_decode(text[start:])
        except json.JSONDecodeError:
            continue
        if not isinstance(obj, dict):
            continue
        name_key = next((k for k in ("tool", "name", "function") if isinstance(obj.get(k), str)), None)
        if name_key is None:
            continue
        args = next((obj[k] for k in ("args", "arguments", "parameters") if isinstance(obj.get(k), dict)),
                    {k: v for k, v in obj.items() if k != name_key})
        calls.append((obj[name_key], {k: str(v) for k, v in args.items()}))
    for match in _PY_CALL.finditer(text):
        tool, parts = match.group(1), [p.strip() for p in match.group(2).split(",") if p.strip()]
        args = {}
        for i, part in enumerate(parts):
            key, eq, value = part.partition("=")
            if not eq:  # positional: the signature's i-th parameter
                key, value = (_SIGNATURES[tool][i] if i < len(_SIGNATURES[tool]) else f"#{i}"), part
            args[key.strip()] = value.strip().strip("'\"")
        calls.append((tool, args))
    return calls
