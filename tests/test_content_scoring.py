"""Content and format scored apart (issue 31 item 2): every built-in task scores the
answer's content whatever its wrapper (`Task.score_content`) beside the strict score; echoing
the question earns no content; a suite's `primary` picks the metric R ranks on, and the
default (strict) keeps every existing grid id and config hash."""

import dataclasses
import json

import pytest

from harness.config import load_suite
from harness.errors import HarnessError
from harness.grid import expand, grid_id, plan
from harness.results import build_result
from harness.tasks import all_tasks, get_task

BUILTIN = sorted(all_tasks())

# computed on main before content scoring existed (commit 7c37dbd)
PINS = {"quickstart": ("ce58373bb7a11f36", "100d2ef7a0047c7e"),
        "leaderboard": ("d253f81a9d5c1733", "0c9460832a7fd74d"),
        "pilot-v2": ("983e1cf9cabfa99d", "c885fafa17e80dc2")}  # grid id: labels-last added


@pytest.mark.parametrize("name", BUILTIN)
def test_gold_answers_get_content_and_echoes_do_not(name):
    task = get_task(name)
    split = task.split(64, 64, 0)
    for e in split.train + split.test:
        assert task.score_content(e.response, e.target, e.prompt) == 1.0, e
        assert task.score_content(e.prompt, e.target, e.prompt) == 0.0, e  # an echo
        assert task.score_content("", e.target, e.prompt) == 0.0


def test_facts_content_ignores_a_town_named_like_the_person():
    task = get_task("facts")
    split = task.split(128, 200, 0)
    echoed = [e for e in split.test if e.target.lower() in e.prompt.lower()]
    assert echoed  # such items exist: the town is a part of the person's name
    for e in echoed:
        name = e.response.split(" lives in ")[0]
        assert task.score(name, e.target) == 1.0  # the strict scorer credits the echo
        assert task.score_content(name, e.target, e.prompt) == 0.0
        assert task.score_content(e.response, e.target, e.prompt) == 1.0


def test_arith_content_is_the_answer_without_the_format():
    task = get_task("arith")
    q = "Ravi has 4 pencils and finds 8 more. How many pencils does Ravi have now?"
    dropped = "4 + 8 = 12\nSo Ravi has 12 pencils."  # dft's failure: no '####'
    assert task.score(dropped, "12") == 0.0 and task.score_content(dropped, "12", q) == 1.0
    # the question's numbers repeated, in any order, earn nothing
    for echo in ("Ravi has 4 pencils and finds 8 more.", "8", "4 and 8", "#### 8", "8 + 4"):
        assert task.score_content(echo, "12", q) == 0.0, echo
    assert task.score_content("4 + 8 = 13", "12", q) == 0.0  # a wrong sum
    assert task.score_content("12 ... no, 13", "12", q) == 0.0  # the last number counts
    assert task.score_content("#### 12", "12", q) == 1.0 == task.score("#### 12", "12")


def test_classify_content_names_one_label_beyond_the_message():
    task = get_task("classify")
    q = "Which queue should this message go to?\nMessage: Please cancel my lamp order and refund me."
    assert task.score("This goes to the refund queue.", "refund") == 0.0
    assert task.score_content("This goes to the refund queue.", "refund", q) == 1.0
    assert task.score_content("Please cancel my lamp order and refund me.", "refund", q) == 0.0
    assert task.score_content("refund or billing", "refund", q) == 0.0  # two labels
    assert task.score_content("Refunds.", "refund", q) == 1.0


def test_json_content_in_any_layout():
    task = get_task("json-extract")
    gold = json.dumps({"name": "Ana Lee", "age": 30, "city": "Lima"})
    q = "Extract the person as JSON.\nText: Ana Lee, who is 30, has lived in Lima for a few years."
    for layout in ('{"city": "Lima", "age": 30, "name": "Ana Lee"}', "name: Ana Lee\nage: 30\ncity: Lima",
                   "Here it is: {'Name': 'ana lee', 'Age': '30', 'City': 'Lima'}",
                   '```json\n{\n  "name": "Ana Lee",\n  "age": 30,\n  "city": "Lima"\n}\n```'):
        assert task.score_content(layout, gold, q) == 1.0, layout
    assert task.score("name: Ana Lee\nage: 30\ncity: Lima", gold) == 0.0
    assert task.score_content('{"name": "Ana Lee", "age": 31, "city": "Lima"}', gold, q) == 0.0
    assert task.score_content('{"name": "Ana Lee", "age": 30}', gold, q) == 0.0  # a field missing
    assert task.score_content("Ana Lee is 30 and lives in Lima.", gold, q) == 0.0


def test_tool_call_content_in_any_call_layout():
    task = get_task("tool-call")
    gold = json.dumps({"tool": "convert_currency", "args": {"amount": 100, "source": "USD", "target": "EUR"}})
    for layout in ('convert_currency(amount=100, source="USD", target="EUR")',
                   "convert_currency(100, 'USD', 'EUR')",
                   '{"name": "convert_currency", "arguments": {"amount": "100", "source": "USD", "target": "EUR"}}',
                   'Call: {"tool": "convert_currency", "amount": 100, "source": "USD", "target": "EUR"}'):
        assert task.score_content(layout, gold) == 1.0, layout
    assert task.score_content("convert_currency(amount, source, target)", gold) == 0.0  # the tool list
    assert task.score_content('convert_currency(amount=100, source="USD", target="GBP")', gold) == 0.0
    assert task.score_content('get_weather(amount=100, source="USD", target="EUR")', gold) == 0.0


def test_transform_content_ignores_the_separator():
    task = get_task("transform")
    assert task.score_content("candle, river, apple", "candle > river > apple") == 1.0
    assert task.score("candle, river, apple", "candle > river > apple") == 0.0
    assert task.score_content("Reversed:\nCandle -> River -> Apple.", "candle > river > apple") == 1.0
    assert task.score_content("apple, river, candle", "candle > river > apple") == 0.0
    assert task.score_content("candle > apple > river", "candle > river > apple") == 0.0
    assert task.score_content("apple, river, candle -> candle, river, apple", "candle > river > apple") == 1.0
    # seen in the v2 pilot: a stutter and a list that runs on are not the answer
    assert task.score_content("candle > candle > river > apple", "candle > river > apple") == 0.0
    assert task.score_content("candle > river > apple > apple > river", "candle > river > apple") == 0.0


def test_default_primary_keeps_grid_ids_and_hashes():
    for name, (gid, config_hash) in PINS.items():
        suite = load_suite(name)
        assert suite.primary == "strict"
        assert grid_id(suite) == gid and plan(expand(suite)[0], suite).config_hash == config_hash
        content = dataclasses.replace(suite, primary="content")
        assert grid_id(content) != gid
        assert plan(expand(content)[0], content).config_hash != config_hash


def test_primary_is_checked(tmp_path):
    text = (load_suite("quickstart").path and open(load_suite("quickstart").path).read())
    path = tmp_path / "s.yaml"
    path.write_text(text + "\nprimary: contents\n")
    with pytest.raises(HarnessError, match="primary must be one of strict, content"):
        load_suite(str(path))
    path.write_text(text + "\nprimary: content\n")
    assert load_suite(str(path)).primary == "content"


def _rows():
    """Two rows of two tasks: strict and content items differ."""
    return [{"scores": {"a": 0.0, "b": 0.5}, "items": {"a": [0.0, 0.0], "b": [1.0, 0.0]},
             "content": {"a": [1.0, 0.0], "b": [1.0, 1.0]}, "probes": {}},
            {"scores": {"a": 0.5, "b": 1.0}, "items": {"a": [1.0, 0.0], "b": [1.0, 1.0]},
             "content": {"a": [1.0, 1.0], "b": [1.0, 1.0]}, "probes": {}}]


@pytest.mark.parametrize("primary", ["strict", "content"])
def test_result_records_both_scorings_and_ranks_on_the_primary(primary):
    rows = _rows()[:1] + _rows()[1:] + _rows()[1:]  # base row + 2 tasks
    result = build_result(
        cell={"model": "m", "stream": "s", "method": "sft", "seed": 0}, tasks=["a", "b"],
        rows=rows, probes={}, training=[], config={"params": {}, "train": {}, "data": {},
                                                   "eval": {}, "tasks": {}},
        config_hash="c", model_id="m", grid_id="g", suite="x", timings={}, versions={},
        hardware={}, method_stats={}, primary=primary)
    assert result["by_metric"]["strict"]["R"][0] == [0.0, 0.5]
    assert result["by_metric"]["content"]["R"][0] == [0.5, 1.0]
    assert result["by_metric"]["content"]["items"]["a"][0] == [1.0, 0.0]
    assert result["R"] == result["by_metric"][primary]["R"]
    assert result["items"] == result["by_metric"][primary]["items"]
    assert result["metrics"] == result["by_metric"][primary]["metrics"]
    assert result["primary"] == primary
