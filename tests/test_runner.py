"""The stream loop end to end on the tiny model: result files, R, probes, resumption."""

import json

import pytest
import torch

from harness.cli import main
from helpers import tiny_suite

FAILING_METHOD = '''
from harness.methods import Method

class Boom(Method):
    name = "boom"
    def after_task(self, task, model, ctx):
        if len(ctx.history) == 1:
            raise {exc}("boom in after_task")
'''


@pytest.fixture
def suite_file(tmp_path, tiny_model_dir):
    return tiny_suite(tmp_path, str(tiny_model_dir))


def read_results(out):
    return {p.parent.name: json.loads(p.read_text()) for p in (out / "cells").glob("*/result.json")}


def test_run_writes_complete_results(tmp_path, suite_file, tiny_model_dir):
    out = tmp_path / "out"
    assert main(["run", "--suite", str(suite_file), "--out", str(out), "--quiet"]) == 0
    results = read_results(out)
    assert sorted(r["cell"]["method"] for r in results.values()) == ["lora", "sft"]
    for r in results.values():
        assert r["status"] == "complete" and r["tasks"] == ["arith", "json-extract"]
        assert len(r["R"]) == 3 and all(len(row) == 2 for row in r["R"])
        assert all(0 <= x <= 1 for row in r["R"] for x in row)
        assert set(r["probes"]) == {"drift", "knowledge"}
        assert all(len(v) == 3 for v in r["probes"].values())
        assert r["probes"]["drift"][0] == pytest.approx(0.0, abs=1e-6)
        assert r["probes"]["drift"][-1] > 0  # training moved the model
        for t, rows in r["items"].items():  # per-item scores average to R
            assert len(rows) == 3 and all(len(x) == 4 for x in rows)
            j = r["tasks"].index(t)
            assert [sum(x) / 4 for x in rows] == pytest.approx([row[j] for row in r["R"]])
        assert r["metrics"]["acc"] == pytest.approx(sum(r["R"][-1]) / 2)
        assert len(r["training"]) == 2 and r["training"][0]["steps"] == 3
        assert {"torch", "transformers", "lm_eval", "peft"} <= set(r["versions"])
        assert not (out / "cells" / r["cell_id"] / "progress.json").exists()
        t = r["timings"]
        assert 0 < t["probes_s"] < t["eval_s"] < t["total_s"] and t["train_s"] > 0
        assert 0 <= t["generation_s"] < t["total_s"]
        # CPU seconds beside wall clock: the process's own work, at most its threads' share
        assert 0 < t["cpu_s"] <= t["total_s"] * torch.get_num_threads() * 1.05 + 1
    sft, lora = (next(r for r in results.values() if r["cell"]["method"] == m) for m in ("sft", "lora"))
    assert sft["R"][0] == lora["R"][0]  # the same base row
    assert sft["config_hash"] != lora["config_hash"]


def test_row_zero_is_the_base_model_evaluation(tmp_path, suite_file, tiny_model_dir):
    from harness.config import load_suite
    from harness.config import EvalSettings
    from harness.evaluation import Evaluator
    from harness.models import load_model
    from harness.probes import get_probe
    from harness.tasks import get_task

    out = tmp_path / "out"
    assert main(["run", "--suite", str(suite_file), "--out", str(out), "--quiet",
                 "--methods", "sft"]) == 0
    result = next(iter(read_results(out).values()))
    suite = load_suite(str(suite_file))
    model, tok, _ = load_model(str(tiny_model_dir))
    tasks = [get_task(t) for t in result["tasks"]]
    splits = [t.split(suite.data.n_train, suite.data.n_test, suite.data.seed) for t in tasks]
    knowledge = get_probe("knowledge")
    row = Evaluator(tasks, splits, [knowledge], EvalSettings(8, 6), tok).evaluate(model)
    assert result["R"][0] == [row.scores[t] for t in result["tasks"]]
    assert result["probes"]["knowledge"][0] == row.probes["knowledge"]


def test_evaluation_skips_lm_evals_environment_report(tiny_model_dir, tmp_path, monkeypatch,
                                                    capfd):
    """lm_eval's per-call git hash (noise outside a checkout) and torch environment report
    (~0.5 s) are skipped during our evaluation, and restored after it."""
    import lm_eval.evaluator

    from harness.config import EvalSettings
    from harness.evaluation import Evaluator
    from harness.models import load_model
    from harness.tasks import get_task

    def called(*args):
        raise AssertionError("lm_eval's environment report ran")

    monkeypatch.setattr(lm_eval.evaluator, "get_git_commit_hash", called)
    monkeypatch.setattr(lm_eval.evaluator, "add_env_info", called)
    monkeypatch.chdir(tmp_path)  # not a git checkout
    model, tok, _ = load_model(str(tiny_model_dir))
    task = get_task("arith")
    row = Evaluator([task], [task.split(4, 4, 0)], [], EvalSettings(4, 4), tok).evaluate(model)
    assert set(row.scores) == {"arith"}
    assert lm_eval.evaluator.get_git_commit_hash is called
    assert "not a git repository" not in capfd.readouterr().err


def test_failed_cell_is_recorded_and_others_go_on(tmp_path, suite_file):
    plugin = tmp_path / "boom.py"
    plugin.write_text(FAILING_METHOD.format(exc="RuntimeError"))
    out = tmp_path / "out"
    code = main(["run", "--suite", str(suite_file), "--out", str(out), "--quiet",
                 "--methods", f"{plugin}:Boom,sft"])
    assert code == 1
    cells = {p.name: p for p in (out / "cells").iterdir()}
    boom = next(p for n, p in cells.items() if "boom" in n)
    assert not (boom / "result.json").exists()
    failure = json.loads((boom / "failure.json").read_text())
    assert failure["status"] == "failed" and "boom in after_task" in failure["error"]
    assert any((p / "result.json").exists() for n, p in cells.items() if "sft" in n)


def test_interrupted_cell_leaves_no_result_and_rerun_resumes(tmp_path, suite_file, capsys):
    plugin = tmp_path / "stop.py"
    plugin.write_text(FAILING_METHOD.format(exc="KeyboardInterrupt"))
    out = tmp_path / "out"
    code = main(["run", "--suite", str(suite_file), "--out", str(out), "--quiet",
                 "--methods", f"sft,{plugin}:Boom"])
    assert code == 130
    assert "interrupted" in capsys.readouterr().err
    stopped = next(p for p in (out / "cells").iterdir() if "boom" in p.name)
    assert not (stopped / "result.json").exists()
    sft = next(p for p in (out / "cells").iterdir() if "sft" in p.name)
    stamp = (sft / "result.json").stat().st_mtime_ns
    assert main(["run", "--suite", str(suite_file), "--out", str(out), "--quiet",
                 "--methods", "sft"]) == 0
    assert (sft / "result.json").stat().st_mtime_ns == stamp  # complete cell skipped
    assert "already complete" in capsys.readouterr().out
