"""Planning: cells, plans computed once, the shared vocabulary of cell states, the estimate."""

import json

import pytest

from harness.config import load_suite
from harness.grid import CPU_135M_STEP_S, expand, grid_id, estimate, measured_seconds, plan, split, state
from harness.results import CellState, cell_id
from helpers import tiny_suite


@pytest.fixture
def suite(tmp_path, tiny_model_dir):
    return load_suite(tiny_suite(tmp_path, str(tiny_model_dir), seeds=[0, 1]))


def _result(cell, config_hash, sec_per_step=2.0):
    return {"status": "complete", "cell": cell.info, "R": [[0.1, 0.2], [0.5, 0.2], [0.4, 0.6]],
            "metrics": {"acc": 0.5}, "config_hash": config_hash,
            "training": [{"steps": 3, "sec_per_step": sec_per_step}]}


def test_cells_seed_by_seed_with_ids_from_the_one_function(suite, tiny_model_dir):
    cells = expand(suite)
    assert [(c.seed, c.method.name) for c in cells] == [(0, "lora"), (0, "sft"),
                                                         (1, "lora"), (1, "sft")]
    assert cells[1].id == cell_id(str(tiny_model_dir), "two", "sft", 0)
    assert cells[1].id == f"{tiny_model_dir.name}__two__sft__s0"
    assert cell_id("m", "s", "dir/variants.py:SDFTShort", 2) == "m__s__variants.SDFTShort__s2"


def test_plan_is_computed_once_and_keys_the_settings(suite):
    a, b = expand(suite)[:2]
    assert split("arith", suite.data) is split("arith", suite.data)  # generated once
    pa = plan(a, suite)
    assert [s.task for s in pa.splits] == ["arith", "json-extract"]
    assert pa.config_hash == plan(a, suite).config_hash
    assert pa.config_hash != plan(b, suite).config_hash  # other method, other hash
    assert len(grid_id(suite)) == 16


def test_every_cell_state(suite, tmp_path):
    cell = expand(suite)[0]
    folder = tmp_path / "cells" / cell.id
    assert state(cell, suite, folder) is CellState.NEW
    folder.mkdir(parents=True)
    assert state(cell, suite, folder) is CellState.EMPTY
    (folder / "progress.json").write_text("{}")
    assert state(cell, suite, folder) is CellState.INCOMPLETE
    (folder / "failure.json").write_text("{}")
    assert state(cell, suite, folder) is CellState.FAILED
    (folder / "result.json").write_text("[1, 2]")
    assert state(cell, suite, folder) is CellState.CORRUPT
    (folder / "result.json").write_text(json.dumps(_result(cell, "other settings")))
    assert state(cell, suite, folder) is CellState.STALE
    (folder / "result.json").write_text(json.dumps(_result(cell, plan(cell, suite).config_hash)))
    assert state(cell, suite, folder) is CellState.COMPLETE


def test_measured_figures_come_from_complete_cells_only(suite, tmp_path):
    a, b = expand(suite)[:2]
    for cell, seconds in ((a, 2.0), (b, 4.0)):
        (tmp_path / "cells" / cell.id).mkdir(parents=True)
    timed = _result(a, "h", 2.0) | {"timings": {"eval_s": 30.0, "probes_s": 10.0, "setup_s": 7.0,
                                                "generation_s": 3.0},  # 2 rows after training
                                    "data_settings": {"n_test": 4}}  # 4 entries x 4 items
    (tmp_path / "cells" / a.id / "result.json").write_text(json.dumps(timed))
    broken = _result(b, "h", 4.0) | {"status": "running"}
    (tmp_path / "cells" / b.id / "result.json").write_text(json.dumps(broken))
    measured = measured_seconds(tmp_path)
    steps = sum(t["steps"] for t in timed["training"])
    assert measured == {"lora": {"step": 2.0, "item": 1.25, "probes_row": 5.0, "setup": 7.0,
                                 "generation": 3.0 / steps}}
    e = estimate(a, suite, measured)
    assert e == {"steps": 6, "train_s": 12.0, "eval_s": 30.0, "row_s": 15.0, "source": "this OUT",
                 "setup_s": 7.0, "generation_s": pytest.approx(3.0 * 6 / steps),
                 "probes_s": 10.0}
    other = estimate(b, suite, measured)
    assert other["source"] == "135M on 2-core CPU" and other["setup_s"] is None


def test_a_paused_task_does_not_move_the_estimate(suite, tmp_path):
    """Timings are wall clock: a task run while the machine was paused (40 s a step
    against 3) is one outlier, and the median per step keeps the estimate at 3 s."""
    cell = expand(suite)[0]
    (tmp_path / "cells" / cell.id).mkdir(parents=True)
    paused = _result(cell, "h") | {"training": [{"steps": 3, "sec_per_step": s}
                                                for s in (3.0, 3.0, 40.0)]}
    (tmp_path / "cells" / cell.id / "result.json").write_text(json.dumps(paused))
    assert measured_seconds(tmp_path)["lora"]["step"] == 3.0


def test_a_method_without_grid_cells_is_estimated_from_its_tuning_cells(suite, tmp_path):
    """`harness tune`'s cells in OUT/tuning measure the same model and machine: their step
    and item seconds stand in until the grid has cells of the method, never their setup
    or probes (tuning cells run no probes; their pools are the shared generation)."""
    from harness.grid import CPU_135M_ITEM_S, TUNING_CELLS, probes_row_seconds

    lora, sft = expand(suite)[:2]
    for setting, sec in (("alpha=1", 3.0), ("alpha=2", 5.0)):  # two settings of lora
        folder = tmp_path / "tuning" / "lora" / setting / "cells" / lora.id
        folder.mkdir(parents=True)
        timed = _result(lora, "h", sec) | {"timings": {"eval_s": 20.0, "probes_s": 0.0,
                                                       "setup_s": 900.0},
                                           "data_settings": {"n_test": 4}}
        (folder / "result.json").write_text(json.dumps(timed))
    measured = measured_seconds(tmp_path)
    assert measured == {"lora": {"step": 4.0, "item": 1.25, "from": TUNING_CELLS}}
    e = estimate(lora, suite, measured)
    probes = probes_row_seconds(suite.probes)
    assert e["source"] == TUNING_CELLS and e["train_s"] == 6 * 4.0 and e["setup_s"] is None
    assert e["eval_s"] == pytest.approx(2 * probes + 4 * 4 * 1.25)  # probes: the fallback
    assert estimate(sft, suite, measured)["source"] == "135M on 2-core CPU"
    # once the grid has a complete cell of the method, its own figures win
    (tmp_path / "cells" / lora.id).mkdir(parents=True)
    (tmp_path / "cells" / lora.id / "result.json").write_text(json.dumps(_result(lora, "h", 2.0)))
    assert measured_seconds(tmp_path)["lora"] == {"step": 2.0}
    assert estimate(lora, suite, measured_seconds(tmp_path))["source"] == "this OUT"
    assert CPU_135M_ITEM_S != 1.25  # the item figure above was the tuning cells', not this


def test_a_preset_without_cells_of_its_own_is_estimated_as_the_method_it_varies(tmp_path,
                                                                                 tiny_model_dir):
    (tmp_path / "presets.py").write_text(
        "from harness.methods.sdft import SDFT\n\n"
        "class Ahead(SDFT):\n    name = 'sdft-ahead'\n")
    suite = load_suite(tiny_suite(tmp_path, str(tiny_model_dir), methods={
        "sdft": {}, "presets.py:Ahead": {"sample_steps": 2}}))
    sdft, ahead = sorted(expand(suite), key=lambda c: c.method.name != "sdft")
    measured = {"sdft": {"step": 9.0, "item": 2.5}}  # 2 rows x 2 tasks x 4 items
    e = estimate(ahead, suite, measured)
    assert (e["train_s"], e["eval_s"]) == (6 * 9.0, 2 * 20.0)
    assert e["source"] == "this OUT (sdft's cells)"
    assert estimate(sdft, suite, measured)["source"] == "this OUT"
    bare = estimate(ahead, suite, {})
    budget = 1024  # sdft's default rollout budget
    per_step = CPU_135M_STEP_S["sft"] + (CPU_135M_STEP_S["sdft"] - CPU_135M_STEP_S["sft"]) * (
        budget / 64)
    assert bare["train_s"] == estimate(sdft, suite, {})["train_s"] == pytest.approx(6 * per_step)
    assert bare["source"] == f"135M on 2-core CPU (sdft), rollouts at their full {budget} tokens: at most"


@pytest.mark.parametrize("base", ["sdft", "sft"])
def test_the_fallback_step_grows_with_the_rollout_budget_only_for_rollouts(base):
    """The CPU figure for sdft was measured with 64-token rollouts: at 64 it is the figure,
    longer budgets cost more in proportion (an upper bound); a method without rollouts does
    not move."""
    from harness.grid import fallback_step

    steps = [fallback_step(base, {"max_new_tokens": n})[0] for n in (32, 64, 128, 1024)]
    if base == "sft":
        assert steps == [CPU_135M_STEP_S["sft"]] * 4 and fallback_step("sft", {})[1] is None
        return
    assert steps[1] == CPU_135M_STEP_S["sdft"] and steps == sorted(steps) and steps[0] < steps[1]
    assert steps[2] - steps[1] == pytest.approx(steps[1] - CPU_135M_STEP_S["sft"])  # +1 x 64
    assert fallback_step("sdft", {}) == (CPU_135M_STEP_S["sdft"], 64)


def test_a_streams_training_settings_apply_under_the_methods_own(tmp_path, tiny_model_dir):
    """Per-stream training settings (a paper's epochs per dataset): the suite's, then the
    stream's, then what the method sets itself; only the overridden stream's cells change."""
    from harness.overrides import apply_sets

    methods = {"sft": {}, "lora": {"r": 4, "alpha": 8, "train": {"lr": 1e-2}},
               "freeze": {"train": {"steps": 5}}}
    path = tiny_suite(tmp_path, str(tiny_model_dir), streams={
        "long": {"tasks": ["arith"], "train": {"epochs": 2, "lr": 3e-4}},
        "plain": ["json-extract"]}, methods=methods)
    suite = load_suite(path)
    train = {(c.stream, c.method.name): c.method.train for c in expand(suite)}
    assert (train["long", "sft"].epochs, train["long", "sft"].steps) == (2, None)
    assert train["long", "sft"].lr == 3e-4 and train["long", "sft"].batch_size == 4
    assert train["plain", "sft"] == suite.train  # steps 3, lr 1e-3: untouched
    assert train["long", "lora"].lr == 1e-2 and train["long", "lora"].epochs == 2
    assert (train["long", "freeze"].steps, train["long", "freeze"].epochs) == (5, None)
    assert train["long", "freeze"].lr == 3e-4
    cells = {(c.stream, c.method.name): c for c in expand(suite)}
    assert estimate(cells["long", "sft"], suite, {})["steps"] == 2 * 8 // 4  # 2 epochs of 8
    # the stream's settings key its cells' hashes and the grid id
    plain = load_suite(tiny_suite(tmp_path, str(tiny_model_dir), streams={
        "long": ["arith"], "plain": ["json-extract"]}, methods=methods))
    assert plan(cells["long", "sft"], suite).config_hash != plan(
        next(c for c in expand(plain) if c.stream == "long" and c.method.name == "sft"),
        plain).config_hash
    assert grid_id(suite) != grid_id(plain)
    # --set METHOD.train.KEY is the method's own: it beats the stream
    edited = apply_sets(suite, ["sft.train.lr=7e-4"])
    assert {c.method.train.lr for c in expand(edited)
            if c.method.name == "sft"} == {7e-4}


def test_a_stream_sets_one_methods_training_beating_the_methods_own(tmp_path, tiny_model_dir):
    """`streams: {s: {tasks, train, methods: {m: {...}}}}`: those settings are m's on s
    only, over the stream's and m's own; other methods and streams keep theirs; they key
    the cells' hashes and the grid id, and the dry run shows them."""
    from harness.dryrun import settings_lines

    streams = {"long": {"tasks": ["arith"], "train": {"epochs": 2},
                        "methods": {"sft": {"lr": 5e-6}}}, "plain": ["json-extract"]}
    methods = {"sft": {"train": {"lr": 1e-5}}, "dft": {}}
    suite = load_suite(tiny_suite(tmp_path, str(tiny_model_dir), streams=streams,
                                  methods=methods))
    cells = {(c.stream, c.method.name): c.method.train for c in expand(suite)}
    assert (cells["long", "sft"].lr, cells["long", "sft"].epochs) == (5e-6, 2)
    assert cells["plain", "sft"].lr == 1e-5 and cells["long", "dft"].lr == suite.train.lr
    without = dict(streams, long={k: v for k, v in streams["long"].items() if k != "methods"})
    (tmp_path / "b").mkdir()
    other = load_suite(tiny_suite(tmp_path / "b", str(tiny_model_dir), streams=without,
                                  methods=methods))
    assert grid_id(suite) != grid_id(other)
    assert any("stream long, sft: train lr=5e-06" in line for line in settings_lines(suite))



@pytest.mark.parametrize("stream, problem", [
    ({"task": ["arith"]}, "stream 'a' as a mapping takes 'tasks', 'train' and 'methods', not 'task'"),
    ({"tasks": ["arith"], "methods": {"sft": {"lr": 0}}}, "stream 'a', methods, sft: lr must be > 0"),
    ({"tasks": ["arith"], "methods": {"nope": {"lr": 1e-3}}}, "stream 'a', methods names 'nope', which the suite does not list"),
    ({"tasks": ["arith"], "methods": ["sft"]}, "stream 'a', methods must map method names"),
    ({"tasks": ["arith"], "train": {"epochs": -1}}, "stream 'a', train: epochs must be > 0"),
    ({"tasks": ["arith"], "train": {"bogus": 1}}, "stream 'a', train: unknown key 'bogus'"),
])
def test_a_bad_stream_mapping_is_one_line(tmp_path, tiny_model_dir, stream, problem):
    from harness.errors import HarnessError

    with pytest.raises(HarnessError) as err:
        load_suite(tiny_suite(tmp_path, str(tiny_model_dir), streams={"a": stream}))
    assert problem in str(err.value)


@pytest.mark.parametrize("native", [True, False])
def test_shared_generation_is_counted_once_per_unit_and_bf16_scales_the_cpu_figures(
        tmp_path, tiny_model_dir, monkeypatch, native):
    """sa-sft's pool is one per (model, seed), sdft-rewrite's rewrites one per (model, seed,
    task): two streams sharing a task and two methods per seed need 2 pools and 3 rewrite
    sets a seed, not one per cell; bf16 scales every CPU fallback figure."""
    from harness import precision
    from harness.grid import (CPU_135M_POOL_S, CPU_135M_REWRITE_S, CPU_BF16_EMULATED_FACTOR,
                              CPU_BF16_FACTOR, shared_generation)

    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: native)
    factor = CPU_BF16_FACTOR if native else CPU_BF16_EMULATED_FACTOR

    streams = {"a": ["arith", "json-extract"], "b": ["json-extract", "facts"]}
    suite = load_suite(tiny_suite(tmp_path, str(tiny_model_dir), streams=streams, seeds=[0, 1],
                                  methods={"sa-sft": {}, "sdft-rewrite": {}}))
    units = {}
    for cell in expand(suite):
        units.update(shared_generation(cell, suite))
    pools = [u for u in units if u[0] == "sa-sft"]
    rewrites = [u for u in units if u[0] == "sdft-rewrite"]
    assert len(pools) == 2 and len(rewrites) == 2 * 3
    assert sum(units.values()) == pytest.approx(
        2 * CPU_135M_POOL_S["sa-sft"] + 6 * 8 * CPU_135M_REWRITE_S["sdft-rewrite"])
    (tmp_path / "bf").mkdir()
    bf16 = load_suite(tiny_suite(tmp_path / "bf", str(tiny_model_dir), streams=streams,
                                 seeds=[0, 1], methods={"sa-sft": {}, "sdft-rewrite": {}},
                                 precision="bf16"))
    cell, twin = expand(suite)[0], expand(bf16)[0]
    plain, fast = estimate(cell, suite, {}), estimate(twin, bf16, {})
    assert fast["train_s"] == pytest.approx(factor["train"] * plain["train_s"])
    assert fast["eval_s"] == pytest.approx(factor["eval"] * plain["eval_s"])
    assert sum(shared_generation(twin, bf16).values()) == pytest.approx(
        factor["generation"] * sum(shared_generation(cell, suite).values()))
    assert (fast["train_s"] < plain["train_s"]) == native


def test_the_dry_run_adds_each_shared_generation_once(tmp_path, tiny_model_dir, capsys):
    from harness.dryrun import dry_run
    from harness.grid import CPU_135M_POOL_S

    suite = load_suite(tiny_suite(tmp_path, str(tiny_model_dir), seeds=[0, 1],
                                  methods={"sa-sft": {}, "sft": {}}))
    dry_run(suite, tmp_path / "out", expand(suite), as_json=True)
    found = json.loads(capsys.readouterr().out)
    assert found["shared_generation_s"] == pytest.approx(2 * CPU_135M_POOL_S["sa-sft"])
    cells = sum(c["estimate_s"] for c in found["cells"])
    assert found["estimate_s"] > cells + 2 * CPU_135M_POOL_S["sa-sft"] - 1e-6
