"""`harness leaderboard`: the ranking, CIs and tests agree with a direct numpy/scipy
computation; planted effects come out (a clearly better method ranks 1 alone, identical
methods tie); a rebuild is byte-identical; a tampered bundle is excluded and named; verified
and self-reported are told apart; the page makes no request. One test ranks real bundles
written by `harness submit` on the tiny model."""

import itertools
import json
import re
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import stats

from harness import bundle as B
from harness import statistics as S
from harness import verify as V
from harness.errors import HarnessError
from harness.leaderboard import build, rejection_lines
from harness.leaderboard import ranking as K
from tests.synthetic_cells import R_for, write_cell

STREAMS, SEEDS = ("s1", "s2"), (0, 1, 2)
PAIRS = [(s, k) for s in STREAMS for k in SEEDS]
NAMES = ("sft", "lora", "best", "twin-a", "twin-b", "worse")
# what build() reads of the suite beside verify's checks (patched out): its method list, in
# which "late" has no bundle yet
SYNTH = SimpleNamespace(name="synthetic", methods=[SimpleNamespace(name=n)
                                                   for n in (*NAMES, "late")])


def write_bundle(root, name, accs, drift=0.1, verified=False):
    """A synthetic bundle: valid result.json cells (tests/synthetic_cells.py), a manifest
    and checksums; verification.json matching them when `verified`."""
    path = root / "leaderboard" / "submissions" / name
    for (stream, seed), acc in accs.items():
        write_cell(path, "m", stream, name, seed, R_for(acc),
                   probes={"drift": [0.0, drift / 2, drift + 0.001 * seed],
                           "knowledge": [0.6, 0.6, 0.58]})
    manifest = {
        "bundle_version": 1, "name": name,
        "method": {"name": name, "class": f"x:{name}", "builtin": True,
                   "description": f"the {name} method", "source": "method/x.py",
                   "sha256": "0", "params": {"k": 1}, "train": {"lr": 1e-3}},
        "suite": {"name": "synthetic", "grid_id": "g1", "models": ["m"],
                  "streams": {"s1": ["t1", "t2"], "s2": ["t2", "t1"]}, "seeds": list(SEEDS),
                  "probes": ["drift", "knowledge"]},
        "harness": {"version": "0.1.0", "git_revision": "abc"},
        "hardware": {"device_type": "cpu", "processor": "cpu", "threads": 1},
        "cells": sorted(p.name for p in (path / "cells").iterdir()),
        "wall_clock_s": 36.0, "device_hours": 0.01}
    (path / B.MANIFEST).write_text(json.dumps(manifest))
    (path / B.CHECKSUMS).write_text(B.format_checksums(B.file_checksums(path)))
    if verified:
        (path / B.VERIFICATION).write_text(json.dumps(
            {"verified": True, "at": "2025-02-03T04:05:06+00:00",
             "checksums_sha256": B.sha256_file(path / B.CHECKSUMS)}))
    return path


def checksum_only(path, suite):
    """Stands in for verify.static_problems on synthetic bundles (they have no real grid):
    the checksum check alone."""
    listed = B.parse_checksums((path / B.CHECKSUMS).read_text())
    actual = B.file_checksums(path)
    return [f"{f}: checksum mismatch" for f in sorted(set(listed) | set(actual))
            if listed.get(f) != actual.get(f)]


def make_board(root, seed=1):
    """Six methods on 2 streams x 3 seeds: `best` is 0.2 better on every pair, `worse`
    0.1 worse, `twin-a` and `twin-b` identical, `sft` and `lora` noise around a shared
    per-pair baseline. sft and best are verified. Returns {method: {pair: acc}}."""
    rng = np.random.default_rng(seed)
    base = {p: 0.5 + 0.05 * rng.standard_normal() for p in PAIRS}
    accs = {}
    for i, name in enumerate(NAMES):
        offset = {"best": 0.2, "worse": -0.1}.get(name, 0.0)
        accs[name] = {p: base[p] + offset + 0.01 * rng.standard_normal() for p in PAIRS}
    accs["twin-b"] = dict(accs["twin-a"])
    for i, name in enumerate(NAMES):
        write_bundle(root, name, accs[name], drift=0.05 * (i + 1),
                     verified=name in ("sft", "best"))
    return accs


@pytest.fixture
def board(tmp_path, monkeypatch):
    monkeypatch.setattr(V, "static_problems", checksum_only)
    accs = make_board(tmp_path)
    return tmp_path, accs


def built(root, **kw):
    result = build(root, suite=SYNTH, **kw)
    return result, json.loads((root / "leaderboard" / "leaderboard.json").read_text())


def acc_of(name, pair, accs):
    return float(np.mean(R_for(accs[name][pair])[-1]))


def stream_centred_t(d_by_stream):
    """Hand computation: (estimate, se, df) of the stream-centred t over equal strata."""
    d = np.asarray(d_by_stream, dtype=float)  # [streams, seeds]
    k, n = d.shape
    resid = d - d.mean(axis=1, keepdims=True)
    df = k * n - k if k * n - k >= 1 else k * n - 1
    if k * n - k < 1:
        resid = d - d.mean()
    s2 = (resid ** 2).sum() / df
    return d.mean(), np.sqrt(s2 / (k * n)), df


def test_aggregate_and_ci_match_a_numpy_computation(board):
    """2 streams x 3 seeds: the stream-centred t interval (df 4); one stream: df 2."""
    root, accs = board
    _, data = built(root)
    rows = data["views"]["all"]["metrics"]["acc"]["methods"]
    for name in NAMES:
        groups = [[acc_of(name, (s, k), accs) for k in SEEDS] for s in STREAMS]
        est, se, df = stream_centred_t(groups)
        assert df == 4
        half = stats.t.ppf(0.975, df) * se
        assert rows[name]["mean"] == pytest.approx(np.mean([np.mean(g) for g in groups]), abs=1e-6)
        assert rows[name]["ci"] == pytest.approx([est - half, est + half], abs=1e-6)
        assert rows[name]["n"] == 6
        one = data["views"]["s1"]["metrics"]["acc"]["methods"][name]
        g = np.array(groups[0])
        ci = stats.t.interval(0.95, 2, loc=g.mean(), scale=stats.sem(g))
        assert one["ci"] == pytest.approx(list(ci), abs=1e-6)


def test_ranks_match_paired_t_tests_with_holm_over_all_pairs(board):
    root, accs = board
    _, data = built(root)
    acc = data["views"]["all"]["metrics"]["acc"]
    rows = acc["methods"]
    values = {n: np.array([[acc_of(n, (s, k), accs) for k in SEEDS] for s in STREAMS])
              for n in NAMES}
    pairs = list(itertools.combinations(sorted(NAMES), 2))
    ps = []
    for a, b in pairs:
        d = values[a] - values[b]
        est, se, df = stream_centred_t(d)
        ps.append(1.0 if np.ptp(d) < 1e-12 else 2 * stats.t.sf(abs(est) / se, df))
    adjusted = dict(zip(pairs, S.holm(ps)))  # one family: all 15 pairs
    assert acc["significant_pairs"] == sum(q < 0.05 for q in adjusted.values())
    assert acc["pairs"] == 15 and data["significant_pairs"] == acc["significant_pairs"]
    better = {n: set() for n in NAMES}
    for (a, b), q in adjusted.items():
        if q < 0.05:
            win, lose = (a, b) if values[a].mean() > values[b].mean() else (b, a)
            better[lose].add(win)
    changed = True
    while changed:  # chains of significant differences
        changed = False
        for n in NAMES:
            extra = set().union(*(better[o] for o in better[n])) - better[n]
            if extra:
                better[n] |= extra
                changed = True
    for name in NAMES:
        assert rows[name]["better"] == sorted(better[name])
        assert rows[name]["rank"] == 1 + len(better[name])
        beaten = sum(name in better[o] for o in NAMES)
        assert rows[name]["rank_interval"] == [1 + len(better[name]), len(NAMES) - beaten]
    vs = {n: rows[n]["vs_reference"] for n in NAMES if n != "sft"}
    for n in vs:
        key = tuple(sorted((n, "sft")))
        assert vs[n]["p_holm"] == pytest.approx(adjusted[key], abs=1e-6)
        assert vs[n]["wins"] == int(np.sum(values[n] > values["sft"]))
        est, se, df = stream_centred_t(values[n] - values["sft"])
        half = stats.t.ppf(0.975, df) * se
        assert vs[n]["ci"] == pytest.approx([est - half, est + half], abs=1e-6)
    assert rows["sft"]["vs_reference"] is None


def test_planted_effects_rank_one_alone_and_twins_tie(board):
    root, _ = board
    _, data = built(root)
    acc = data["views"]["all"]["metrics"]["acc"]
    ranks = {n: acc["methods"][n]["rank"] for n in NAMES}
    assert ranks["best"] == 1 and sorted(ranks.values()).count(1) == 1
    assert acc["order"][0] == "best" and acc["order"][-1] == "worse"
    assert ranks["worse"] == max(ranks.values()) and ranks["worse"] > 2
    assert ranks["twin-a"] == ranks["twin-b"]
    assert acc["methods"]["twin-a"]["ci"] == acc["methods"]["twin-b"]["ci"]
    assert "twin-a" not in acc["methods"]["twin-b"]["better"]
    best_vs = acc["methods"]["best"]["vs_reference"]
    assert best_vs["wins"] == 6 and best_vs["significant"] and best_vs["direction"] == "better"
    for stream in STREAMS:  # per-stream views exist and are computed on 3 pairs each
        view = data["views"][stream]
        assert view["n_pairs"] == 3 and view["metrics"]["acc"]["methods"]["best"]["n"] == 3
    # lower is better for drift (from probe_info): sft drifts least and ranks 1 there
    drift = data["views"]["all"]["metrics"]["drift_final"]
    assert drift["order"][0] == "sft"
    assert {m["key"]: m["higher_is_better"] for m in data["metrics"]}["drift_final"] is False
    assert data["pareto"]["all"]["front"] == ["sft", "best"]


def test_rebuild_is_byte_identical_anywhere(board, tmp_path_factory):
    root, _ = board
    first = build(root, suite=SYNTH)["written"]
    before = {p.name: p.read_bytes() for p in first}
    again = {p.name: p.read_bytes() for p in build(root, suite=SYNTH)["written"]}
    assert before == again and set(before) == {"leaderboard.json", "README.md", "index.html"}
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "checkout"
    shutil.copytree(root / "leaderboard" / "submissions", elsewhere / "leaderboard" / "submissions")
    moved = {p.name: p.read_bytes() for p in build(elsewhere, suite=SYNTH)["written"]}
    assert moved == before


def test_tampered_bundle_is_excluded_and_named(board):
    root, _ = board
    result = next((root / "leaderboard" / "submissions" / "lora" / "cells").iterdir()) / "result.json"
    data = json.loads(result.read_text())
    data["R"][-1] = [0.99, 0.99]
    result.write_text(json.dumps(data))
    refused = build(root, suite=SYNTH)
    assert refused["written"] == [] and list(refused["rejected"]) == ["lora"]
    assert not (root / "leaderboard" / "leaderboard.json").exists()
    lines = rejection_lines(refused["rejected"])
    assert lines and all(line.startswith("lora: ") and "checksum mismatch" in line for line in lines)
    res, board_data = built(root, skip_invalid=True)
    assert res["rejected"] == refused["rejected"] and "lora" not in res["ranked"]
    assert "lora" not in board_data["methods"] and "lora" in board_data["rejected"]
    assert "lora" not in board_data["views"]["all"]["metrics"]["acc"]["order"]
    page = (root / "leaderboard" / "index.html").read_text()
    readme = (root / "leaderboard" / "README.md").read_text()
    assert "Excluded bundles" in page and "lora: cells/" in page
    assert "Excluded bundles" in readme and "`lora`" in readme


def test_verified_and_self_reported(board):
    root, _ = board
    subs = root / "leaderboard" / "submissions"
    stale = json.loads((subs / "sft" / B.VERIFICATION).read_text())
    (subs / "lora" / B.VERIFICATION).write_text(json.dumps(stale))  # another bundle's record
    _, data = built(root)
    status = {n: data["methods"][n]["verified"] for n in NAMES}
    assert status == {"sft": True, "best": True, "lora": False, "twin-a": False,
                      "twin-b": False, "worse": False}
    assert data["methods"]["sft"]["verified_at"] == "2025-02-03"
    assert data["methods"]["lora"]["verified_at"] is None
    readme = (root / "leaderboard" / "README.md").read_text()
    assert "verified 2025-02-03" in readme and "self-reported" in readme


def test_each_stream_section_states_what_its_pairs_can_detect(board):
    root, _ = board
    _, data = built(root)
    readme = (root / "leaderboard" / "README.md").read_text()
    n_methods = len(data["methods"])
    assert len(data["grid"]["streams"]) >= 2
    for stream in data["grid"]["streams"]:
        n = len(data["grid"]["seeds"])  # a stream's pairs are its seeds
        pairs = n_methods * (n_methods - 1) // 2  # one family: every pair of methods
        first = stats.t.ppf(1 - 0.05 / (2 * pairs), n - 1) / n ** 0.5
        last = stats.t.ppf(1 - 0.05 / 2, n - 1) / n ** 0.5
        section = readme.split(f"## Stream {stream}\n\n", 1)[1]
        assert section.startswith(f"{n} (seed) pairs per method: a difference is significant "
                                  f"only if it exceeds {first:.2f} to {last:.2f} times the sd")


def test_page_is_self_contained_and_complete(board):
    root, _ = board
    _, data = built(root)
    page = (root / "leaderboard" / "index.html").read_text()
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert not re.search(r"<link|<img|<iframe|@import|url\(|fetch\(|XMLHttpRequest", page, re.I)
    assert page.isascii()
    assert page.count('class="drill"') == len(NAMES)  # one drill-down per method
    assert page.count('<svg class="pareto"') == 3  # all streams and each stream
    assert 'class="cells"' in page and 'class="R"' in page and 'class="spark"' in page
    embedded = re.search(r'<script type="application/json" id="lb-data">(.*?)</script>', page, re.S)
    assert json.loads(embedded.group(1))["views"] == data["views"]
    assert data["leaderboard_version"] == 1
    assert data["pending"] == ["late"] and "late" not in data["methods"]
    assert re.search(r'id="pending"><strong>Not ranked yet</strong>: late:', page)
    assert "**Not ranked yet** (listed by the leaderboard suite, no bundle yet): late." in \
        (root / "leaderboard" / "README.md").read_text()


def test_statistics_edge_cases():
    assert S.paired_t_p([0.1, 0.2, 0.3], [0.1, 0.2, 0.3]) == 1.0
    # the same gain on every pair: the exact sign-flip p, as harness report's test gives
    assert S.paired_t_p([0.2, 0.3, 0.4], [0.1, 0.2, 0.3]) == 0.25
    assert S.paired_t_p([0.2, 0.3, 0.4], [0.1, 0.2, 0.3]) == pytest.approx(
        S.paired_permutation_test([0.2, 0.3, 0.4], [0.1, 0.2, 0.3]))
    assert S.paired_t_p([1] * 6, [0] * 6) == 2 / 64
    assert S.paired_t_p([0.2], [0.1]) == 1.0
    a, b = [0.5, 0.6, 0.55, 0.7], [0.45, 0.58, 0.56, 0.6]
    assert S.paired_t_p(a, b) == pytest.approx(stats.ttest_rel(a, b).pvalue)
    power = K.power(6, 2, 14)  # 6 pairs in 2 streams: df 4; 91 pairs of methods
    assert power["permutation_floor_p"] == 2 / 64
    assert power["permutation_floor_holm"] > 0.05  # why not a permutation test
    assert power["comparisons"] == 91 and power["df"] == 4
    assert power["t_first"] == pytest.approx(stats.t.ppf(1 - 0.05 / 182, 4))
    assert power["sd_ratio_last"] == pytest.approx(stats.t.ppf(0.975, 4) / np.sqrt(6))
    assert K.pareto_front({"a": (0.1, 0.5), "b": (0.2, 0.4), "c": (0.3, 0.9),
                           "d": (0.1, 0.5)}) == ["a", "d", "c"]


def test_no_bundle_is_an_error(tmp_path):
    with pytest.raises(HarnessError, match="no bundle to rank"):
        build(tmp_path, suite=SYNTH)


# --------------------------------------------------------------------------- real bundles

@pytest.fixture(scope="module")
def real(tiny_model_dir, tmp_path_factory):
    """Real bundles of sft and lora from `harness submit` on the tiny model; sft's is
    verified (static checks, then the verifier's record)."""
    from harness.config import load_suite
    from harness.overrides import narrow
    from harness.ui import UI
    from tests.helpers import tiny_suite

    root = tmp_path_factory.mktemp("lb-real")
    mp = pytest.MonkeyPatch()
    mp.setenv("HARNESS_CACHE", str(root / "cache"))
    suite = load_suite(str(tiny_suite(root, str(tiny_model_dir), seeds=[0, 1], probes=["drift"])))
    cpu = torch.device("cpu")
    for method in ("sft", "lora"):
        B.submit(None, narrow(suite, [method], None), root / f"run-{method}", root, cpu,
                 UI(quiet=True))
    sft = root / B.SUBMISSIONS / "sft"
    assert V.static_problems(sft, suite) == []
    V.write_verification(sft, [], cpu)
    yield root, suite
    mp.undo()


def test_real_bundles_rank_and_tampering_is_named(real, tmp_path):
    root, suite = real
    result = build(root, suite=suite)
    data = result["data"]
    assert result["rejected"] == {} and result["ranked"] == ["lora", "sft"]
    assert data["methods"]["sft"]["verified"] and not data["methods"]["lora"]["verified"]
    acc = data["views"]["all"]["metrics"]["acc"]
    assert sorted(acc["order"]) == ["lora", "sft"] and acc["methods"]["lora"]["n"] == 2
    assert data["grid"]["grid_id"] == B.leaderboard_grid_id(suite)
    assert "drift_final" in data["views"]["all"]["metrics"]
    assert len(data["methods"]["lora"]["cells"]) == 2
    first = {p.name: p.read_bytes() for p in result["written"]}
    assert {p.name: p.read_bytes() for p in build(root, suite=suite)["written"]} == first

    copy = tmp_path / "copy"
    shutil.copytree(root / B.SUBMISSIONS, copy / B.SUBMISSIONS)
    cell = sorted((copy / B.SUBMISSIONS / "lora" / "cells").iterdir())[0]
    data = json.loads((cell / "result.json").read_text())
    data["R"][-1][0] = 1.0
    (cell / "result.json").write_text(json.dumps(data))
    refused = build(copy, suite=suite)
    assert refused["written"] == [] and list(refused["rejected"]) == ["lora"]
    assert any(line.startswith("lora: ") and cell.name in line and "checksum mismatch" in line
               for line in rejection_lines(refused["rejected"]))


def test_pareto_labels_move_off_each_other_with_a_leader_line():
    from harness.leaderboard.svg import pareto_svg

    def fig(points):
        return {"points": [{"method": m, "x": x, "y": y, "front": False} for m, x, y in points]}
    apart = pareto_svg(fig([("a", 0.1, 0.2), ("b", 0.9, 0.9)]), "drift", "gain")
    assert 'class="leader"' not in apart
    crowded = pareto_svg(fig([("a", 0.1, 0.5), ("b", 0.1001, 0.5), ("c", 0.9, 0.9)]),
                         "drift", "gain")
    ys = {m: float(y) for m, y in re.findall(r'data-method="(\w)">.*?<text x="[\d.]+" y="([\d.]+)"',
                                             crowded)}
    assert ys["b"] - ys["a"] >= 11  # a line apart, not on top of each other
    assert crowded.count('class="leader"') == 1  # the moved one points back to its dot
    # a label clears another point's marker just right of its own point
    beside = pareto_svg(fig([("a", 0.1, 0.5), ("b", 0.11, 0.5), ("c", 0.9, 0.9)]), "drift", "gain")
    at = {m: (float(cx), float(cy), float(y)) for m, cx, cy, y in re.findall(
        r'data-method="(\w)">.*?<circle cx="([\d.]+)" cy="([\d.]+)".*?<text x="[\d.]+" y="([\d.]+)"',
        beside)}
    assert 0 < at["b"][0] - at["a"][0] < 12  # b's marker sits where a's label would start
    assert at["a"][2] - (at["a"][1] + 3.5) >= 11 and at["b"][2] == at["b"][1] + 3.5


def test_a_label_at_the_right_edge_goes_left_of_its_point():
    from harness.leaderboard.svg import pareto_svg

    points = [{"method": "far-right-method", "x": 1.0, "y": 0.5, "front": False},
              {"method": "a", "x": 0.0, "y": 0.9, "front": False}]
    svg = pareto_svg({"points": points}, "drift", "gain")
    right = re.search(r'data-method="far-right-method">.*?<circle cx="([\d.]+)".*?<text x="([\d.]+)"'
                      r'[^>]*text-anchor="end">far-right-method</text>', svg)
    assert right and float(right.group(2)) < float(right.group(1))  # ends left of its dot
    assert re.search(r'<text x="[\d.]+" y="[\d.]+">a</text>', svg)  # others stay right


def test_an_archived_page_links_out_two_levels_further_up_and_keeps_its_own_parts():
    from harness.leaderboard import archived_text

    page = ('<a href="../docs/submitting.md">how</a> <a href="archive/v0/index.html">v0</a> '
            '<a href="submissions/sft/manifest.json">sft</a> <img src="../docs/a.png"> '
            'the archive/ folder, ../ in prose')
    assert archived_text(page) == (
        '<a href="../../../docs/submitting.md">how</a> <a href="../v0/index.html">v0</a> '
        '<a href="submissions/sft/manifest.json">sft</a> <img src="../../../docs/a.png"> '
        'the archive/ folder, ../ in prose')
    readme = "[submit](../docs/submitting.md), [note](../../x.md), [v0](archive/v0/README.md)"
    assert archived_text(readme) == ("[submit](../../../docs/submitting.md), "
                                     "[note](../../../../x.md), [v0](../v0/README.md)")
