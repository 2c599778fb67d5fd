"""data.seed: per-seed varies the test items with the training seed (items become a random
factor the seed-to-seed spread sees); a fixed data seed, every existing suite's setting,
keeps grid ids and cell hashes as they were."""

import pytest

from harness.config import load_suite
from harness.errors import HarnessError
from harness.grid import expand, grid_definition, grid_id, plan
from tests.helpers import tiny_suite

EXISTING = ("leaderboard", "quickstart", "standard", "methods", "calibration", "pilot-v2")


@pytest.mark.parametrize("name", EXISTING)
def test_existing_suites_keep_a_fixed_data_seed_and_their_definition(name):
    suite = load_suite(name)
    definition = grid_definition(suite)
    assert definition["data"]["seed"] == 0  # the same dict, so the same ids and hashes
    assert all(isinstance(h, str) for h in definition["task_hashes"].values())
    cells = expand(suite)
    assert plan(cells[0], suite).config["data"] == definition["data"]


def test_per_seed_data_varies_items_with_the_training_seed(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    fixed = load_suite(tiny_suite(tmp_path / "a", "m", seeds=[0, 1]))
    varied = load_suite(tiny_suite(tmp_path / "b", "m", seeds=[0, 1],
                                   data={"n_train": 8, "n_test": 4, "seed": "per-seed"}))
    assert varied.data.seed == "per-seed" and fixed.data.seed == 0
    by_seed = {}
    for cell in expand(varied):
        by_seed.setdefault(cell.seed, set()).add(
            tuple(sorted(plan(cell, varied).config["tasks"].items())))
    assert len(by_seed[0]) == 1 and len(by_seed[1]) == 1  # methods share a seed's items
    assert by_seed[0] != by_seed[1]  # seeds do not
    fixed_hashes = {tuple(sorted(plan(c, fixed).config["tasks"].items())) for c in expand(fixed)}
    assert len(fixed_hashes) == 1
    definition = grid_definition(varied)["task_hashes"]
    assert set(definition["arith"]) == {"0", "1"}
    assert grid_id(varied) != grid_id(fixed)


def test_a_data_seed_that_is_not_a_number_or_per_seed_is_one_line(tmp_path):
    with pytest.raises(HarnessError, match="seed must be a number or per-seed"):
        load_suite(tiny_suite(tmp_path, "m", data={"seed": "each"}))
