"""A new user's path (issue 30): the short look (--steps/--n-train/--n-test), `--set`
errors that name the key meant, one error prefix, the cache line."""

import json

import pytest

from harness.cli import main
from harness.config import load_suite
from harness.grid import expand, grid_id, plan
from harness.overrides import apply_sets, shorten
from helpers import tiny_suite


def dry_json(capsys, *args) -> dict:
    capsys.readouterr()
    assert main(["run", *args, "--dry-run", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_short_look_replaces_every_budget_and_marks_the_grid(tmp_path, tiny_model_dir):
    path = tiny_suite(tmp_path, str(tiny_model_dir),
                      streams={"two": {"tasks": ["arith", "json-extract"],
                                       "train": {"steps": 7, "lr": 2e-3},
                                       "methods": {"sft": {"steps": 5}}}},
                      methods={"sft": {"train": {"epochs": 2}}, "lora": {"r": 4}})
    suite = load_suite(str(path))
    short = shorten(suite, steps=2, n_train=5, n_test=3)
    for cell in expand(short):
        assert cell.method.train.steps == 2 and cell.method.train.epochs is None
        assert cell.method.train.lr == 2e-3  # the stream's other settings stay
    assert (short.data.n_train, short.data.n_test) == (5, 3)
    assert short.short_look == {"steps": 2, "n_train": 5, "n_test": 3}
    # a short look whose budget equals the suite's is still not the suite's grid or cell
    same = shorten(suite, steps=7)
    lora = lambda s: next(c for c in expand(s) if c.method.name == "lora")  # noqa: E731
    full_cell, short_cell = lora(suite), lora(same)  # the stream's 7 steps
    assert full_cell.method.train == short_cell.method.train
    assert grid_id(same) != grid_id(suite)
    assert plan(short_cell, same).config_hash != plan(full_cell, suite).config_hash
    assert shorten(suite) is suite


@pytest.mark.parametrize("value", [0, -3, True])
def test_short_look_rejects_non_positive_values(tmp_path, tiny_model_dir, value):
    from harness.errors import HarnessError

    suite = load_suite(str(tiny_suite(tmp_path, str(tiny_model_dir))))
    with pytest.raises(HarnessError, match="whole number >= 1"):
        shorten(suite, steps=value)


def test_steps_on_the_command_line_goes_to_its_own_folder(tmp_path, tiny_model_dir, capsys):
    path = str(tiny_suite(tmp_path, str(tiny_model_dir)))
    full = dry_json(capsys, "--suite", path)
    short = dry_json(capsys, "--suite", path, "--steps", "1", "--n-test", "2")
    assert full["out"].endswith("tiny") and short["out"].endswith("tiny-short")
    assert short["grid_id"] != full["grid_id"]
    assert [c["steps"] for c in short["cells"]] == [2, 2]  # two tasks, one step each
    assert [c["steps"] for c in full["cells"]] == [6, 6]
    assert full["base_rows_to_compute"] == 1  # one model, one stream: one row 0, uncached
    capsys.readouterr()
    assert main(["run", "--suite", path, "--steps", "1", "--dry-run"]) == 0
    assert "SHORT LOOK (1 steps a task)" in capsys.readouterr().out


def test_a_short_cell_records_its_marker(tmp_path, tiny_model_dir, capsys):
    path = str(tiny_suite(tmp_path, str(tiny_model_dir), methods={"sft": {}}))
    out = tmp_path / "out"
    assert main(["run", "--suite", path, "--out", str(out), "--steps", "1", "--n-train", "4",
                 "--n-test", "2", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("cache ") and str(tmp_path) in lines[0]  # the test's cache
    assert "SHORT LOOK (1 steps a task, n_train 4, n_test 2)" in lines[1]
    result = json.loads(next(out.glob("cells/*/result.json")).read_text())
    assert result["short_look"] == {"steps": 1, "n_train": 4, "n_test": 2}
    assert [t["steps"] for t in result["training"]] == [1, 1]
    assert len(result["items"]["arith"][0]) == 2
    again = dry_json(capsys, "--suite", path, "--out", str(out), "--steps", "1", "--n-train",
                     "4", "--n-test", "2", "--methods", "lora")
    assert again["base_rows_to_compute"] == 0  # the sft cell cached the lora cell's row 0


@pytest.mark.parametrize("given, needles", [
    ("lora.steps=8", ["no setting steps", "did you mean --set lora.train.steps=...?"]),
    ("lora.alhpa=8", ["no setting alhpa", "did you mean --set lora.alpha=...?"]),
    ("lora.batchsize=8", ["did you mean --set lora.train.batch_size=...?"]),
    ("lora.zzz=1", ["no setting zzz", "its settings: r, alpha"]),
])
def test_set_errors_name_the_key_meant(tmp_path, tiny_model_dir, given, needles):
    from harness.errors import HarnessError

    suite = load_suite(str(tiny_suite(tmp_path, str(tiny_model_dir))))
    with pytest.raises(HarnessError) as info:
        apply_sets(suite, [given])
    for needle in needles:
        assert needle in str(info.value), str(info.value)


@pytest.mark.parametrize("argv, fix", [
    (["run", "--suite", "quickstart", "--bogus"], "see `harness run --help`"),
    (["run", "--suite", "quickstart", "--steps", "x"], "see `harness run --help`"),
    (["list", "nope"], "see `harness list --help`"),
    (["--bogus"], "see `harness --help`"),
])
def test_usage_errors_print_the_prefix_once(argv, fix, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("harness: error: ")
    assert err.count("harness:") == 1 and "harness run:" not in err, err
    assert err.endswith(fix), err


def test_cache_line_says_what_the_cache_holds(tmp_path, monkeypatch):
    from harness.storage import Cache, cache_line

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "c"))
    assert cache_line() == f"cache {tmp_path / 'c'} (HARNESS_CACHE): empty, everything is " \
                           "computed afresh"
    Cache().get_or_compute("base_rows", [1], lambda: 1)
    Cache().get_or_compute("base_rows", [2], lambda: 2)
    (tmp_path / "c" / "models" / "smollm").mkdir(parents=True)
    line = cache_line()
    assert line.endswith(": reuses what matches of base_rows 2 files, models smollm"), line
    from harness.storage import REUSED

    REUSED.clear()
    assert Cache().get_or_compute("base_rows", [1], lambda: 9) == 1  # read, not computed
    assert REUSED == {"base_rows": 1}


# ---------------------------------------------------------------- submit: dry run, root, params

def test_submit_dry_run_writes_nothing_and_puts_the_run_under_root(tmp_path, tiny_model_dir,
                                                                   capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    suite = str(tiny_suite(tmp_path, str(tiny_model_dir), probes=["drift"]))
    root = tmp_path / "r"

    def written():  # the cache (HARNESS_CACHE, here tmp_path/cache) may learn a model's hash
        return sorted(p for p in tmp_path.rglob("*") if p.relative_to(tmp_path).parts[0] != "cache")

    before = written()
    capsys.readouterr()
    assert main(["submit", "sft", "--suite", suite, "--root", str(root), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert written() == before  # nothing written, no folder made
    assert out.startswith("cache ")
    assert f"-> {root / 'runs' / 'submit' / 'sft'}" in out.replace("\n", "")
    assert "1 of 1 cells to run" in out and "new" in out
    assert f"bundle: {root / 'leaderboard' / 'submissions' / 'sft'} once" in out


def test_manifest_params_list_the_settings_in_force_and_verify_reads_them(tmp_path):
    from harness import bundle as B
    from harness.config import TrainSettings, method_spec
    from harness.errors import HarnessError

    suite = load_suite("leaderboard")
    spec = method_spec("lora", {"r": 4}, TrainSettings(), "test", ())
    entry, _ = B.method_entry(spec)
    assert entry["params_given"] == {"r": 4}
    from harness.methods.lora import LORA_DEFAULTS

    assert entry["params"] == {**LORA_DEFAULTS, "r": 4}  # the defaults spelled out
    narrowed = B.suite_for(entry, suite, tmp_path)
    assert narrowed.methods[0].params == {"r": 4}  # the cells' hash: the settings as given
    with pytest.raises(HarnessError, match="not the settings in force"):
        B.suite_for(entry | {"params": {**entry["params"], "alpha": 99}}, suite, tmp_path)
    old = {k: v for k, v in entry.items() if k != "params_given"} | {"params": {"r": 4}}
    assert B.suite_for(old, suite, tmp_path).methods[0].params == {"r": 4}  # older bundles


def test_the_rehearsal_suite_is_one_short_cell_of_the_leaderboards_kind():
    # the live board's: publishing a new grid (harness.bundle.LIVE_SUITE) moves it too
    from harness.bundle import LIVE_SUITE

    rehearsal, board = load_suite("rehearsal"), load_suite(LIVE_SUITE)
    assert rehearsal.models == board.models and rehearsal.probes == board.probes
    assert len(expand(rehearsal)) == 1 and rehearsal.train.steps < board.train.steps
    assert list(rehearsal.streams) == list(board.streams)[:1]


# ---------------------------------------------------------------- dry run: offline, GPU, fit

def test_a_dry_run_plans_offline_at_once_when_the_hub_does_not_answer(monkeypatch, capsys):
    import os
    import socket
    import time

    from harness import launch

    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(launch, "HUB", ("127.0.0.1", 9))  # nothing listens: refused at once
    start = time.perf_counter()
    with launch.offline_unless_reachable() as note:
        assert os.environ["HF_HUB_OFFLINE"] == os.environ["HF_DATASETS_OFFLINE"] == "1"
        assert "planned offline" in note
    assert time.perf_counter() - start < launch.HUB_TIMEOUT_S + 1
    assert "HF_HUB_OFFLINE" not in os.environ  # as it was, after the plan
    assert main(["run", "--suite", "quickstart", "--dry-run", "--json"]) == 0
    out = capsys.readouterr()
    assert "planned offline" in json.loads(out.out)["note"] and out.err == ""

    def no_network(*a, **k):
        raise AssertionError("tried the network although HF_HUB_OFFLINE is set")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with launch.offline_unless_reachable() as note:
        assert note is None


def _seven_b_suite(tmp_path, monkeypatch) -> str:
    import yaml

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump({
        "name": "big", "models": ["Qwen/Qwen2.5-7B-Instruct"], "streams": {"s": ["arith"]},
        "methods": {"sft": {}}, "seeds": [0], "probes": [],
        "train": {"steps": 100, "batch_size": 16, "max_len": 1024},
        "data": {"n_train": 64, "n_test": 32}, "eval": {"batch_size": 16}}))
    return str(path)


def test_a_large_models_cells_are_estimated_by_gpu_arithmetic_never_by_cpu_figures(
        tmp_path, monkeypatch, capsys):
    from harness.cost import cell_seconds
    from harness.memory import architecture

    path = _seven_b_suite(tmp_path, monkeypatch)
    bare = dry_json(capsys, "--suite", path)
    assert bare["cells"][0]["estimate_s"] is None and bare["cells_without_estimate"] == 1
    assert bare["cells"][0]["estimate_from"] == "none (give --gpu NAME)"
    gpu = dry_json(capsys, "--suite", path, "--gpu", "H100")
    cell = expand(load_suite(path))[0]
    s = cell_seconds(cell, load_suite(path), architecture(cell.model), "H100")
    assert gpu["cells"][0]["estimate_from"] == "H100 arithmetic"
    assert gpu["cells"][0]["estimate"]["train_s"] == pytest.approx(s["train"] + s["generate"],
                                                                   abs=0.1)
    assert gpu["cells_without_estimate"] == 0


def test_the_fit_limit_is_printed_as_the_limit_with_the_options_that_fit(tmp_path, monkeypatch,
                                                                          capsys):
    from harness.memory import GIB, _peak, architecture, setup_of
    from harness.memory_fit import USABLE, fit_options, fitting

    path = _seven_b_suite(tmp_path, monkeypatch)
    capsys.readouterr()
    assert main(["run", "--suite", path, "--dry-run", "--gpu", "H100"]) == 0
    out = capsys.readouterr().out
    assert "fits if peak <= 72.8 GiB (92% of the H100's 79.1 GiB)" in out
    assert "DOES NOT FIT (> 72.8 GiB)" in out
    line = next(x for x in out.splitlines() if x.startswith("  sft: --set"))
    suite = load_suite(path)
    cell = expand(suite)[0]
    arch, s = architecture(cell.model), setup_of(cell, suite)
    _, fits = fitting(arch, s, 79.1)
    assert _peak(arch, s)[0] > USABLE * 79.1 * GIB >= _peak(arch, fits)[0]
    assert line == "  sft: " + " ".join(fit_options("sft", s, fits))
    # the options, applied, make the estimate fit
    from harness.overrides import narrow

    words = line.split()[1:]
    given = dict(zip(words[::2], words[1::2]))  # an option and its value, in turn
    assert set(given) <= {"--set", "--precision"}
    sets = [v for k, v in zip(words[::2], words[1::2]) if k == "--set"]
    applied = apply_sets(narrow(suite, None, None, given.get("--precision")), sets)
    assert _peak(arch, setup_of(expand(applied)[0], applied))[0] <= USABLE * 79.1 * GIB


@pytest.mark.parametrize("name", ["Qwen/Qwen2.5-7B-Instruct",
                                  "meta-llama/Meta-Llama-3-8B-Instruct"])
def test_the_llama_formula_counts_what_the_meta_model_holds(name):
    import json as _json

    from harness.memory import KNOWN_CONFIGS, _meta_count, arch_from_config

    a, config = arch_from_config(KNOWN_CONFIGS[name]), KNOWN_CONFIGS[name]
    assert (a.params, a.block_params, a.embed_params, a.linears) == \
        _meta_count(_json.dumps(config, sort_keys=True))


# ---------------------------------------------------------------- the penalty's size, the flag

def test_the_training_loop_records_the_auxiliary_terms_share(tiny):
    import torch

    from harness.methods import Method, response_token_loss
    from harness.tasks import get_task
    from harness.training import train_task
    from helpers import SETTINGS, make_ctx

    class Penalised(Method):
        name = "penalised"
        defaults = {"weight": 1.0}

        def loss(self, model, batch, ctx):
            ce = response_token_loss(model, batch)
            return ce + ctx.aux(self.params["weight"] * ce.detach() * 3)  # 3/4 of the loss

    model, tok = tiny
    task = get_task("arith")
    examples = list(task.split(8, 2, 0).train)
    ctx = make_ctx(model, tok, 0, SETTINGS)
    stats = train_task(model, Penalised(), ctx, task, examples, SETTINGS, 0)
    assert stats["aux_share"] == pytest.approx(0.75)
    assert stats["aux_mean"] == pytest.approx(3 * sum(stats["losses"]) / 4 / len(stats["losses"]),
                                              rel=1e-5)
    plain = train_task(model, Method(), make_ctx(model, tok, 0, SETTINGS), task, examples,
                       SETTINGS, 0)
    assert "aux_share" not in plain and "aux_mean" not in plain
    assert isinstance(ctx.aux(torch.tensor(2.0)), torch.Tensor)  # returned unchanged


def test_the_runs_table_flags_a_method_equal_to_the_reference_and_shows_aux(tmp_path):
    from synthetic_cells import R_for, write_cell

    from harness.ui import summary_table

    for seed in (0, 1):
        write_cell(tmp_path, "m", "x", "sft", seed, R_for(0.5 + 0.1 * seed))
        write_cell(tmp_path, "m", "x", "l2sp", seed, R_for(0.5 + 0.1 * seed))  # the same
        write_cell(tmp_path, "m", "x", "ewc", seed, R_for(0.5 + 0.1 * seed))
    shifted = tmp_path / "cells" / "m__x__ewc__s1" / "result.json"
    data = json.loads(shifted.read_text())
    data["items"][data["tasks"][0]][-1][0] += 1.0  # one item of one seed differs
    data["training"] = [{"task": "t1", "aux_share": 0.001}, {"task": "t2", "aux_share": 0.003}]
    shifted.write_text(json.dumps(data))
    results = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("cells/*/result.json"))]
    table = summary_table(results)
    headers = [c.header for c in table.columns]
    assert headers[-3:] == ["aux share", "train s", "note"]
    methods = list(table.columns[2].cells)
    notes = dict(zip(methods, table.columns[-1].cells))
    assert notes == {"ewc": "", "l2sp": "= sft item for item", "sft": ""}
    aux = dict(zip(methods, table.columns[-3].cells))
    assert aux == {"ewc": "0.2%", "l2sp": "-", "sft": "-"}
    assert "ACC: mean score on every task after the last" in table.caption
    assert "aux share" in table.caption


def test_one_naming_of_metrics_in_both_tables():
    from harness.metrics import METRICS, label, legend

    assert [label(m) for m in METRICS] == [m.label for m in METRICS.values()]
    assert label("drift_final") == "drift final" and label("knowledge_delta") == "knowledge change"
    line = legend(list(METRICS) + ["drift_final"])
    assert "\n" not in line and all(f"{m.label}: " in line for m in METRICS.values())
    assert "<probe> final" in line


@pytest.mark.parametrize("name, params, recorded", [
    ("l2sp", {"alpha": 0.01}, True),  # CE + a penalty: the loop tells the penalty apart
    ("sft", {}, False),  # the cross-entropy alone: nothing to record
])
def test_a_penalty_added_to_the_cross_entropy_is_recorded_unmarked(tiny, name, params,
                                                                    recorded):
    from harness.methods import make_method
    from harness.tasks import get_task
    from harness.training import train_task
    from helpers import SETTINGS, make_ctx

    model, tok = tiny
    method = make_method(name, params)
    ctx = make_ctx(model, tok, 0, SETTINGS)
    model = method.wrap_model(model, ctx)
    task = get_task("arith")
    stats = train_task(model, method, ctx, task, list(task.split(8, 2, 0).train), SETTINGS, 0)
    assert ("aux_share" in stats) == recorded
    if recorded:  # step 1 starts at the anchor (penalty 0), later steps have moved off it
        assert 0 < stats["aux_share"] < 1 and stats["aux_mean"] > 0
