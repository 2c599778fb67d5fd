"""The built-in benchmark: new tasks' scorers, the facts split, the external instruction
set, named streams, and the committed lm-eval task folders."""

import filecmp
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.external import instructions
from harness.config import load_streams
from harness.probes import general_prompts
from harness.tasks import all_tasks, get_task
from helpers import load_script

ROOT = Path(__file__).resolve().parent.parent
EXPORT = load_script("lm_eval_export")


def test_tool_call_scorer():
    task = get_task("tool-call")
    target = json.dumps({"tool": "get_weather", "args": {"city": "Oslo", "unit": "F"}})
    assert task.score('{"tool":"get_weather","args":{"unit":"F","city":"Oslo"}}', target) == 1.0
    assert task.score('Calling: {"tool": "get_weather", "args": {"city": "Oslo", "unit": "F"}}', target) == 1.0
    assert task.score('{"tool": "get_weather", "args": {"city": "Oslo", "unit": "C"}}', target) == 0.0
    assert task.score('{"tool": "set_alarm", "args": {"city": "Oslo", "unit": "F"}}', target) == 0.0
    assert task.score("get_weather(Oslo, F)", target) == 0.0


def test_classify_scorer_takes_the_first_word():
    task = get_task("classify")
    assert task.score("refund", "refund") == 1.0
    assert task.score("Refund.", "refund") == 1.0
    assert task.score("billing or refund", "refund") == 0.0
    assert task.score("This goes to the refund queue", "refund") == 0.0


def test_transform_scorer_is_exact_on_the_first_line():
    task = get_task("transform")
    assert task.score("c > b > a", "c > b > a") == 1.0
    assert task.score("c > b > a.\nmore", "c > b > a") == 1.0
    assert task.score("c, b, a", "c > b > a") == 0.0
    assert task.score("a > b > c", "c > b > a") == 0.0


def test_facts_scorer_and_split():
    task = get_task("facts")
    assert task.score("She lives in Quamirtal.", "Quamirtal") == 1.0
    assert task.score("quamirtal", "Quamirtal") == 1.0
    assert task.score("She lives in Quamirtalia.", "Quamirtal") == 0.0  # whole word only
    split = task.split(64, 32, 0)
    assert len(split.test) == 32 and len(split.train) == 64
    assert not {e.prompt for e in split.train} & {e.prompt for e in split.test}
    trained = {(e.target, e.response) for e in split.train}
    for e in split.test:  # every tested fact is taught, with a different question
        assert (e.target, e.response) in trained


def test_at_least_six_tasks_with_cards():
    tasks = all_tasks()
    assert len(tasks) >= 6
    card = (ROOT / "docs" / "data-cards.md").read_text()
    for name, cls in tasks.items():
        assert cls.description and f"`{name}`" in card


def test_external_instruction_set():
    pairs = instructions()
    assert len(pairs) >= 300
    assert len({p["prompt"] for p in pairs}) == len(pairs)
    assert pairs == instructions()  # deterministic
    assert len({p["family"] for p in pairs}) >= 8
    knowledge = json.loads((ROOT / "benchmarks" / "probes" / "knowledge.json").read_text())
    probe_text = " ".join(q["question"] for q in knowledge) + " ".join(general_prompts())
    for p in pairs:  # no probe question is answered by the mixing data
        assert p["prompt"] not in probe_text
    for country in ("France", "Japan", "Italy", "United Kingdom"):
        assert not any(country in p["prompt"] for p in pairs)


def test_named_streams():
    streams = load_streams()
    tasks = all_tasks()
    long = {n: s for n, s in streams.items() if 3 <= len(s) <= 4}
    assert len(long) >= 3
    assert all(t in tasks for s in streams.values() for t in s)
    assert len({tuple(s) for s in long.values()}) == len(long)


def test_committed_lm_eval_folders_are_up_to_date(tmp_path):
    names = EXPORT.export(tmp_path)
    assert len(names) == len(all_tasks()) + 2  # and the knowledge probes v1 and v2
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(p.relative_to(EXPORT.DEFAULT_DIR) for p in EXPORT.DEFAULT_DIR.rglob("*")
                       if p.is_file() and "__pycache__" not in p.parts)
    assert fresh == committed, "run `python scripts/lm_eval_export.py`"
    for rel in fresh:
        assert filecmp.cmp(tmp_path / rel, EXPORT.DEFAULT_DIR / rel, shallow=False), rel


def test_lm_eval_task_configs_load():
    from lm_eval.tasks import TaskManager, get_task_dict

    manager = TaskManager(include_path=str(EXPORT.DEFAULT_DIR), include_defaults=False)
    names = [f"cl_{n.replace('-', '_')}" for n in all_tasks()] + ["cl_probe_knowledge"]
    loaded = get_task_dict(names, manager)
    for name in names:
        docs = list(loaded[name].test_docs())
        assert len(docs) == (40 if name == "cl_probe_knowledge" else 32)


@pytest.mark.slow
def test_lm_eval_command_line_on_a_saved_checkpoint(tmp_path, tiny_model_dir):
    out = tmp_path / "lm_eval_out"
    proc = subprocess.run(
        [sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args",
         f"pretrained={tiny_model_dir}", "--include_path", str(EXPORT.DEFAULT_DIR), "--tasks",
         "cl_arith,cl_probe_knowledge", "--apply_chat_template", "--limit", "4",
         "--batch_size", "4", "--output_path", str(out)],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(next(out.rglob("results_*.json")).read_text())["results"]
    assert 0.0 <= results["cl_arith"]["score,none"] <= 1.0
    assert 0.0 <= results["cl_probe_knowledge"]["acc_norm,none"] <= 1.0
