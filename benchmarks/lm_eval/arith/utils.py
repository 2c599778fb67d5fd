"""Loads test.jsonl from this folder, wherever lm-eval is run from."""
from pathlib import Path

import datasets


def load_local(**kwargs):
    path = str(Path(__file__).resolve().parent / "test.jsonl")
    return datasets.load_dataset("json", data_files={"test": path})


from harness.tasks import get_task

_TASK = get_task('arith')


def process_results(doc, results):
    return {"score": _TASK.score(results[0], doc["target"]),
            "content": _TASK.score_content(results[0], doc["target"], doc["prompt"])}
