"""Writing small suites for tests."""

from pathlib import Path

import yaml


def tiny_suite(folder: Path, model: str, **overrides) -> Path:
    suite = {
        "name": "tiny",
        "models": [model],
        "streams": {"two": ["arith", "json-extract"]},
        "methods": {"sft": {}, "lora": {"r": 4, "alpha": 8, "train": {"lr": 1e-2}}},
        "seeds": [0],
        "probes": ["drift", "knowledge"],
        "train": {"steps": 3, "lr": 1e-3, "batch_size": 4, "max_len": 96},
        "data": {"n_train": 8, "n_test": 4},
        "eval": {"batch_size": 8, "max_new_tokens": 6},
    }
    suite.update(overrides)
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path
