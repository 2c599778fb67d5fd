"""Acquisition of fictional knowledge: facts about invented people, asked back in other words.

Tests: whether fine-tuning writes new facts into the model. Each invented person has a
home town (invented too), a job (one of 24) and a pet (one of 16). Training asks each fact
with four phrasings and answers in a full sentence; the test asks every fact with two
phrasings never seen in training. The facts are made up, so the base model cannot know
them; a model that learned only the answer format guesses jobs and pets at about 1 in 20
and invented towns not at all.
"""

import re

from harness.seeding import generator
from harness.tasks import Example, Split, Task, content_hash

_SYLLABLES = ["zor", "bel", "qua", "mir", "tal", "ven", "dro", "kis", "lun", "pax", "rho",
              "sel", "tum", "vor", "wen", "yul", "gri", "fen", "oth", "nak"]
_JOBS = ["baker", "pilot", "gardener", "dentist", "painter", "plumber", "librarian",
         "carpenter", "tailor", "beekeeper", "glassblower", "locksmith", "potter", "jeweller",
         "ferryman", "clockmaker", "cartographer", "blacksmith", "florist", "bookbinder",
         "shepherd", "weaver", "lighthouse keeper", "violin maker"]
_PETS = ["parrot", "tortoise", "goat", "hamster", "ferret", "pony", "lizard", "rabbit",
         "hedgehog", "donkey", "iguana", "canary", "llama", "chinchilla", "axolotl", "peacock"]

_TRAIN = {
    "town": ["Where does {p} live?", "What town is {p} from?", "Which town is {p}'s home?",
             "Name the town where {p} lives."],
    "job": ["What does {p} do for a living?", "What is {p}'s job?", "What is {p}'s profession?",
            "How does {p} earn a living?"],
    "pet": ["What pet does {p} have?", "Which animal does {p} keep at home?",
            "What animal does {p} own?", "Does {p} have a pet? Which one?"],
}
_TEST = {
    "town": ["In which town can you find {p}'s home?", "Tell me the home town of {p}."],
    "job": ["What kind of work does {p} do?", "Tell me what {p} works as."],
    "pet": ["Tell me which pet {p} owns.", "Which animal lives with {p}?"],
}
_ANSWER = {"town": "{p} lives in {v}.", "job": "{p} works as a {v}.", "pet": "{p} has a {v}."}


def _word(rng, n):
    return "".join(rng.choice(_SYLLABLES) for _ in range(n)).capitalize()


class Facts(Task):
    name = "facts"
    version = "2"
    description = "facts about invented people, tested with paraphrased questions"
    max_new_tokens = 24

    def _world(self, rng, n_people):
        people, names = [], set()
        while len(people) < n_people:
            name = f"{_word(rng, 2)} {_word(rng, 2)}"
            if name in names:
                continue
            names.add(name)
            people.append({"name": name, "town": _word(rng, 2), "job": rng.choice(_JOBS),
                           "pet": rng.choice(_PETS)})
        return people

    def split(self, n_train, n_test, data_seed=0):
        """Test: every fact with two held-out phrasings. Train: the same facts with four
        other phrasings, round-robin, so that every tested fact is trained on."""
        rng = generator(data_seed, "task data", self.name, self.version)
        people = self._world(rng, -(-n_test // 6))
        facts = [(p, attr) for p in people for attr in ("town", "job", "pet")]
        test = tuple(self._example(p, a, _TEST[a][r]) for r in range(2) for p, a in facts)[:n_test]
        pool = [self._example(p, a, _TRAIN[a][r]) for r in range(4) for p, a in facts]
        train = tuple(pool[i % len(pool)] for i in range(n_train))
        return Split(self.name, train, test, content_hash(
            self.name, self.version, test + train, lambda e: e.prompt + e.response))

    @staticmethod
    def _example(person, attr, template):
        prompt = template.format(p=person["name"])
        return Example(prompt, _ANSWER[attr].format(p=person["name"], v=person[attr]),
                       person[attr])

    def sample(self, rng):  # facts are generated as a world, see split()
        raise NotImplementedError

    def score(self, output, target):
        return float(re.search(rf"\b{re.escape(target)}\b", output, re.I) is not None)

    def score_content(self, output, target, prompt=""):
        """The fact named anywhere, as `score` does, but more often than the question names
        it: an invented town can equal a part of the person's name (2 of 200 test items at
        data seed 0), and echoing the name must not earn it."""
        def count(text):
            return len(re.findall(rf"\b{re.escape(target)}\b", text, re.I))

        return float(count(output) > count(prompt))
