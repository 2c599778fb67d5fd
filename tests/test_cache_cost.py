"""Cold-cache cost (harness/storage.py Ledger, timings.cache_cpu_s, results.cold_cpu_s): an
entry records what computing it cost; a cell that reuses it is charged that cost once, so
cpu_s + cache_cpu_s does not depend on which cell filled the cache."""

from __future__ import annotations

import json
import time

import pytest
from helpers import tiny_suite

from harness import checkpoint, storage
from harness.results import cold_cpu_s
from harness.storage import Cache, Ledger, start_ledger


def burn(seconds: float, value=1):
    """A compute that uses `seconds` of this process's CPU time."""
    def compute():
        end = time.process_time() + seconds
        while time.process_time() < end:
            pass
        return value
    return compute


def entry_file(cache: Cache, namespace: str, key) -> dict:
    return json.loads(cache.path(namespace, key).read_text())


def test_an_entry_records_its_cpu_and_wall_seconds():
    cache = Cache()
    cache.get_or_compute("ns", "busy", burn(0.3))
    cache.get_or_compute("ns", "idle", lambda: time.sleep(0.3) or 2)
    busy, idle = entry_file(cache, "ns", "busy"), entry_file(cache, "ns", "idle")
    assert busy["value"] == 1 and 0.3 <= busy["cpu_s"] < 0.45 and busy["wall_s"] >= 0.3
    # process CPU time, not wall clock: sleeping costs (almost) nothing
    assert idle["value"] == 2 and idle["cpu_s"] < 0.05 and 0.3 <= idle["wall_s"] < 1.0


def test_a_hit_is_charged_once_and_never_for_what_the_ledger_computed():
    cache = Cache()
    ledger = start_ledger()
    cache.get_or_compute("ns", "mine", burn(0.1))
    cache.get_or_compute("ns", "mine", burn(9))  # re-read within the ledger that paid it
    assert ledger.total()[0] == 0.0
    cost = entry_file(cache, "ns", "mine")["cpu_s"]
    ledger = start_ledger()  # the next cell
    for _ in range(3):
        assert cache.get_or_compute("ns", "mine", burn(9)) == 1
    assert ledger.total()[0] == pytest.approx(cost)  # once, however often it is read
    assert storage.CELL is ledger


def test_an_entry_from_before_costs_stays_valid_and_makes_the_total_unknown():
    cache = Cache()
    path = cache.path("ns", "old")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"key": "old", "value": [1, 2]}))  # the former format
    ledger = start_ledger()
    assert cache.get_or_compute("ns", "old", burn(9, "recomputed")) == [1, 2]
    assert ledger.total() == (None, None)
    assert json.loads(path.read_text()) == {"key": "old", "value": [1, 2]}  # not rewritten


def test_an_entry_that_reuses_another_costs_what_an_empty_cache_would():
    """An entry computed from a cached one: its cold cost includes the one it reused."""
    cache = Cache()
    cache.get_or_compute("ns", "inner", burn(0.2))
    inner = entry_file(cache, "ns", "inner")["cpu_s"]
    ledger = start_ledger()
    cache.get_or_compute("ns", "outer", lambda: cache.get_or_compute("ns", "inner", burn(9))
                         + cache.get_or_compute("ns", "inner", burn(9)) + burn(0.1)())
    outer = entry_file(cache, "ns", "outer")["cpu_s"]
    assert inner + 0.099 <= outer < inner + 0.2  # inner counted once (3 decimals stored)
    assert ledger.total()[0] == pytest.approx(inner)  # the cell reused inner, computed outer


def test_ledgers_merge_across_a_resume():
    first = Ledger()
    first.computed.add("a")  # computed before the kill
    first.hit("b", [1.0, 2.0])
    second = Ledger()  # the resumed process reads a again, and b, and c
    for entry, cost in (("a", [5.0, 5.0]), ("b", [1.0, 2.0]), ("c", [0.5, 0.5])):
        second.hit(entry, cost)
    second.merge(first.state())
    assert second.total() == (1.5, 2.5)
    second.merge(None)  # a checkpoint from before the ledger
    assert second.total() == (None, None)


@pytest.mark.parametrize("timings,expected", [
    ({"cpu_s": 10.0, "cache_cpu_s": 2.5}, (12.5, True)),
    ({"cpu_s": 10.0, "cache_cpu_s": 0.0}, (10.0, True)),
    ({"cpu_s": 10.0, "cache_cpu_s": None}, (10.0, False)),  # a lower bound
    ({"cpu_s": 10.0}, (10.0, False)),  # a cell from before the field
    ({"cpu_s": None, "cache_cpu_s": 2.5}, (None, False)),
    ({}, (None, False)),
])
def test_cold_cpu_seconds(timings, expected):
    assert cold_cpu_s({"timings": timings}) == expected


def test_two_cells_sharing_a_cache_cost_the_same_cold(tmp_path, tiny_model_dir):
    """Two cells of one model and stream share row 0 and the base answers: the first
    computes them (cache_cpu_s 0.0), the second reuses them and is charged what they cost;
    entries from before costs make it unknown; a resume neither loses nor doubles it."""
    from harness.cli import main
    from harness.results import read_result

    suite = tiny_suite(tmp_path, str(tiny_model_dir), streams={"two": ["arith", "json-extract"]},
                       methods={"sft": {}}, seeds=[0, 1], probes=["drift"])
    out = tmp_path / "out"
    args = ["run", "--suite", str(suite), "--out", str(out), "--quiet", "--keep-checkpoints"]
    assert main(args) == 0
    first, second = (read_result(f)[0] for f in sorted((out / "cells").iterdir()))
    entries = [json.loads(p.read_text()) for p in (tmp_path / "cache").glob("*/*.json")]
    assert sorted(p.parent.name for p in (tmp_path / "cache").glob("*/*.json")) == [
        "base_rows", "general_answers"]
    t1, t2 = first["timings"], second["timings"]
    assert t1["cache_cpu_s"] == t1["cache_wall_s"] == 0.0 and type(t1["cache_cpu_s"]) is float
    assert t2["cache_cpu_s"] == pytest.approx(sum(e["cpu_s"] for e in entries))
    assert 0 < t2["cache_cpu_s"] < t1["cpu_s"]
    # the base_rows entry's wall clock agrees with the evaluator's own timing of row 0
    (row0,) = [e for e in entries if "scores" in e["value"]]
    assert row0["wall_s"] == pytest.approx(row0["value"]["seconds"], abs=0.05, rel=0.05)
    assert t2["cache_wall_s"] >= row0["value"]["seconds"]
    assert cold_cpu_s(second) == (t2["cpu_s"] + t2["cache_cpu_s"], True)

    def rerun(folder, cut=None) -> dict:
        """The cell run again: from its start, or with `cut`, resumed from its checkpoint
        cut back to one task and edited by `cut`."""
        done = read_result(folder)[0]
        if cut is None:
            checkpoint.remove(folder)
        else:
            state, why = checkpoint.load(folder, done["config_hash"], done["tasks"])
            assert why is None
            state.update(done=1, rows=state["rows"][:2], training=state["training"][:1],
                         history=state["history"][:1])
            cut(state)
            checkpoint.save(folder, state)
        (folder / "result.json").unlink()
        assert main(args) == 0
        return read_result(folder)[0]

    one, two = sorted((out / "cells").iterdir())
    resumed = rerun(two, cut=lambda state: None)
    assert resumed["timings"]["resumed_after"] == [1]
    assert resumed["timings"]["cache_cpu_s"] == t2["cache_cpu_s"]  # counted once
    # the first cell computed them before the kill: re-read after it, still paid by cpu_s
    assert rerun(one, cut=lambda state: None)["timings"]["cache_cpu_s"] == 0.0
    no_ledger = rerun(two, cut=lambda state: state.pop("cache"))  # an older checkpoint
    assert no_ledger["timings"]["cache_cpu_s"] is None

    for entry in (tmp_path / "cache").glob("*/*.json"):  # entries from before costs
        old = json.loads(entry.read_text())
        entry.write_text(json.dumps({"key": old["key"], "value": old["value"]}))
    again = rerun(two)
    assert again["timings"]["cache_cpu_s"] is None and again["timings"]["cache_wall_s"] is None
    assert again["R"] == second["R"] and again["metrics"] == second["metrics"]
    assert cold_cpu_s(again) == (again["timings"]["cpu_s"], False)
