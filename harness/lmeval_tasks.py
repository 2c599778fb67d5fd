"""lm-eval task folders: what the harness hands lm-eval to score a stream task or the
knowledge probe, and what `scripts/lm_eval_export.py` commits to benchmarks/lm_eval.

A folder is self-contained (`<name>.yaml`, `test.jsonl`, `utils.py` that loads the JSONL
from beside itself), so `lm_eval --include_path <folder> --tasks <name>` works from any
directory. The YAML is dumped from a dict (lm-eval's `!function` tag included), never
written by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from harness.storage import atomic_write_text, stable_hash
from harness.tasks import Split, Task

LOCAL_DATA_UTILS = '''"""Loads test.jsonl from this folder, wherever lm-eval is run from."""
from pathlib import Path

import datasets


def load_local(**kwargs):
    path = str(Path(__file__).resolve().parent / "test.jsonl")
    return datasets.load_dataset("json", data_files={"test": path})
'''

_SCORER = '''

from harness.tasks import get_task

_TASK = get_task(TASK_NAME)


def process_results(doc, results):
    return {"score": _TASK.score(results[0], doc["target"]),
            "content": _TASK.score_content(results[0], doc["target"], doc["prompt"])}
'''

STOP_STRINGS = ["<|im_end|>", "</s>", "<|endoftext|>"]


class Function(str):
    """A `!function module.name` reference in an lm-eval task YAML."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(Function, lambda d, v: d.represent_scalar("!function", str(v)))


def write_folder(folder: Path, name: str, rows: list[dict], config: dict,
                 utils: str = LOCAL_DATA_UTILS) -> str:
    """Write `<folder>/{<name>.yaml, test.jsonl, utils.py}`; return the task name. Each
    file is replaced atomically: cells running at once (`--jobs`) rewrite the same folder
    with the same content while another's lm-eval reads it."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "test.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    atomic_write_text(folder / "utils.py", utils)
    header = {"task": name, "custom_dataset": Function("utils.load_local"), "test_split": "test"}
    atomic_write_text(folder / f"{name}.yaml",
                      yaml.dump({**header, **config}, Dumper=_Dumper, sort_keys=False, width=1000))
    return name


def lmeval_task_name(task_name: str) -> str:
    return "cl_" + task_name.replace("-", "_")


def write_task(task: Task, split: Split, folder: Path, max_new_tokens: int | None = None,
               name: str | None = None) -> str:
    """A stream task's test set, scored by the task's own scorer, greedy, stopping at the
    chat template's end-of-turn; return the lm-eval task name. Items with a system message
    (`Framed`) carry it, and lm-eval puts it before the user turn. `name` replaces the
    lm-eval task name (a probe that scores a task's test set uses its own)."""
    systems = [getattr(e, "system", "") for e in split.test]  # Framed examples' system messages
    test_hash = stable_hash([task.name, task.version,
                             [e.prompt + e.target + s for e, s in zip(split.test, systems)]])
    config = {
        "output_type": "generate_until",
        "doc_to_text": "{{prompt}}",
        "doc_to_target": "{{target}}",
        "generation_kwargs": {"until": STOP_STRINGS, "do_sample": False,
                              "max_gen_toks": max_new_tokens or task.max_new_tokens},
        "process_results": Function("utils.process_results"),
        "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": True}
                        for m in ("score", "content")],  # strict, and content (Task.score_content)
        "metadata": {"version": task.version, "test_hash": test_hash},
    }
    rows = [{"prompt": e.prompt, "target": e.target} for e in split.test]
    if any(systems):  # lm-eval turns a task's description into the chat's system message
        config["description"] = "{{system}}"
        rows = [{**row, "system": system} for row, system in zip(rows, systems)]
    utils = LOCAL_DATA_UTILS + _SCORER.replace("TASK_NAME", repr(task.name))
    return write_folder(folder, name or lmeval_task_name(task.name), rows, config, utils)
