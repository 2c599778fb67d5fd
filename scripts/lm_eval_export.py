"""Write lm-eval task folders for every built-in task and the knowledge probe.

    python scripts/lm_eval_export.py [DIR]      # default: benchmarks/lm_eval

The folders are committed, so that anyone can evaluate a saved checkpoint on our tasks:

    lm_eval --model hf --model_args pretrained=CHECKPOINT --include_path benchmarks/lm_eval \\
        --tasks cl_arith --apply_chat_template

They hold the same test items as a suite with `data: {seed: 0, n_test: 32}` (the default),
so scores agree with the harness's own. A test checks that they are up to date.
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness.lmeval_tasks import write_task
from harness.probes import KnowledgeProbe, KnowledgeV2Probe
from harness.tasks import all_tasks

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "lm_eval"
N_TEST, DATA_SEED = 32, 0


def export(folder: Path = DEFAULT_DIR) -> list[str]:
    names = []
    for cls in all_tasks().values():
        task = cls()
        split = task.split(0, N_TEST, DATA_SEED)
        names.append(write_task(task, split, folder / task.name))
    names += [KnowledgeProbe().lmeval_task(folder), KnowledgeV2Probe().lmeval_task(folder)]
    return names


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR
    print("\n".join(export(target)))
