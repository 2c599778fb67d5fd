"""The scripts that read results (scripts/method_evidence.py, scripts/benchmark_card.py):
their tables from synthetic cells read through harness.cells."""

import json
from pathlib import Path

import pytest

from helpers import load_script
from synthetic_cells import write_cell


EVIDENCE = load_script("method_evidence")
CARD = load_script("benchmark_card")


def test_evidence_tables_from_results(tmp_path, capsys):
    load, tables = EVIDENCE.load, EVIDENCE.tables

    def cell(method, seed, r11, drift, sec, stats=None):
        folder = tmp_path / "cells" / f"{method}{seed}"
        folder.mkdir(parents=True)
        folder.joinpath("result.json").write_text(json.dumps({
            "status": "complete", "cell": {"model": "m", "stream": "s", "method": method,
                                           "seed": seed}, "tasks": ["a", "b"],
            "R": [[0.1, 0.0], [r11, 0.0], [0.5, 0.9]], "metrics": {"acc": 0.7, "bwt": 0.5 - r11},
            "probes": {"drift": [0.0, drift / 2, drift]},
            "probe_info": {"drift": {"higher_is_better": False}},
            "training": [{"steps": 2, "sec_per_step": sec}, {"steps": 2, "sec_per_step": sec}],
            "timings": {"setup_s": 1.0, "train_s": 4 * sec}, "method_stats": stats or {},
            "hardware": {"platform": "x", "cpu_count": 2, "device": "cpu"}}))

    for seed in (0, 1):
        cell("sft", seed, 0.9, 0.2 + seed / 10, 2.0)
        cell("sdft", seed, 0.7, 0.1, 5.0, {"a": {"rate": 0.25 + seed / 2}})
    text = tables(load(tmp_path)["s"])
    rows = {}
    for line in text.splitlines():  # the first table's row of each method
        if line.startswith("| "):
            rows.setdefault(line.split(" | ")[0].strip("| "), line)
    # task gain = mean(R[1][0]-R[0][0], R[2][1]-R[0][1]) = ((0.9-0.1) + 0.9) / 2 = 0.85 for sft
    assert "| sft | 2 | 0.850 ± 0.000 | 0.700 ± 0.000 |" in rows["sft"]
    assert "0.250 ± 0.071" in rows["sft"]  # final drift 0.2, 0.3
    assert "2.50 ± 0.00x" in text and "rate (a): 0.5" in text  # 5 s / 2 s; mean of 0.25, 0.75
    assert "KL @" not in text  # no method recorded divergences per position
    assert EVIDENCE.main([str(tmp_path), "--methods", "sdft"]) == 0
    printed = capsys.readouterr().out
    assert "| sdft | 2 |" in printed and "| sft |" not in printed and "## " not in printed


def test_evidence_keeps_streams_apart(tmp_path, capsys):
    """A run of two streams: one set of tables a stream, each method's seeds from its own
    stream (a seed of one stream never stands in for the other's)."""
    for stream, after in (("one", 0.5), ("two", 0.9)):
        for seed in (0, 1):
            folder = write_cell(tmp_path, "m", stream, "sft", seed, [[0.1, 0.1], [after, 0.1],
                                                                    [0.5, 0.6]])
            data = json.loads((folder / "result.json").read_text())
            data |= {"training": [{"steps": 2, "sec_per_step": 1.0}],
                     "timings": {"setup_s": 1.0, "train_s": 2.0},
                     "hardware": {"platform": "x", "cpu_count": 2, "device": "cpu"}}
            (folder / "result.json").write_text(json.dumps(data))
    found = EVIDENCE.load(tmp_path)
    assert sorted(found) == ["one", "two"] and sorted(found["one"]["sft"]) == [0, 1]
    assert EVIDENCE.main([str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    one, two = printed.split("## two")
    assert one.startswith("## one") and "| sft | 2 | 0.450 ± 0.000 |" in one  # (0.4 + 0.5)/2
    assert "| sft | 2 | 0.650 ± 0.000 |" in two  # (0.8 + 0.5) / 2


def test_evidence_position_table_and_plugin_names():
    position_table, shown = EVIDENCE.position_table, EVIDENCE.shown

    stats = lambda kl, cut: {"a": {"kl_by_position": kl, "truncated_share": cut}}
    cells = {"x/v.py:SDFTSkip0": {0: {"method_stats": stats({"0": 0.2, "1": 0.1}, 0.5)},
                                  1: {"method_stats": stats({"0": 0.4, "1": 0.3}, 0.25)}}}
    text = position_table(cells)
    assert "| SDFTSkip0 | a | 2 | 0.38 ± 0.18 | 0.3000 ± 0.1414 | 0.2000 ± 0.1414 |" in text
    assert shown("sft") == "sft" and shown("a/b.py:C") == "C"


def test_evidence_names_old_path_named_cells_by_the_class_name(tmp_path, monkeypatch):
    """Cells from before methods were named by `name` recorded path.py:Class: they group
    with the new cells of that method; a file that no longer loads: the class name."""
    plugin = tmp_path / "variants.py"
    plugin.write_text("from harness.methods import Method\n\n\nclass Mine(Method):\n"
                      "    name = 'my-method'\n")
    monkeypatch.chdir(tmp_path)
    assert EVIDENCE.identity("variants.py:Mine") == "my-method"
    assert EVIDENCE.identity("gone.py:Other") == "Other"
    assert EVIDENCE.identity("sft") == "sft"


def test_evidence_skips_invalid_cells(tmp_path):
    write_cell(tmp_path, "m", "s", "sft", 0, [[0.1, 0.1], [0.5, 0.1], [0.5, 0.6]])
    bad = tmp_path / "cells" / "bad"
    bad.mkdir()
    (bad / "result.json").write_text(json.dumps({"status": "complete", "cell": {"method": "x"}}))
    assert list(EVIDENCE.load(tmp_path)) == ["s"] and list(EVIDENCE.load(tmp_path)["s"]) == ["sft"]
    assert EVIDENCE.gain(EVIDENCE.load(tmp_path)["s"]["sft"][0]) == 0.45


def test_card_tables_from_single_task_sft_cells(tmp_path, capsys):
    for seed, after in ((0, 0.6), (1, 0.8)):
        folder = write_cell(tmp_path, "m", "arith", "sft", seed, [[0.1], [after]],
                            tasks=["arith"])
        data = json.loads((folder / "result.json").read_text())
        data["training"] = [{"sec_per_step": 2.0}]
        data["hardware"] = {"platform": "x", "cpu_count": 2, "device": "cpu"}
        (folder / "result.json").write_text(json.dumps(data))
    write_cell(tmp_path, "m", "two", "sft", 0, [[0.1, 0.1], [0.5, 0.1], [0.5, 0.6]])
    assert list(CARD.load(tmp_path)) == ["arith"]
    assert CARD.main([str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "| arith | 2 | 0.100 | 0.700 ± 0.141 | +0.600 | yes | yes |" in text
    assert "| drift (↓) | 0.000 | 0.100 ± 0.000 |" in text


def _pilot_cell(out, method, seed, rng, forget, content=False):
    """A 3-task cell of 20 items a task: each task learned (0.8) right after its training,
    then kept with probability 1 - forget at the end; the base row 0."""
    import numpy as np

    tasks, n = ["a", "b", "c"], 20
    items = {t: [[0.0] * n] for t in tasks}
    for i in range(1, 4):
        for j, t in enumerate(tasks):
            if i - 1 < j:
                row = [0.0] * n
            elif i - 1 == j:
                row = [float(x < 0.8) for x in rng.random(n)]
            else:
                row = [x if rng.random() > forget else 0.0 for x in items[t][j + 1]]
            items[t].append(row)
    R = [[float(np.mean(items[t][i])) for t in tasks] for i in range(4)]
    probes = {"knowledge": [0.75] + [0.75 - 0.05 * forget * i + 0.001 * seed for i in (1, 2, 3)]}
    folder = write_cell(out, "m", "s3", method, seed, R, items=items, tasks=tasks, probes=probes)
    if content:
        data = json.loads((folder / "result.json").read_text())
        plus = {t: [[min(1.0, x + 0.0) for x in row] for row in rows] for t, rows in items.items()}
        data["by_metric"] = {"strict": {"R": R, "items": items}, "content": {"R": R, "items": plus}}
        (folder / "result.json").write_text(json.dumps(data))


def test_card_pilot_tables_forgetting_and_tests_against_sft(tmp_path, capsys):
    import numpy as np

    rng = np.random.default_rng(0)
    for seed in range(3):
        _pilot_cell(tmp_path, "sft", seed, rng, forget=0.9, content=True)
        _pilot_cell(tmp_path, "replay", seed, rng, forget=0.1, content=True)
        sft = tmp_path / "cells" / f"m__s3__sft__s{seed}" / "result.json"
        ewc = json.loads(sft.read_text())  # item for item sft's, as v1's ewc was
        ewc["cell"]["method"] = "ewc"
        (tmp_path / "cells" / f"m__s3__ewc__s{seed}").mkdir()
        (tmp_path / "cells" / f"m__s3__ewc__s{seed}" / "result.json").write_text(json.dumps(ewc))
    pilot = CARD.load_pilot(tmp_path)
    assert list(pilot["s3"]) == ["sft", "ewc", "replay"]  # the reference first
    text = CARD.pilot_tables(pilot)
    rows = {(r.split("|")[1].strip(), r.split("|")[2].strip()): r for r in text.splitlines()
            if r.startswith("| ") and len(r.split("|")) == 9}
    # replay forgets far less than sft over 3 x 40 forgettable items: significant
    assert rows[("replay", "bwt")].endswith(" * |")
    for name in ("acc", "bwt", "plasticity"):  # identical to sft: difference 0, p 1
        assert rows[("ewc", name)].split("|")[5:8] == [" +0.000 ", " 1 ", " 1 "]
    diff = float(rows[("replay", "bwt")].split("|")[5])
    sft_bwt = np.mean([CARD.metric(c, "strict", "bwt") for c in pilot["s3"]["sft"].values()])
    rep_bwt = np.mean([CARD.metric(c, "strict", "bwt") for c in pilot["s3"]["replay"].values()])
    assert diff == pytest.approx(rep_bwt - sft_bwt, abs=5e-4) and diff > 0.3
    assert "sft BWT (strict)" in text and "forgets (<= -0.15)" in text
    assert "Scoring **content**" in text  # both scorings shown where cells have both
    # the item-level p is the adapter's permutation test on the pooled items
    ia = [x for s in range(3) for x in CARD.item_values(pilot["s3"]["replay"][s], "strict", "bwt")]
    ib = [x for s in range(3) for x in CARD.item_values(pilot["s3"]["sft"][s], "strict", "bwt")]
    assert len(ia) == 3 * 2 * 20 and np.mean(ia) == pytest.approx(rep_bwt)
    from harness.statistics import paired_permutation_test
    assert CARD.Stats.item_p(ia, ib) == paired_permutation_test(ia, ib, n_resamples=9999, seed=0)


def test_card_writes_between_markers_and_keeps_the_prose(tmp_path):
    import numpy as np

    rng = np.random.default_rng(1)
    for seed in range(2):
        _pilot_cell(tmp_path, "sft", seed, rng, forget=0.5)
    card = tmp_path / "card.md"
    card.write_text(f"# Card\n\nIntro.\n\n{CARD.BEGIN}\nold tables\n{CARD.END}\n\n## Conclusions\nmine\n")
    assert CARD.main([str(tmp_path), "--write", str(card)]) == 0
    text = card.read_text()
    assert text.startswith("# Card\n\nIntro.\n\n") and text.endswith("## Conclusions\nmine\n")
    assert "old tables" not in text and "### Stream `s3`: a -> b -> c" in text
    assert CARD.main([str(tmp_path / "nothing")]) == 2


def test_card_rescores_content_of_older_cells_from_their_samples(tmp_path):
    """A pilot cell from before content scoring: its answers (samples.json) are rescored;
    an arith answer without '####' earns content, not strict."""
    q = "Ravi has 4 pencils and finds 8 more. How many pencils does Ravi have now?"
    samples = {"arith": {"prompts": [q, q], "targets": ["12", "12"],
                         "outputs": [["4 and 8", "no"], ["4 + 8 = 12", "#### 12"],
                                     ["4 + 8 = 12", "4 and 8"]]},
               "classify": {"prompts": ["Message: my lamp broke"] * 2, "targets": ["repair"] * 2,
                            "outputs": [["x", "x"], ["x", "x"], ["It is a repair case.", "repair"]]}}
    items = {"arith": [[0.0, 0.0], [0.0, 1.0], [0.0, 0.0]],
             "classify": [[0.0, 0.0], [0.0, 0.0], [0.0, 1.0]]}
    for seed in (0, 1):
        folder = write_cell(tmp_path, "m", "s", "sft", seed, [[0, 0], [0.5, 0], [0, 0.5]],
                            items=items, tasks=["arith", "classify"])
        (folder / "samples.json").write_text(json.dumps(samples))
    cell = CARD.load_pilot(tmp_path)["s"]["sft"][0]
    content = cell["by_metric"]["content"]
    assert content["items"]["arith"] == [[0.0, 0.0], [1.0, 1.0], [1.0, 0.0]]
    assert content["items"]["classify"][2] == [1.0, 1.0]
    assert content["R"][2] == [0.5, 1.0] and cell["by_metric"]["strict"]["R"][2] == [0, 0.5]
    assert CARD.metric(cell, "content", "bwt") == -0.5
    assert "rescored from the cells' samples.json" in CARD.pilot_tables(CARD.load_pilot(tmp_path))


def test_card_judges_probe_noise_from_three_seeds_only():
    """Two seeds whose probe moved equally give sd 0: the card must not call that move
    "beyond 3 sd"; from 3 seeds it compares the mean move with 3 sd."""
    def cell(delta):
        return {"probes": {"drift": [0.0, delta]}}

    two = CARD.forgetting_lines({0: cell(0.5), 1: cell(0.5)}, ["drift"], [])
    assert any("too few seeds" in line for line in two)
    assert not any("beyond" in line for line in two)
    three = CARD.forgetting_lines({0: cell(0.5), 1: cell(0.52), 2: cell(0.48)}, ["drift"], [])
    assert any("moves beyond 3 sd" in line for line in three)
    noisy = CARD.forgetting_lines({0: cell(0.5), 1: cell(-0.5), 2: cell(0.1)}, ["drift"], [])
    assert any("within 3 sd" in line for line in noisy)


def test_evidence_without_a_cells_folder_is_one_line_and_exit_2(tmp_path, capsys):
    # a folder that exists but is not a run's --out (no cells/ inside) used to end in a traceback
    assert EVIDENCE.main([str(tmp_path)]) == 2
    assert EVIDENCE.main([str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("cells" in line and "--out" in line for line in err)
