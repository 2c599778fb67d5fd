"""The leaderboard on v2-shaped cells (issue 32): content primary with the strict scoring in
by_metric, own-and-final nulls, CPU timings, generating methods' truncated shares; and the
per-cell readers (truncated share, cold-cache cost, learned items, format score) against
hand calculations."""

import json

import pytest

from harness import bundle as B
from harness import scores
from harness import verify as V
from harness.leaderboard import build
from harness.leaderboard.board import duplicates
from harness.leaderboard.cellfacts import method_cost, method_truncation, truncation
from harness.results import cold_cpu_s
from harness.results import scoring
from tests.test_leaderboard import SYNTH, checksum_only, make_board, write_bundle

N_ITEMS = 20
FORMAT_MISSES = 5  # items right in content but not in the task's format, per task and row


def _items(v: float, misses: int = 0) -> list[float]:
    k = round(N_ITEMS * v)
    return [0.0] * min(misses, k) + [1.0] * max(0, k - misses) + [0.0] * (N_ITEMS - k)


def to_v2(result: dict, stats: dict | None = None, cache_cpu_s: float | None = 20.0,
          misses: int = FORMAT_MISSES) -> dict:
    """A v1-shaped synthetic result.json made v2-shaped: its R as per-item content scores,
    rows evaluated own-and-final (a task only after its own training and at the end), the
    strict scoring `misses` items lower, content primary, CPU timings."""
    tasks, R = result["tasks"], result["R"]
    T = len(tasks)
    rows = []
    for i in range(T + 1):
        shown = {t for j, t in enumerate(tasks) if i in (0, j + 1, T)}
        content = {t: _items(R[i][j]) if t in shown else None for j, t in enumerate(tasks)}
        strict = {t: _items(R[i][j], misses) if t in shown else None
                  for j, t in enumerate(tasks)}
        rows.append({"content": content, "items": strict,
                     "scores": {t: None if s is None else sum(s) / N_ITEMS
                                for t, s in strict.items()}})
    by_metric = {m: scoring(rows, tasks, key, result["probes"])
                 for m, key in (("strict", "items"), ("content", "content"))}
    main = by_metric["content"]
    result.update(primary="content", by_metric=by_metric, R=main["R"], items=main["items"],
                  metrics=main["metrics"], method_stats=stats or {})
    result["timings"] = dict(result["timings"], cpu_s=1800.0)
    if cache_cpu_s is not None:
        result["timings"]["cache_cpu_s"] = cache_cpu_s
    return result


SDFT_STATS = {"t1": {"rollouts": 10, "truncated_share": 0.8},
              "t2": {"rollouts": 10, "truncated_share": 0.8}}


def make_v2_board(root) -> None:
    """make_board's six methods plus `sdft` (truncated share 0.8 at max_new_tokens 64), all
    cells v2-shaped; `best`'s cells lack cache_cpu_s (its cost is a lower bound)."""
    accs = make_board(root)
    write_bundle(root, "sdft", {p: v - 0.05 for p, v in accs["sft"].items()})
    for bundle in sorted((root / "leaderboard" / "submissions").iterdir()):
        for path in sorted((bundle / "cells").glob("*/result.json")):
            result = json.loads(path.read_text())
            if bundle.name == "sdft":
                result["method_params"] = {"max_new_tokens": 64}
            path.write_text(json.dumps(to_v2(
                result, SDFT_STATS if bundle.name == "sdft" else None,
                None if bundle.name == "best" else 20.0,
                FORMAT_MISSES - 2 if bundle.name == "sdft" else FORMAT_MISSES)))
        (bundle / B.CHECKSUMS).write_text(B.format_checksums(B.file_checksums(bundle)))


@pytest.fixture
def v2(tmp_path, monkeypatch):
    monkeypatch.setattr(V, "static_problems", checksum_only)
    make_v2_board(tmp_path)
    build(tmp_path, suite=SYNTH)
    out = tmp_path / "leaderboard"
    return (json.loads((out / "leaderboard.json").read_text()), (out / "README.md").read_text(),
            (out / "index.html").read_text())


def test_truncated_share_reads_the_convention_and_both_older_forms():
    sdft = {"method_stats": {"a": {"truncated_share": 0.5, "rollouts": 30},
                             "b": {"truncated_share": 0.1, "rollouts": 10}},
            "method_params": {"max_new_tokens": 64}}
    assert truncation(sdft) == {"share": pytest.approx((15 + 1) / 40), "generations": 40,
                                "budget": "max_new_tokens 64"}
    rewrite = {"method_stats": {"a": {"rewrite_truncated": 0.25}, "b": {"rewrite_truncated": 0.0}}}
    assert truncation(rewrite, {"max_new_tokens": 512})["share"] == pytest.approx(0.125)
    # sa-sft's counts (a committed cell's): 206 user turns sampled, 196 answered
    sa = {"method_stats": {"cell": {"self_candidates": 206, "dropped user unfinished": 8,
                                    "dropped user duplicate": 2,
                                    "dropped answer unfinished": 130},
                           "arith": {"self_examples": 34}}}
    found = truncation(sa, {"user_tokens": 64, "answer_tokens": 256, "turns": 1})
    assert found["share"] == pytest.approx(138 / 402) and found["generations"] == 402
    assert found["budget"] == "user_tokens 64, answer_tokens 256"
    assert truncation(sa, {"turns": 2}) is None  # later turns' counts are not recorded
    assert truncation({"method_stats": {"a": {"fisher": "empirical"}}}) is None
    per_method = method_truncation([sdft, sdft | {"method_stats": {"a": {"truncated_share": 0.05}}}])
    assert per_method["share"] == pytest.approx((0.4 + 0.05) / 2) and per_method["flagged"]
    assert per_method["max"] == pytest.approx(0.4)


def test_cold_cpu_cost_sums_cache_and_says_when_it_is_a_lower_bound():
    full = {"timings": {"cpu_s": 3000.0, "cache_cpu_s": 600.0}}
    partial = {"timings": {"cpu_s": 3600.0, "cache_cpu_s": None}}
    old = {"timings": {"total_s": 100.0}}
    assert cold_cpu_s(full) == (3600.0, True)
    assert cold_cpu_s(partial) == (3600.0, False) and cold_cpu_s(old) == (None, False)
    assert method_cost([full, full], 9.0) == {"basis": "cpu_hours", "hours": 2.0,
                                              "lower_bound": False}
    assert method_cost([full, partial], 9.0)["lower_bound"]
    assert method_cost([full, old], 9.0) == {"basis": "device_hours", "hours": 9.0,
                                             "lower_bound": False}


def test_learned_items_and_format_score_by_hand():
    items = {"t1": [[0, 0, 1, 1], [1, 1, 1, 1], [1, 0, 1, 0]],
             "t2": [[0, 0, 0, 0], None, [1, 1, 0, 0]]}
    assert scores.learned_from_base(items, ["t1", "t2"]) == 1 + 2
    assert scores.learned_from_base({"t1": [None, [1]]}, ["t1"]) is None
    cell = {"primary": "content", "R": [[0.9]], "metrics": {"acc": 0.9},
            "by_metric": {"strict": {"R": [[0.5], [0.25]], "metrics": {"acc": 0.25}}}}
    assert scores.cell_value(cell, "format_acc") == (0.25, False)
    assert scores.cell_value(cell | {"primary": "strict"}, "format_acc") == (None, False)
    assert scores.higher_is_better("learned_from_base") and scores.higher_is_better("format_acc")


def test_a_column_equal_to_another_or_its_negation_in_every_cell_is_a_duplicate():
    a = {"m": {("x", "s", 0): 0.5, ("x", "s", 1): 0.25}, "n": {("x", "s", 0): 0.1}}
    table = {"acc": a, "gain": a, "bwt": {"m": {("x", "s", 0): -0.2, ("x", "s", 1): 0.0},
                                          "n": {("x", "s", 0): 0.3}},
             "forgetting": {"m": {("x", "s", 0): 0.2, ("x", "s", 1): 0.0},
                            "n": {("x", "s", 0): -0.3}},
             "other": {"m": {("x", "s", 0): 0.5, ("x", "s", 1): 0.3}, "n": {("x", "s", 0): 0.1}}}
    catalogue = [{"key": k} for k in table]
    assert duplicates(table, catalogue) == {"gain": {"of": "acc", "sign": 1, "shifted": False},
                                            "forgetting": {"of": "bwt", "sign": -1,
                                                           "shifted": False}}


def test_a_column_off_another_by_one_amount_per_pair_for_every_method_is_a_duplicate():
    """Task gain is ACC less the base model's score, a probe's change its final value less
    the base model's: one amount for every method in a pair, so the methods' differences,
    ranks and tests are the other column's. Not a duplicate: a column whose gap differs
    between methods, two metrics unrelated by definition, a pair holding one method."""
    base = {("x", "s", 0): 0.02, ("x", "s", 1): 0.05}
    acc = {"m": {("x", "s", 0): 0.5, ("x", "s", 1): 0.25},
           "n": {("x", "s", 0): 0.1, ("x", "s", 1): 0.4}}
    less_base = {m: {p: v - base[p] for p, v in by.items()} for m, by in acc.items()}
    near = {m: {p: v - base[p] + (0.001 if m == "n" else 0.0) for p, v in by.items()}
            for m, by in acc.items()}
    table = {"acc": acc, "task_gain": less_base, "knowledge_final": acc,
             "knowledge_delta": less_base, "drift_final": acc, "agreement_delta": less_base,
             "other": less_base, "style_final": acc, "style_delta": near}
    found = duplicates(table, [{"key": k} for k in table])
    assert found == {"task_gain": {"of": "acc", "sign": 1, "shifted": True},
                     "knowledge_final": {"of": "acc", "sign": 1, "shifted": False},
                     "knowledge_delta": {"of": "acc", "sign": 1, "shifted": True},
                     "drift_final": {"of": "acc", "sign": 1, "shifted": False},
                     "agreement_delta": {"of": "task_gain", "sign": 1, "shifted": False},
                     "other": {"of": "task_gain", "sign": 1, "shifted": False},
                     "style_final": {"of": "acc", "sign": 1, "shifted": False}}
    table = {"knowledge_final": acc, "knowledge_delta": less_base, "other": near}
    assert duplicates(table, [{"key": k} for k in table]) == {
        "knowledge_delta": {"of": "knowledge_final", "sign": 1, "shifted": True}}
    alone = {"acc": {"m": acc["m"]}, "task_gain": {"m": less_base["m"]}}  # fits any shift
    assert duplicates(alone, [{"key": "acc"}, {"key": "task_gain"}]) == {}


def test_v2_board_shows_format_learned_items_truncation_flag_cost_and_first_sentence(v2):
    data, readme, page = v2
    assert data["primary"] == "content"
    labels = {m["key"]: m["label"] for m in data["metrics"]}
    assert labels["acc"] == "ACC (content)" and labels["format_acc"] == "format"
    acc = data["views"]["all"]["metrics"]["acc"]["methods"]
    fmt = data["views"]["all"]["metrics"]["format_acc"]["methods"]
    for name in acc:  # FORMAT_MISSES of N_ITEMS items fewer on every task, where scored
        assert fmt[name]["mean"] < acc[name]["mean"]
    assert "learned_from_base" in data["views"]["all"]["metrics"]
    # own-and-final nulls: R has them, the ranking still has every pair
    cell = next(iter(data["methods"]["sft"]["cells"].values()))
    assert cell["R"][1][1] is None and acc["sft"]["n"] == 6
    sdft = data["methods"]["sdft"]["truncation"]
    assert sdft["share"] == pytest.approx(0.8) and sdft["flagged"]
    assert sdft["budget"] == "max_new_tokens 64"
    assert data["methods"]["sft"]["truncation"] is None
    assert data["methods"]["sft"]["cost"] == {"basis": "cpu_hours", "lower_bound": False,
                                              "hours": pytest.approx(6 * 1820 / 3600, abs=1e-6)}
    assert data["methods"]["best"]["cost"]["lower_bound"]
    # the first sentence: counted from the ranking, methods above and below sft named
    ranking = data["views"]["all"]["metrics"]["acc"]
    vs = {m: s["vs_reference"] for m, s in ranking["methods"].items() if s["vs_reference"]}
    above = [m for m in ranking["order"] if vs.get(m, {}).get("significant")
             and vs[m]["direction"] == "better"]
    below = [m for m in ranking["order"] if vs.get(m, {}).get("significant")
             and vs[m]["direction"] == "worse"]
    assert data["summary"].startswith(
        f"On ACC (content), {data['significant_pairs']} of 21 method pairs differ "
        f"significantly (Holm, alpha 0.05): ")
    assert all(m in data["summary"] for m in above + below)
    assert f"the other {6 - len(above) - len(below)} methods are not distinguishable from " \
        "sft." in data["summary"] or not (above or below)
    assert readme.split("\n")[2] == data["summary"]
    assert f'<p class="lead" id="lead">{data["summary"]}</p>' in page
    # README: format column, truncated column, CPU-h with a lower bound, the evidence
    head = next(line for line in readme.splitlines() if line.startswith("| rank |"))
    assert "| format |" in head and "| truncated | CPU-h |" in head
    assert "| >=" in readme and "80% (flagged)" in readme
    assert "- sdft: 80% of its generations hit the token budget unfinished (mean over 6 cells" \
        in readme and "budget: max_new_tokens 64" in readme
    assert "## Streams and tasks" in readme and "harness submit" in readme
    assert 'id="flagged"' in page and 'href="../docs/submitting.md"' in page


def test_v1_cells_have_no_format_column_and_fall_back_to_device_hours(tmp_path, monkeypatch):
    monkeypatch.setattr(V, "static_problems", checksum_only)
    make_board(tmp_path)
    data = build(tmp_path, suite=SYNTH)["data"]
    assert data["primary"] == "strict"
    assert "format_acc" not in {m["key"] for m in data["metrics"]}
    assert data["metrics"][0]["label"] == "ACC"
    assert {m["cost"]["basis"] for m in data["methods"].values()} == {"device_hours"}
    readme = (tmp_path / "leaderboard" / "README.md").read_text()
    assert "| device-h | status |" in readme and "| truncated |" not in readme


def test_first_sentence_names_methods_above_and_below_the_reference():
    from harness.leaderboard.explain import summary

    def row(significant, direction):
        return {"vs_reference": {"significant": significant, "direction": direction}}
    ranking = {"significant_pairs": 4, "pairs": 10, "order": ["a", "b", "sft", "c", "d"],
               "methods": {"a": row(True, "better"), "b": row(True, "better"),
                           "sft": {"vs_reference": None}, "c": row(False, "worse"),
                           "d": row(True, "worse")}}
    assert summary(ranking, "sft", "ACC (content)", 0.05) == (
        "On ACC (content), 4 of 10 method pairs differ significantly (Holm, alpha 0.05): a and "
        "b score above sft; d below; the other method is not distinguishable from sft.")


def test_significant_pairs_are_listed_once_each_by_the_better_method():
    """ranking.decisions: the family's significant pairs, each with the better method, the
    mean difference and its Holm p; as many as the board counts; lower-is-better flips."""
    import harness.leaderboard.ranking as K

    pairs = [("s", i, seed) for i in range(2) for seed in range(6)]
    noise = [0.01, -0.02, 0.015, 0.0, -0.01, 0.02]
    values = {m: {p: base + noise[p[2]] * (k + 1) + 0.001 * p[1] for p in pairs}
              for k, (m, base) in enumerate([("a", 0.9), ("b", 0.5), ("c", 0.49)])}
    ranked, family = K.ranks(values, True)
    found = K.decisions(family, True)
    # b and c are 0.01 apart under noise of 0.01-0.02: not significant; the largest first
    assert [(d["better"], d["worse"]) for d in found] == [("a", "c"), ("a", "b")]
    assert len(found) == family.significant_pairs
    ab = next(d for d in found if d["worse"] == "b")
    assert ab["difference"] == pytest.approx(0.4, abs=0.02) and ab["p_holm"] < 0.05
    low = K.decisions(K.ranks(values, False)[1], False)
    assert {(d["worse"], d["better"]) for d in low} == {(d["better"], d["worse"]) for d in found}
    assert all(d["difference"] < 0 for d in low)
