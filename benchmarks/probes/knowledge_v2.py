"""The data source of the `knowledge-v2` probe: multiple-choice questions over facts a
135M chat model can answer (capitals, arithmetic facts, antonyms, units and counts, young
animals, colours, irregular plurals and past tenses, chemical symbols), four options each.

The v1 probe (knowledge.json) has 40 questions: a lost question moves it by 0.025, as
much as the seed noise it should rise above. This one has 230. Every fact below was checked
by hand; the arithmetic is computed. Distractors come from the same category (other
capitals, other numbers near the answer, other antonyms), so that the answer is not given
away by its kind; antonyms are pairs no word of which is the opposite of another pair's
(no "heavy" beside light/dark, no "soft" beside loud, no "below" beside up/down).

    python benchmarks/probes/knowledge_v2.py     # rewrites benchmarks/probes/v2/knowledge.json

The file is committed; a test checks that it is this script's output and well formed.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from harness.seeding import generator

OUT = Path(__file__).resolve().parent / "v2" / "knowledge.json"
SEED = "knowledge-v2"

CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid",
    "Japan": "Tokyo", "China": "Beijing", "Russia": "Moscow", "Egypt": "Cairo",
    "the United Kingdom": "London", "Greece": "Athens", "Portugal": "Lisbon",
    "Ireland": "Dublin", "Norway": "Oslo", "Sweden": "Stockholm", "Finland": "Helsinki",
    "Denmark": "Copenhagen", "Poland": "Warsaw", "Austria": "Vienna", "Hungary": "Budapest",
    "the Netherlands": "Amsterdam", "Belgium": "Brussels", "Canada": "Ottawa",
    "Mexico": "Mexico City", "Argentina": "Buenos Aires", "Peru": "Lima", "Chile": "Santiago",
    "India": "New Delhi", "Thailand": "Bangkok", "South Korea": "Seoul", "Kenya": "Nairobi",
    "Australia": "Canberra", "Turkey": "Ankara", "Cuba": "Havana", "the Czech Republic": "Prague",
    "Iran": "Tehran", "Iraq": "Baghdad", "the Philippines": "Manila", "Indonesia": "Jakarta",
    "Vietnam": "Hanoi", "Colombia": "Bogota", "Venezuela": "Caracas", "Ethiopia": "Addis Ababa",
    "Saudi Arabia": "Riyadh", "Ukraine": "Kyiv", "Romania": "Bucharest",
}
ANTONYMS = [
    ("hot", "cold"), ("big", "small"), ("up", "down"), ("fast", "slow"), ("happy", "sad"),
    ("light", "dark"), ("open", "closed"), ("early", "late"), ("full", "empty"),
    ("hard", "soft"), ("young", "old"), ("rich", "poor"), ("wet", "dry"), ("strong", "weak"),
    ("tall", "short"), ("thick", "thin"), ("day", "night"),
    ("push", "pull"), ("win", "lose"), ("buy", "sell"), ("always", "never"),
    ("inside", "outside"), ("left", "right"), ("clean", "dirty"),
    ("cheap", "expensive"), ("true", "false"), ("friend", "enemy"), ("love", "hate"),
    ("question", "answer"), ("north", "south"), ("east", "west"), ("first", "last"),
    ("more", "less"), ("near", "far"), ("wide", "narrow"), ("smooth", "rough"),
    ("awake", "asleep"), ("arrive", "leave"), ("safe", "dangerous"), ("remember", "forget"),
    ("sweet", "bitter"), ("brave", "cowardly"),
]
# (question, answer): whole-number facts; distractors are other numbers near the answer
COUNTS = [
    ("How many centimeters are in a meter?", 100), ("How many grams are in a kilogram?", 1000),
    ("How many meters are in a kilometer?", 1000), ("How many seconds are in a minute?", 60),
    ("How many minutes are in an hour?", 60), ("How many hours are in a day?", 24),
    ("How many days are in a week?", 7), ("How many months are in a year?", 12),
    ("How many days are in a year that is not a leap year?", 365),
    ("How many days are in a leap year?", 366), ("How many weeks are in a year?", 52),
    ("How many millimeters are in a centimeter?", 10),
    ("How many milliliters are in a liter?", 1000), ("How many years are in a decade?", 10),
    ("How many years are in a century?", 100), ("How many years are in a millennium?", 1000),
    ("How many sides does a triangle have?", 3), ("How many sides does a square have?", 4),
    ("How many sides does a pentagon have?", 5), ("How many sides does a hexagon have?", 6),
    ("How many sides does an octagon have?", 8), ("How many legs does a spider have?", 8),
    ("How many legs does an insect have?", 6), ("How many legs does a dog have?", 4),
    ("How many legs does a bird have?", 2), ("How many cents are in a dollar?", 100),
    ("How many inches are in a foot?", 12), ("How many feet are in a yard?", 3),
    ("How many ounces are in a pound?", 16),
    ("How many players does a soccer team have on the field?", 11),
    ("How many strings does a standard guitar have?", 6),
    ("How many planets are in our solar system?", 8), ("How many continents are there?", 7),
    ("How many colors are in a rainbow?", 7),
    ("How many letters are in the English alphabet?", 26),
    ("How many days does February have in a year that is not a leap year?", 28),
    ("At how many degrees Celsius does water freeze?", 0),
    ("At how many degrees Celsius does water boil at sea level?", 100),
    ("How many wheels does a bicycle have?", 2), ("How many hours are in half a day?", 12),
]
YOUNG = {"cat": "kitten", "dog": "puppy", "cow": "calf", "horse": "foal", "sheep": "lamb",
         "duck": "duckling", "frog": "tadpole", "bear": "cub", "kangaroo": "joey",
         "goose": "gosling", "hen": "chick", "pig": "piglet", "swan": "cygnet", "deer": "fawn",
         "owl": "owlet", "butterfly": "caterpillar"}
COLOURS = {"a ripe banana": "yellow", "fresh grass": "green", "snow": "white", "coal": "black",
           "the sky on a clear day": "blue", "blood": "red", "a carrot": "orange",
           "a ripe tomato": "red", "milk": "white", "a lemon": "yellow", "a leaf in summer": "green",
           "a crow": "black", "a pumpkin": "orange", "a plum": "purple"}
COLOUR_WORDS = ["yellow", "green", "white", "black", "blue", "red", "orange", "purple", "brown",
                "pink"]
PLURALS = {"mouse": "mice", "child": "children", "foot": "feet", "tooth": "teeth", "man": "men",
           "woman": "women", "goose": "geese", "person": "people", "ox": "oxen",
           "knife": "knives", "leaf": "leaves", "wolf": "wolves"}
PAST = {"go": "went", "see": "saw", "eat": "ate", "run": "ran", "write": "wrote", "take": "took",
        "give": "gave", "come": "came", "swim": "swam", "drink": "drank", "sing": "sang",
        "buy": "bought", "think": "thought", "teach": "taught", "fly": "flew", "begin": "began",
        "speak": "spoke", "break": "broke"}
SYMBOLS = {"O": "Oxygen", "H": "Hydrogen", "Fe": "Iron", "Au": "Gold", "Ag": "Silver",
           "Na": "Sodium", "C": "Carbon", "N": "Nitrogen", "He": "Helium", "Cu": "Copper"}


def _mc(rng: random.Random, question: str, answer: str, pool: list[str]) -> dict:
    """Four options: the answer and three distinct distractors from `pool`, shuffled."""
    distractors = rng.sample(sorted(set(pool) - {answer}), 3)
    choices = [answer] + distractors
    rng.shuffle(choices)
    return {"question": question, "choices": choices, "answer": choices.index(answer)}


def _near(n: int) -> list[str]:
    """Numbers a guess might confuse with `n`: its neighbours, halves, doubles, tens."""
    candidates = {n + 1, n - 1, n + 2, n * 2, n // 2, n + 10, n * 10, n - 10} - {n}
    return [str(c) for c in sorted(candidates) if c >= 0]


def questions() -> list[dict]:
    rng = generator(SEED, "probe data")
    out = []
    capitals = sorted(CAPITALS.values())
    for country, city in CAPITALS.items():
        out.append(_mc(rng, f"What is the capital of {country}?", city, capitals))
    for a in range(2, 10):  # arithmetic facts: sums and products of one-digit numbers
        b = (a * 3) % 7 + 2
        out.append(_mc(rng, f"What is {a} plus {b}?", str(a + b), _near(a + b)))
        out.append(_mc(rng, f"What is {a} times {b}?", str(a * b), _near(a * b)))
    for a, b in ((10, 10), (20, 5), (100, 50), (12, 12), (15, 3), (9, 9), (50, 50), (25, 4)):
        out.append(_mc(rng, f"What is {a} plus {b}?", str(a + b), _near(a + b)))
        out.append(_mc(rng, f"What is {a} times {b}?", str(a * b), _near(a * b)))
    words = [w for pair in ANTONYMS for w in pair]
    for a, b in ANTONYMS:
        out.append(_mc(rng, f"What is the opposite of {a}?", b, words))
    for question, n in COUNTS:
        out.append(_mc(rng, question, str(n), _near(n)))
    young = sorted(YOUNG.values())
    for animal, baby in YOUNG.items():
        out.append(_mc(rng, f"What is a baby {animal} called?", baby, young))
    for thing, colour in COLOURS.items():
        out.append(_mc(rng, f"What color is {thing}?", colour, COLOUR_WORDS))
    plurals = sorted(PLURALS.values()) + ["mouses", "childs", "foots", "tooths"]
    for word, plural in PLURALS.items():
        out.append(_mc(rng, f"What is the plural of {word}?", plural, plurals))
    past = sorted(PAST.values())
    for verb, form in PAST.items():
        out.append(_mc(rng, f"What is the past tense of {verb}?", form, past))
    elements = sorted(SYMBOLS.values())
    for symbol, element in SYMBOLS.items():
        out.append(_mc(rng, f"Which element has the chemical symbol {symbol}?", element, elements))
    return out


def render() -> str:
    return json.dumps(questions(), indent=0) + "\n"


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render())
    print(f"wrote {len(questions())} questions to {OUT}")
