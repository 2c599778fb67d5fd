"""External instruction set: general instruction/response pairs the model did not write.

Used by the external-data-mixing baseline (general data mixed into task data). Written by
us: small hand-written fact tables expanded by templates into conversational answers, in
plain chat style on purpose (unlike any task's output format). Deterministic; see
docs/data-cards.md for the card.
"""

from __future__ import annotations

DEFINITIONS = {
    "volcano": "a mountain with an opening through which melted rock, ash and gas escape from inside the Earth",
    "library": "a place where books and other materials are kept for people to read or borrow",
    "glacier": "a large, slow-moving mass of ice formed from snow that has built up over many years",
    "thermometer": "an instrument that measures temperature",
    "democracy": "a system of government in which citizens choose their leaders by voting",
    "fossil": "the preserved remains or traces of a plant or animal that lived long ago",
    "habitat": "the natural home or environment of an animal or plant",
    "orchestra": "a large group of musicians who play different instruments together",
    "compass": "a tool with a magnetic needle that points north and helps people find direction",
    "recipe": "a set of instructions for preparing a dish, with a list of ingredients",
    "desert": "a dry area that receives very little rain",
    "microscope": "an instrument that makes very small things look larger so they can be studied",
    "vaccine": "a substance that trains the immune system to protect the body against a disease",
    "planet": "a large body that moves in an orbit around a star",
    "budget": "a plan for how money will be earned and spent over a period of time",
    "poem": "a piece of writing that uses rhythm, sound and imagery to express ideas or feelings",
    "bridge": "a structure built to carry a road or path across a river, valley or other obstacle",
    "harbor": "a sheltered area of water where ships can stay safely",
    "museum": "a building where objects of historical, scientific or artistic interest are kept and shown",
    "election": "a formal process in which people vote to choose a person for a position",
    "island": "a piece of land completely surrounded by water",
    "battery": "a device that stores chemical energy and releases it as electricity",
    "calendar": "a chart that shows the days, weeks and months of a year",
    "telescope": "an instrument that makes distant objects such as stars look closer",
    "umbrella": "a folding cover on a stick that protects a person from rain or sun",
    "continent": "one of the seven very large land masses on Earth",
    "dictionary": "a book or resource that lists words in order and explains their meanings",
    "season": "one of the four parts of the year: spring, summer, autumn and winter",
    "forest": "a large area covered mostly with trees and plants",
    "passport": "an official document that shows who you are and lets you travel between countries",
    "satellite": "an object that moves around a planet, such as the Moon or a machine sent into space",
    "rainbow": "an arc of colours in the sky made when sunlight shines through raindrops",
    "skeleton": "the frame of bones that supports the body of a person or animal",
    "marathon": "a long-distance running race of about 42 kilometres",
    "algorithm": "a step-by-step set of rules for solving a problem or completing a task",
    "ecosystem": "a community of living things and the environment they share",
    "password": "a secret word or phrase used to get access to an account or device",
    "canal": "a waterway dug by people for boats to travel along or to carry water",
    "pharmacy": "a shop where medicines are prepared and sold",
    "hurricane": "a very strong storm with powerful winds that forms over warm ocean water",
}

CATEGORIES = {
    "fruits": ["apples", "bananas", "oranges"], "vegetables": ["carrots", "peas", "spinach"],
    "colours": ["red", "blue", "green"], "planets": ["Mercury", "Venus", "Mars"],
    "musical instruments": ["the piano", "the violin", "the flute"],
    "farm animals": ["cows", "sheep", "chickens"], "sports": ["football", "tennis", "swimming"],
    "countries in Europe": ["France", "Spain", "Norway"], "kitchen tools": ["a knife", "a whisk", "a ladle"],
    "types of weather": ["rain", "snow", "fog"], "birds": ["sparrows", "eagles", "penguins"],
    "metals": ["iron", "copper", "silver"], "school subjects": ["history", "mathematics", "biology"],
    "shapes": ["a circle", "a square", "a triangle"], "jobs": ["a nurse", "a teacher", "an engineer"],
    "ocean animals": ["dolphins", "octopuses", "sharks"], "flowers": ["roses", "tulips", "daisies"],
    "board games": ["chess", "checkers", "backgammon"], "insects": ["ants", "bees", "butterflies"],
    "rivers": ["the Nile", "the Amazon", "the Danube"], "breakfast foods": ["oatmeal", "toast", "eggs"],
    "means of transport": ["the train", "the bicycle", "the bus"], "trees": ["oak", "pine", "birch"],
    "languages": ["Spanish", "Japanese", "Swahili"], "desserts": ["ice cream", "apple pie", "pudding"],
}

OPPOSITES = [("hot", "cold"), ("tall", "short"), ("early", "late"), ("happy", "sad"),
             ("open", "closed"), ("full", "empty"), ("light", "dark"), ("fast", "slow"),
             ("strong", "weak"), ("rich", "poor"), ("loud", "quiet"), ("wet", "dry"),
             ("young", "old"), ("easy", "difficult"), ("clean", "dirty"), ("heavy", "light"),
             ("near", "far"), ("begin", "end"), ("buy", "sell"), ("push", "pull"),
             ("above", "below"), ("inside", "outside"), ("remember", "forget"), ("win", "lose"),
             ("arrive", "leave"), ("thick", "thin"), ("sharp", "blunt"), ("brave", "afraid"),
             ("smooth", "rough"), ("generous", "selfish")]

# (France, Japan, Italy and the UK are left out: the knowledge probe asks for them.)
CAPITALS = [("Spain", "Madrid"),
            ("Germany", "Berlin"), ("Canada", "Ottawa"), ("Egypt", "Cairo"), ("Kenya", "Nairobi"),
            ("Peru", "Lima"), ("Norway", "Oslo"), ("Greece", "Athens"), ("Portugal", "Lisbon"),
            ("Poland", "Warsaw"), ("Ireland", "Dublin"), ("Sweden", "Stockholm"),
            ("Argentina", "Buenos Aires"), ("Thailand", "Bangkok"), ("Vietnam", "Hanoi"),
            ("Australia", "Canberra"), ("Mexico", "Mexico City"), ("Chile", "Santiago"),
            ("Austria", "Vienna"), ("Finland", "Helsinki"), ("Turkey", "Ankara"),
            ("Morocco", "Rabat"), ("India", "New Delhi"), ("China", "Beijing"),
            ("Brazil", "Brasilia"), ("Denmark", "Copenhagen"), ("Hungary", "Budapest")]

PLURALS = [("mouse", "mice"), ("child", "children"), ("tooth", "teeth"), ("foot", "feet"),
           ("person", "people"), ("man", "men"), ("woman", "women"), ("goose", "geese"),
           ("leaf", "leaves"), ("knife", "knives"), ("wolf", "wolves"), ("half", "halves"),
           ("cactus", "cacti"), ("city", "cities"), ("box", "boxes"), ("bus", "buses"),
           ("potato", "potatoes"), ("sheep", "sheep"), ("fish", "fish"), ("ox", "oxen")]

TIPS = {
    "sleeping better": "Keep a regular bedtime and avoid screens for the last hour before sleep.",
    "saving money": "Write down what you spend for a month; it shows where small costs add up.",
    "learning a language": "Practise a little every day, and try to speak with real people early on.",
    "staying focused": "Work in short blocks of about 25 minutes with a short break after each.",
    "eating healthily": "Fill half of your plate with vegetables at most meals.",
    "public speaking": "Rehearse out loud a few times and slow down more than feels natural.",
    "keeping plants alive": "Check the soil with a finger before watering; most plants die from too much water.",
    "making friends in a new city": "Join a club or class that meets every week, so you see the same people again.",
    "writing an email": "Put the main request in the first two sentences and keep it short.",
    "reducing stress": "Take a short walk outside; a change of scene and some movement both help.",
    "studying for an exam": "Test yourself with questions instead of only rereading your notes.",
    "running a first 5k": "Alternate running and walking at first, and build up slowly over several weeks.",
    "cooking rice": "Rinse the rice first and let it rest, covered, for a few minutes after cooking.",
    "packing a suitcase": "Roll your clothes instead of folding them; they take less space and crease less.",
    "being on time": "Plan to arrive ten minutes early, so small delays do not make you late.",
    "drinking more water": "Keep a filled bottle where you can see it during the day.",
    "reading more books": "Carry a book with you and read a few pages whenever you wait.",
    "keeping a tidy desk": "Spend two minutes clearing the desk at the end of each day.",
    "taking better photos": "Keep the light behind you and move closer to your subject.",
    "staying safe online": "Use a different password for every important account, kept in a password manager.",
}

CONVERSIONS = [("minutes", "hours", 60), ("seconds", "minutes", 60), ("days", "weeks", 7),
               ("centimetres", "metres", 100), ("grams", "kilograms", 1000),
               ("months", "years", 12), ("millimetres", "centimetres", 10),
               ("hours", "days", 24)]

POLITE = ["Give me the report", "Close the window", "Send me the file", "Call me tomorrow",
          "Move your car", "Turn the music down", "Explain this again", "Check my homework",
          "Book a table for two", "Fix the printer", "Bring more chairs", "Answer my email",
          "Wait for me outside", "Water the plants", "Lend me a pen"]

_NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                 "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
                 "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_in_words(n: int) -> str:
    if n < 20:
        return _NUMBER_WORDS[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens] + ("" if ones == 0 else "-" + _NUMBER_WORDS[ones])


def instructions() -> list[dict]:
    """All pairs, in a fixed order: [{"prompt", "response", "family"}]."""
    pairs = []

    def add(family, prompt, response):
        pairs.append({"prompt": prompt, "response": response, "family": family})

    for thing, meaning in DEFINITIONS.items():
        article = "an" if thing[0] in "aeiou" else "a"
        add("definition", f"What is {article} {thing}?",
            f"{article.capitalize()} {thing} is {meaning}.")
        add("definition", f"Explain the word '{thing}' in one sentence.",
            f"The word '{thing}' means {meaning}.")
    for category, items in CATEGORIES.items():
        add("list", f"Name three {category}.",
            f"Here are three {category}: {items[0]}, {items[1]} and {items[2]}.")
        add("list", f"Can you give me two examples of {category}?",
            f"Sure. Two examples of {category} are {items[0]} and {items[1]}.")
    for a, b in OPPOSITES:
        add("opposite", f"What is the opposite of '{a}'?", f"The opposite of '{a}' is '{b}'.")
        add("opposite", f"Give me a word that means the opposite of '{b}'.",
            f"A word that means the opposite of '{b}' is '{a}'.")
    for country, capital in CAPITALS:
        add("capital", f"What is the capital of {country}?", f"The capital of {country} is {capital}.")
        add("capital", f"Which country has {capital} as its capital?",
            f"{capital} is the capital of {country}.")
    for one, many in PLURALS:
        add("plural", f"What is the plural of '{one}'?", f"The plural of '{one}' is '{many}'.")
    for goal, tip in TIPS.items():
        add("advice", f"Give me one tip for {goal}.", f"Here is one tip for {goal}: {tip}")
        add("advice", f"I need some advice on {goal}. What should I try?",
            f"A good place to start: {tip} Small, steady habits tend to work best.")
    for small, big, factor in CONVERSIONS:
        for n in (2, 3, 5):
            add("conversion", f"How many {small} are there in {n} {big}?",
                f"There are {factor} {small} in one of the {big}, so {n} {big} make "
                f"{n * factor} {small}.")
    for request in POLITE:
        add("rewrite", f"Make this request more polite: \"{request}.\"",
            f"A more polite way to say it: \"Could you please {request[0].lower() + request[1:]}? Thank you!\"")
    for n in range(21, 100, 3):
        add("spelling", f"How do you write the number {n} in words?",
            f"The number {n} is written as \"{number_in_words(n)}\".")
    return pairs
