"""Evaluation: our in-process Evaluator against the `lm_eval` command line, same items.

Both score the base model on arith's 32 test items (benchmarks/lm_eval/arith holds the
same items as split(64, 32, seed 0)), greedy, chat template, batch 32. Ours runs in this
process on a model already loaded; the command line's wall-clock includes its own
interpreter start-up, imports and model loading, which is what a user of it pays.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts.perf.common import REPO, device, load

N_TEST, EVAL_BATCH = 32, 32


def ours(model_path: str) -> dict:
    """Our Evaluator on task arith: (score, seconds of evaluate(), seconds with loading)."""
    from harness.config import EvalSettings
    from harness.evaluation import Evaluator
    from harness.tasks import get_task

    start = time.perf_counter()
    model, tok = load(model_path)
    task = get_task("arith")
    evaluator = Evaluator([task], [task.split(64, N_TEST, 0)], [],
                          EvalSettings(batch_size=EVAL_BATCH), tok)
    ready = time.perf_counter()
    row = evaluator.evaluate(model)
    end = time.perf_counter()
    return {"score": row.scores["arith"], "items": row.items["arith"],
            "answers": row.outputs["arith"], "evaluate_s": end - ready, "with_setup_s": end - start}


def cli(model_path: str, threads: int) -> dict:
    """`python -m lm_eval ... --tasks cl_arith` in a subprocess: (score, wall-clock)."""
    out = Path(tempfile.mkdtemp(prefix="perf-lmeval-"))
    command = [sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args",
               f"pretrained={model_path},dtype=float32",
               "--include_path", str(REPO / "benchmarks" / "lm_eval"), "--tasks", "cl_arith",
               "--apply_chat_template", "--batch_size", str(EVAL_BATCH),
               "--device", device().type, "--output_path", str(out), "--log_samples"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"lm_eval command line failed ({done.returncode}):\n{done.stderr[-3000:]}")
    results = json.loads(next(out.rglob("results_*.json")).read_text())
    samples = [json.loads(line) for f in out.rglob("samples_cl_arith_*.jsonl")
               for line in f.read_text().splitlines()]
    samples.sort(key=lambda s: s["doc_id"])
    return {"score": results["results"]["cl_arith"]["score,none"],
            "items": [float(s["score"]) for s in samples],
            "answers": [s["filtered_resps"][0] for s in samples],
            "wall_s": seconds, "command": " ".join(command)}


def run(model_path: str, threads: int, say=print) -> dict:
    """Ours, then the command line; the per-item scores must be equal (and the answers:
    on the base model most scores are 0, so equal scores alone say little)."""
    mine = ours(model_path)
    theirs = cli(model_path, threads)
    same = mine["items"] == theirs["items"]
    differ = sum(a != b for a, b in zip(mine["answers"], theirs["answers"]))
    say(f"eval arith: ours score {mine['score']:.4f} in {mine['evaluate_s']:.1f} s "
        f"({mine['with_setup_s']:.1f} s with model load and task setup); lm_eval CLI score "
        f"{theirs['score']:.4f} in {theirs['wall_s']:.1f} s (includes its start-up and model load)")
    if not same:
        say("  WARNING: per-item scores differ between ours and the lm_eval command line")
    say(f"  answers: {len(mine['answers']) - differ} of {len(mine['answers'])} identical")
    ratio = mine["evaluate_s"] / theirs["wall_s"]
    line = (f"eval time ours/lm_eval CLI: {ratio:.2f}x "
            f"({mine['with_setup_s'] / theirs['wall_s']:.2f}x counting our model load), "
            f"scores {'equal' if same else 'DIFFERENT'}")
    drop = ("items", "answers")
    return {"ours": {k: v for k, v in mine.items() if k not in drop},
            "cli": {k: v for k, v in theirs.items() if k not in drop},
            "same_scores": same, "different_answers": differ, "ratio_time": ratio, "line": line}
