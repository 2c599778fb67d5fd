"""Task generators: deterministic, leak-free, and scored exactly."""

import dataclasses
import json

import pytest

from harness.errors import HarnessError
from harness.tasks import all_tasks, get_task

TASKS = list(all_tasks())


@pytest.mark.parametrize("name", TASKS)
def test_same_seed_same_bytes(name):
    a, b = get_task(name).split(40, 20, 3), get_task(name).split(40, 20, 3)
    dump = lambda s: json.dumps([dataclasses.asdict(e) for e in s.train + s.test])  # noqa: E731
    assert dump(a) == dump(b) and a.content_hash == b.content_hash
    assert get_task(name).split(40, 20, 4).content_hash != a.content_hash


@pytest.mark.parametrize("name", TASKS)
def test_split_is_disjoint_and_sized(name):
    s = get_task(name).split(50, 25, 0)
    assert len(s.train) == 50 and len(s.test) == 25
    key = lambda e: e.key or e.prompt  # noqa: E731
    assert not {key(e) for e in s.train} & {key(e) for e in s.test}
    assert not {e.prompt for e in s.train} & {e.prompt for e in s.test}


@pytest.mark.parametrize("name", TASKS)
def test_gold_demonstration_scores_full(name):
    task = get_task(name)
    s = task.split(30, 10, 0)
    assert all(task.score(e.response, e.target) == 1.0 for e in s.train + s.test)


def test_arith_scorer_needs_the_answer_format():
    task = get_task("arith")
    assert task.score("3 + 4 = 7\n#### 7", "7") == 1.0
    assert task.score("####7", "7") == 1.0
    assert task.score("The answer is 7.", "7") == 0.0  # no format: no credit
    assert task.score("#### 17", "7") == 0.0
    assert task.score("#### 8\n#### 7", "7") == 0.0  # the first answer line counts


def test_arith_prompts_are_answerable():
    task = get_task("arith")
    for e in task.split(20, 5, 1).train:
        work = e.response.split("\n")[0].replace("x", "*")
        assert eval(work.split("=")[0]) == int(e.target)  # noqa: S307 (our own numbers)


def test_json_scorer_parses_objects():
    task = get_task("json-extract")
    target = json.dumps({"name": "Ada Novak", "age": 30, "city": "Oslo"})
    assert task.score('{"city": "Oslo", "age": 30, "name": "Ada Novak"}', target) == 1.0
    assert task.score('Sure! {"name":"Ada Novak","age":30,"city":"Oslo"} done', target) == 1.0
    assert task.score('{"name": "Ada Novak", "age": "30", "city": "Oslo"}', target) == 0.0
    assert task.score('{"name": "Ada Novak", "age": 30}', target) == 0.0
    assert task.score("not json {", target) == 0.0


def test_content_hashes_are_unchanged():
    """The hashes key caches and result files: the recipe moved into content_hash, the
    values did not (recorded before the move; facts keeps its own recipe)."""
    assert get_task("arith").split(8, 4, 0).content_hash == "c7c64e52bc2647b3"
    assert get_task("json-extract").split(8, 4, 0).content_hash == "790a152eae138b80"
    assert get_task("facts").split(8, 4, 0).content_hash == "5afcbee36b62bc76"


def test_unknown_task_is_a_clear_error():
    with pytest.raises(HarnessError, match="unknown task 'nope'"):
        get_task("nope")


def test_impossible_split_size_is_a_clear_error():
    with pytest.raises(HarnessError, match="distinct examples"):
        get_task("arith").split(10**6, 10, 0)
