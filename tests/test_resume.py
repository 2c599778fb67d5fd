"""A killed cell resumes after its last completed task (harness/checkpoint.py): SIGKILLs at
random moments, a re-run after each, and the results equal an uninterrupted run's; the
methods' state_dict / load_state_dict hooks give the next task's losses exactly."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import re
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import SETTINGS, setup_method, tiny_suite, train_stream_task

from harness import checkpoint
from harness.seeding import seeded
from harness.training import train_task

SUITE = dict(streams={"three": ["arith", "json-extract", "classify"]},
             methods={"ewc": {"fisher_examples": 4}, "replay": {"buffer_per_task": 2}},
             probes=["drift"], train={"steps": 2, "lr": 1e-3, "batch_size": 4, "max_len": 64},
             data={"n_train": 8, "n_test": 4}, eval={"batch_size": 8, "max_new_tokens": 4})
KILLS = 20
VOLATILE = {"timings", "finished_at"}  # wall-clock figures: differ between any two runs


# --------------------------------------------------------------------------- the hooks

def _state(**given) -> dict:
    """A checkpoint of a two-task cell after its first task."""
    return {"config_hash": "h", "cell": {}, "tasks": ["a", "b"], "done": 1, "weights": {},
            "method": {}, "rows": [{}, {}], "training": [{}], "stats": {}, "history": ["a"],
            "rng": checkpoint.rng_state(), "setup_s": 0.0, "elapsed_s": 0.0,
            "generation_s": 0.0, "resumed_after": [], **given}


def _fresh(name, params, tiny_model_dir):
    from harness.models import load_model

    model, tok, _ = load_model(str(tiny_model_dir), "cpu")
    torch.manual_seed(0)
    method, ctx, model = setup_method(name, model, tok, params)
    ctx.model_path = str(tiny_model_dir)  # selfaug's frozen base loads from it
    return method, ctx, model


def _next_task_losses(method, ctx, model) -> list[float]:
    task, examples = ctx.stream[1]
    with seeded(0, "task 1"):
        data = method.train_data(task, examples, ctx)  # multitask: none after the first
        return train_task(model, method, ctx, task, data, SETTINGS, 1)["losses"] if data else []


@pytest.mark.parametrize("name,params,stateful", [
    ("ewc", {"fisher_examples": 4, "lambda": 1e4}, True),
    ("replay", {"buffer_per_task": 3}, True),
    ("sdft", {"max_new_tokens": 6, "ema_rate": 0.5}, True),
    ("l2sp", {"alpha": 10.0}, False),
    ("lwf", {}, False),
    ("lora", {"r": 2, "alpha": 4}, False),
    ("multitask", {}, False),
    ("freeze", {"top_k": 1}, False),
    ("mix-external", {"ratio": 0.5}, False),
    ("selfaug", {"alpha": 1.0}, False),
    ("sdft-rewrite", {"max_new_tokens": 6}, False),
    ("sa-sft", {"user_tokens": 6, "answer_tokens": 6, "min_chars": 1, "max_rounds": 1}, False),
])
def test_state_round_trip_gives_the_same_next_task(name, params, stateful, tiny_model_dir,
                                                   tmp_path):
    """Train task 0, checkpoint (through the file), go on with task 1; a fresh method and
    model that load the checkpoint train task 1 with exactly the same losses. Without the
    method's state the stateful ones train it differently (so the hooks carry something)."""
    method, ctx, model = _fresh(name, params, tiny_model_dir)
    with seeded(0, "task 0"):
        train_stream_task(method, ctx, model, 0)
    checkpoint.save(tmp_path, _state(config_hash="h", history=list(ctx.history),
                                     weights=checkpoint.trainable(model),
                                     method=method.state_dict(ctx)))
    expected = _next_task_losses(method, ctx, model)
    saved, why = checkpoint.load(tmp_path, "h", ["a", "b"])
    assert why is None

    def resumed(with_state: bool) -> list[float]:
        method2, ctx2, model2 = _fresh(name, params, tiny_model_dir)
        assert checkpoint.weights_problem(model2, saved["weights"]) is None
        checkpoint.load_weights(model2, saved["weights"])
        ctx2.history = list(saved["history"])
        if with_state:
            method2.load_state_dict(saved["method"], ctx2)
        return _next_task_losses(method2, ctx2, model2)

    assert resumed(True) == expected
    if stateful:
        assert resumed(False) != expected
    else:
        assert method.state_dict(ctx) == {}


def test_checkpoint_of_other_settings_is_not_used(tmp_path):
    checkpoint.save(tmp_path, _state(config_hash="old"))
    assert checkpoint.load(tmp_path, "new", ["a", "b"]) == (
        None, "of other settings (its config hash differs)")
    assert checkpoint.load(tmp_path, "old", ["a", "b"])[0]["done"] == 1
    checkpoint.save(tmp_path, {k: v for k, v in _state(config_hash="old").items() if k != "rng"})
    assert checkpoint.load(tmp_path, "old", ["a", "b"]) == (None, "missing rng")
    checkpoint.path(tmp_path).write_bytes(b"half a file")
    assert checkpoint.load(tmp_path, "old", ["a", "b"])[1].startswith("unreadable")


# --------------------------------------------------------------------------- the kill campaign

def _run(argv: list[str], log: str, env: dict) -> None:
    """A `harness run` in a process forked from a server that imported the harness once
    (a fresh interpreter spends ~10 s importing torch and transformers on a loaded CPU)."""
    os.environ.update(env)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout.reconfigure(line_buffering=True)
    from harness import cli

    code = cli.main(argv)
    sys.stdout.flush()
    os._exit(code)


def _cells(log: str) -> list[tuple[str, str]]:
    """(cell id, line) for each line of a run's log under its cell's header."""
    cell, found = None, []
    for line in Path(log).read_text().splitlines():
        header = re.match(r"\[\d+/\d+\] (\S+)$", line)
        if header:
            cell = header.group(1)
        elif cell:
            found.append((cell, line))
    return found


def _comparable(result: dict) -> dict:
    kept = {k: v for k, v in result.items() if k not in VOLATILE}
    kept["training"] = [{k: v for k, v in t.items() if k not in ("seconds", "sec_per_step")}
                        for t in result["training"]]
    return kept


def test_killed_cells_resume_and_end_identical(tmp_path, tiny_model_dir):
    suite = tiny_suite(tmp_path, str(tiny_model_dir), **SUITE)
    env = {"HARNESS_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1",
           "TQDM_DISABLE": "1", "TOKENIZERS_PARALLELISM": "false"}
    mp = multiprocessing.get_context("forkserver")
    mp.set_forkserver_preload(["harness.cli", "harness.runner", "transformers", "peft",
                               "lm_eval", "datasets", "torch"])

    def run(out: Path, log: Path, kill_after: float | None = None) -> int | None:
        argv = ["run", "--suite", str(suite), "--out", str(out), "--quiet", "--threads", "1"]
        proc = mp.Process(target=_run, args=(argv, str(log), env))
        proc.start()
        proc.join(kill_after)
        if proc.is_alive():
            proc.kill()  # SIGKILL
            proc.join()
            return None
        return proc.exitcode

    assert run(tmp_path / "reference", tmp_path / "reference.log") == 0  # starts the server
    started = time.perf_counter()
    assert run(tmp_path / "again", tmp_path / "again.log") == 0
    span = time.perf_counter() - started  # an uninterrupted grid, its base rows cached
    assert _check_round(tmp_path / "reference", tmp_path / "again") == 0

    rng = random.Random(29)
    kills, resumes, rounds, runs, recorded = 0, 0, 0, 0, 0
    while kills < KILLS:
        out = tmp_path / f"round{rounds}"
        saved: dict[str, int] = {}  # cell -> tasks its last logged checkpoint holds
        while True:
            log = tmp_path / f"run{runs}.log"
            runs += 1
            last = kills >= KILLS  # enough: this round's last run goes to the end
            code = run(out, log, kill_after=None if last else rng.uniform(0.05, 1.0) * span)
            kills += code is None
            for cell, line in _cells(str(log)):
                done = re.search(r"checkpoint after task (\d+)/", line)
                back = re.search(r"resuming after task (\d+)/", line)
                after = re.match(r"  after (\S+):", line)
                if back:  # never from an older checkpoint than the last one written
                    assert int(back.group(1)) >= saved.get(cell, 0), (cell, log)
                    saved[cell] = int(back.group(1))
                    resumes += 1
                if after:  # a task trained: never one a checkpoint already holds
                    index = SUITE["streams"]["three"].index(after.group(1))
                    assert index >= saved.get(cell, 0), (f"{cell} trained task {index} again "
                                                         f"after its checkpoint", log)
                if done:
                    saved[cell] = int(done.group(1))
            if code is not None:
                assert code == 0, Path(log).read_text()[-3000:]
                break
        recorded += _check_round(tmp_path / "reference", out)
        rounds += 1
    assert resumes >= 1, "no kill landed between two tasks of a cell: nothing was resumed"
    assert recorded >= 1  # and result.json says so


def _check_round(reference: Path, out: Path) -> int:
    """The killed-and-resumed grid equals the uninterrupted one: every cell once, with the
    same results, and nothing else left in the folder. Returns how many of its cells
    record a resume (timings.resumed_after)."""
    want = sorted(p.name for p in (reference / "cells").iterdir())
    assert sorted(p.name for p in (out / "cells").iterdir()) == want  # none lost, none extra
    for cell in want:
        files = sorted(p.name for p in (out / "cells" / cell).iterdir())
        assert files == ["result.json", "samples.json"], (cell, files)  # no stray file
        a = json.loads((reference / "cells" / cell / "result.json").read_text())
        b = json.loads((out / "cells" / cell / "result.json").read_text())
        assert _comparable(a) == _comparable(b), cell
        assert a["training"][0]["losses"] and a["R"] == b["R"]
        assert (reference / "cells" / cell / "samples.json").read_text() == \
            (out / "cells" / cell / "samples.json").read_text()
    stray = [p for p in out.rglob("*") if p.is_file() and p.parent.parent != out / "cells"]
    assert not stray, stray
    return sum(bool(json.loads((out / "cells" / c / "result.json").read_text())["timings"]
                    ["resumed_after"]) for c in want)


def test_keep_checkpoints_then_other_settings(tmp_path, tiny_model_dir, capsys):
    """--keep-checkpoints keeps the last task's checkpoint (the final weights and method
    state); a run with other settings removes it instead of resuming from it, and a killed
    writer's temp file; --dry-run states the checkpoints' size."""
    from harness.cli import main
    from harness.results import read_result

    settings = dict(SUITE, streams={"two": ["arith", "json-extract"]}, probes=[],
                    methods={"replay": {"buffer_per_task": 2}})
    suite, out = tiny_suite(tmp_path, str(tiny_model_dir), **settings), tmp_path / "out"
    args = ["run", "--suite", str(suite), "--out", str(out), "--quiet"]
    assert main(args + ["--dry-run"]) == 0
    assert re.search(r"checkpoints: up to [\d.]+ MiB a running cell", capsys.readouterr().out)
    assert main(args + ["--keep-checkpoints"]) == 0
    (folder,) = (out / "cells").iterdir()
    result, _ = read_result(folder)
    kept, why = checkpoint.load(folder, result["config_hash"], result["tasks"])
    assert why is None and kept["done"] == 2 and len(kept["method"]["buffer"]) == 4
    assert kept["rows"][-1]["scores"] == {t: r for t, r in zip(result["tasks"], result["R"][-1])}
    assert result["timings"]["resumed_after"] == []

    (folder / f".{checkpoint.FILE}.tmp-999999").write_bytes(b"half")
    tiny_suite(tmp_path, str(tiny_model_dir), **dict(settings, train=dict(SUITE["train"], lr=2e-3)))
    capsys.readouterr()
    assert main(args) == 0
    assert "removed a checkpoint of other settings" in capsys.readouterr().out
    assert sorted(p.name for p in folder.iterdir()) == ["result.json", "samples.json"]
    assert read_result(folder)[0]["config_hash"] != result["config_hash"]


def test_a_checkpoint_without_cpu_seconds_resumes_to_unknown_cpu_seconds(tmp_path,
                                                                        tiny_model_dir):
    """A checkpoint written before `cpu_s` was recorded: the resumed cell's cpu_s is null
    (unknown), not the resumed run's partial count; one that has it adds it up."""
    from harness.cli import main
    from harness.results import read_result

    settings = dict(SUITE, streams={"two": ["arith", "json-extract"]}, probes=[],
                    methods={"sft": {}})
    suite, out = tiny_suite(tmp_path, str(tiny_model_dir), **settings), tmp_path / "out"
    args = ["run", "--suite", str(suite), "--out", str(out), "--quiet", "--keep-checkpoints"]
    assert main(args) == 0
    (folder,) = (out / "cells").iterdir()
    result = read_result(folder)[0]
    first = result["timings"]["cpu_s"]
    assert first > 0

    def resume(cpu_s="as saved", done: int = 2) -> dict:
        """The cell resumed from its last checkpoint, cut back to `done` tasks, its cpu_s set
        to `cpu_s` (None: the key removed, as before the field existed)."""
        state, why = checkpoint.load(folder, result["config_hash"], result["tasks"])
        assert why is None
        if cpu_s is None:
            del state["cpu_s"]
        elif cpu_s != "as saved":
            state["cpu_s"] = cpu_s
        state.update(done=done, rows=state["rows"][:done + 1],
                     training=state["training"][:done], history=state["history"][:done])
        checkpoint.save(folder, state)
        (folder / "result.json").unlink()
        assert main(args) == 0
        return read_result(folder)[0]["timings"]

    carried = resume(1000.0)
    assert carried["resumed_after"] == [2] and 1000.0 < carried["cpu_s"] < 1000.0 + first
    unknown = resume(None, done=1)  # trains the second task again, checkpoints after it
    assert unknown["resumed_after"] == [1] and unknown["cpu_s"] is None
    again = resume()  # that checkpoint carried the unknown on
    assert again["resumed_after"] == [1, 2] and again["cpu_s"] is None
