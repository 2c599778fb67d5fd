"""A method's one identity is its `name`: file plugins are named by their class's `name`
(cells, rows, config), suite paths resolve beside the suite, `--methods` finds the suite's
settings by name, `--set` overrides settings; built-in cells keep their ids and hashes."""

from harness.config import load_suite
from harness.grid import expand, grid_id, plan

# Computed with the code before method identity changed (commit 2a40761): the cells of the
# running leaderboard grid must stay complete under this code, byte for byte.
LEADERBOARD_GRID_ID = "d253f81a9d5c1733"
LEADERBOARD_PINS = {
    "smollm2-135m-instruct__arith-json__sft__s0": "0c9460832a7fd74d",
    "smollm2-135m-instruct__arith-json__lora__s0": "b0cdc7930a1738ce",
    "smollm2-135m-instruct__json-arith__sdft__s0": "0172d43f00d10263",
}


def test_builtin_cells_keep_their_ids_and_config_hashes():
    suite = load_suite("leaderboard")
    cells = {cell.id: cell for cell in expand(suite)}
    assert len(cells) == 84 and grid_id(suite) == LEADERBOARD_GRID_ID
    for cell_id, config_hash in LEADERBOARD_PINS.items():
        assert plan(cells[cell_id], suite).config_hash == config_hash, cell_id
