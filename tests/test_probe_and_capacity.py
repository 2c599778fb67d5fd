"""Bigger probes and test sets (issue 31 item 2): the knowledge-v2 probe (>= 200 questions
from a checked generator, a new probe so that v1 cells keep theirs) and every built-in task
able to give 200 test items beside its training data, under every data seed."""

import json
import re

import pytest

from harness.config import load_suite
from harness.grid import grid_id
from harness.probes import PROBE_DATA, get_probe
from harness.tasks import all_tasks, get_task

import benchmarks.probes.knowledge_v2 as source


def test_committed_questions_are_the_generators_output():
    assert (PROBE_DATA / "v2" / "knowledge.json").read_text() == source.render(), \
        "run `python benchmarks/probes/knowledge_v2.py`"


def test_questions_are_well_formed_and_many():
    qs = source.questions()
    assert len(qs) >= 200
    assert len({q["question"] for q in qs}) == len(qs)
    for q in qs:
        assert len(q["choices"]) == 4 == len(set(q["choices"])), q
        assert 0 <= q["answer"] < 4
    answers = {q["question"]: q["choices"][q["answer"]] for q in qs}
    for question, answer in answers.items():  # the arithmetic is right
        found = re.fullmatch(r"What is (\d+) (plus|times) (\d+)\?", question)
        if found:
            a, op, b = int(found[1]), found[2], int(found[3])
            assert int(answer) == (a + b if op == "plus" else a * b), question
    assert answers["What is the capital of Japan?"] == "Tokyo"
    assert answers["What is the opposite of hot?"] == "cold"
    assert answers["How many days are in a leap year?"] == "366"
    words = [w for pair in source.ANTONYMS for w in pair]
    assert len(words) == len(set(words))  # no word in two pairs: one right opposite


def test_probe_is_new_and_its_version_hashes_its_data(tmp_path, monkeypatch):
    probe = get_probe("knowledge-v2")
    assert get_probe("knowledge").version == "1"  # v1 cells keep theirs
    name = probe.lmeval_task(tmp_path)
    rows = [json.loads(line) for line in (tmp_path / name / "test.jsonl").read_text().splitlines()]
    assert rows == source.questions()
    before = probe.version
    changed = tmp_path / "probes"
    (changed / "v2").mkdir(parents=True)
    (changed / "v2" / "knowledge.json").write_text("[]")
    monkeypatch.setattr("harness.probes.PROBE_DATA", changed)
    assert probe.version != before and probe.version.startswith("1-")


def test_the_v2_data_does_not_move_existing_grid_ids():
    assert grid_id(load_suite("quickstart")) == "ce58373bb7a11f36"


@pytest.mark.parametrize("name", sorted(all_tasks()))
def test_every_task_gives_200_test_items_per_seed(name):
    task = get_task(name)
    tests = []
    for seed in (0, 1, 2):
        split = task.split(128, 200, seed)
        assert len(split.test) == 200 and len(split.train) == 128
        keys = [e.key or e.prompt for e in split.test]
        assert len(set(keys)) == 200
        if name != "facts":  # facts asks the same fact in held-out phrasings: no prompt shared
            assert not set(keys) & {e.key or e.prompt for e in split.train}
        else:  # every tested fact is trained on (test phrasings are held out)
            assert {e.response for e in split.test} <= {e.response for e in split.train}
        tests.append([e.prompt for e in split.test])
    assert tests[0] != tests[1] != tests[2]  # the data seed draws other items


def test_arith_keeps_its_v2_split_and_widens_only_when_full():
    from benchmarks.tasks.arith import Arith, capacity

    assert Arith().split(64, 32, 0).content_hash == "e2d5b353501e29a9"  # as before
    assert Arith().split(64, 200, 3).content_hash == "5176ad97da125eec"  # fits: as before
    big = Arith().split(128, 200, 0)
    assert capacity("2") == 296 < 328 <= capacity("3")
    assert all(Arith().score(e.response, e.target) == 1.0 for e in big.train + big.test)
