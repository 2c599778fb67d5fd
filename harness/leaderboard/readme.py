"""leaderboard/README.md: the page's ranking as markdown tables, for readers on GitHub or in
a terminal (the page needs a browser). Same numbers as leaderboard.json, three decimals."""

from __future__ import annotations

import harness.leaderboard.explain as X
from harness.leaderboard.tuning import mark, readme_lines

ALL = "all"


def _num(x, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    align = ["---" if i < 2 or head[i] == "rank interval" else "--:" for i in range(len(head))]
    return (["| " + " | ".join(head) + " |", "| " + " | ".join(align) + " |"]
            + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows] + [""])


def _rank(view: dict, name: str) -> str:
    s = view["methods"][name]
    shared = sum(v["rank"] == s["rank"] for v in view["methods"].values()) > 1
    return f"={s['rank']}" if shared else str(s["rank"])


def _status(meta: dict) -> str:
    return f"verified {meta['verified_at']}" if meta["verified"] else "self-reported"


def ranking_table(data: dict, view_key: str, metric_key: str) -> list[str]:
    """One ranking: rank, method, the ranking metric with its CI, the other metrics, the
    comparison with the reference, cost and status."""
    view = data["views"][view_key]["metrics"]
    main = view[metric_key]
    info = {m["key"]: m for m in data["metrics"]}
    others = [m for m in data["metrics"] if m["key"] != metric_key and m["key"] in view
              and "duplicates" not in m]
    ref = data["reference"]
    generating = any(meta.get("truncation") for meta in data["methods"].values())
    head = ["rank", "method", "rank interval", f"{info[metric_key]['label']} [95% CI]"]
    head += [m["label"] for m in others]
    head += ([f"vs {ref} W-L-T", f"p vs {ref} (Holm)"] if ref else [])
    head += (["truncated"] if generating else []) + [X.cost_legend(data)[0], "status"]
    rows = []
    for name in main["order"]:
        s = main["methods"][name]
        low, high = s["ci"] or (None, None)
        lo, hi = s["rank_interval"]
        note = mark(data["methods"][name])  # untuned, identical to SFT
        row = [_rank(main, name), f"{name} ({note})" if note else name,
               f"{lo}" if lo == hi else f"{lo}-{hi}", f"{_num(s['mean'])} [{_num(low)}, {_num(high)}]"]
        row += [_num(view[m["key"]]["methods"].get(name, {}).get("mean")) for m in others]
        if ref:
            r = s["vs_reference"]
            row += ([f"{r['wins']}-{r['losses']}-{r['ties']} of {r['n']}",
                     _num(r["p_holm"]) + (" *" if r["significant"] else "")]
                    if r else ["reference", "-"])
        meta = data["methods"][name]
        row += [X.truncation_text(meta.get("truncation"))] if generating else []
        row += [X.cost_text(meta["cost"]), _status(meta)]
        rows.append(row)
    return _table(head, rows)


def ranks_by_metric(data: dict) -> list[str]:
    """Every method's rank under every metric (all streams)."""
    view = data["views"][ALL]["metrics"]
    metrics = [m for m in data["metrics"] if m["key"] in view]
    order = view[data["settings"]["default_metric"]]["order"]
    rows = [[name] + [_rank(view[m["key"]], name) if name in view[m["key"]]["methods"] else "-"
                      for m in metrics] for name in order]
    head = ["method"] + [m["label"] + ("" if m["higher_is_better"] else " (low)")
                         for m in metrics]
    return _table(head, rows)


DETECTABLE_HEAD = ["metric", "better", "sd of paired differences (median)",
                   "significant from (Holm first to last step)", "MDD (80% power)",
                   "significant pairs"]


def detectable_rows(data: dict) -> list[list[str]]:
    """Per ranking metric, what the board's own design and spread can detect (all streams:
    leaderboard.json's views.all.metrics.M.detectable), as text cells; the page shows the
    same rows."""
    rows = []
    for m in data["metrics"]:
        found = data["views"][ALL]["metrics"].get(m["key"])
        if found:
            det = found["detectable"]
            none = "no spread: exact p 2/2^n only" if det["sd_median"] == 0 else "-"
            rows.append([m["label"], "higher" if m["higher_is_better"] else "lower",
                         _num(det["sd_median"], 4),
                         none if det["first"] is None else
                         f"{_num(det['first'], 4)} to {_num(det['last'], 4)}",
                         none if det["mdd80"] is None else _num(det["mdd80"], 4),
                         f"{found['significant_pairs']} of {found['pairs']}"])
    return rows


def detectable_table(data: dict) -> list[str]:
    power = data["views"][ALL]["power"]
    return [f"For this board's design ({power['n_pairs']} (stream, seed) pairs per method, "
            f"df {power['df']}, Holm over all {power['comparisons']} pairs, alpha "
            f"{power['alpha']}) and its own spread: the sd is the median over all method pairs "
            "of the sd of their stream-centred paired differences; *significant from* is the "
            "smallest difference the test can call significant for a pair with that sd; the "
            "**MDD** is the true difference found with 80% power after the correction "
            "(`harness.power.minimum_detectable_difference`). A real difference smaller than "
            "the MDD is likely to tie.", ""] + _table(DETECTABLE_HEAD, detectable_rows(data))


def stream_power(view: dict) -> str:
    """What one stream's view can detect: it has a stream's seeds as pairs, so a method
    whose score varies widely between seeds is significantly worse than few others and
    can share a high rank with a low mean; the line says so where the ranks are read."""
    p = view["power"]
    if p["sd_ratio_first"] is None:
        return f"{p['n_pairs']} pair(s) per method: too few for a test, every method ties."
    return (f"{p['n_pairs']} (seed) pairs per method: a difference is significant only if it "
            f"exceeds {p['sd_ratio_first']:.2f} to {p['sd_ratio_last']:.2f} times the sd of "
            "its per-pair differences, so a method whose score varies widely between seeds "
            "can share a high rank with a low mean: read its CI, and the all-streams ranking.")


def render_readme(data: dict) -> str:
    grid, s = data["grid"], data["settings"]
    power = data["views"][ALL]["power"]
    default = s["default_metric"]
    label = {m["key"]: m["label"] for m in data["metrics"]}[default]
    det = data["views"][ALL]["metrics"][default]["detectable"]
    lines = [
        "# Leaderboard",
        "",
        data["summary"] or "",
        "",
        *([("Earlier boards, kept as they were: " + ", ".join(
            f"[{a['name']}]({a['href'].replace('index.html', 'README.md')})"
            for a in data["archives"]) + "."), ""] if data.get("archives") else []),
        "Generated by `harness leaderboard` from the bundles in `submissions/` (do not edit: "
        "regenerate). `index.html` is the interactive page (open it from disk), "
        "`leaderboard.json` the data; docs/leaderboard.md explains every number.",
        "",
        f"- **Grid** `{grid['grid_id']}`: {', '.join(grid['models'])}"
        + (f" ({X.precision_text(grid)})" if X.precision_text(grid) else "") + "; "
        f"{len(grid['streams'])} stream(s) ({', '.join(grid['streams'])}) x "
        f"{len(grid['seeds'])} seed(s) ({', '.join(map(str, grid['seeds']))}) = "
        f"**{power['n_pairs']} (stream, seed) pairs per method**, "
        f"{len(data['methods'])} methods."
        + (f" **Not ranked yet** (listed by the leaderboard suite, no bundle yet): "
           f"{', '.join(data['pending'])}." if data.get("pending") else ""),
        f"- **Aggregate**: {s['aggregate']}; 95% t interval (residuals around each stream's "
        f"mean, {power['df']} degrees of freedom; a bootstrap over 3 seeds covered only "
        "about 80%, this interval 95%: docs/leaderboard.md).",
        f"- **Rank** = 1 + the number of methods significantly better, directly or through "
        f"a chain of significant differences (paired t-test over the {power['n_pairs']} "
        f"pairs, **Holm over all {power['comparisons']} pairs of methods** of a ranking, "
        f"alpha {s['alpha']}); `=` marks a shared rank. **Rank interval**: from the rank to "
        "the number of methods minus those the method is significantly better than; all "
        "intervals hold together with probability >= 95%. Differences with no spread get "
        "the exact sign-flip p, 2/2^n.",
        f"- **Significant pairs** ({label}): {data['significant_pairs']} of "
        f"{power['comparisons']}.",
        f"- **Why a t-test**: a sign-flip permutation test's smallest p with "
        f"{power['n_pairs']} pairs is {power['permutation_floor_p']:.3f}, at least "
        f"{power['permutation_floor_holm']:.3f} after Holm: it could never find a difference.",
    ]
    if power["sd_ratio_first"] is not None:
        lines.append(
            f"- **Detectable**: a difference must exceed {power['sd_ratio_first']:.2f} "
            f"(first Holm step) to {power['sd_ratio_last']:.2f} (last step) times the sd of "
            "its per-pair differences"
            + (f"; for {label} (median sd {det['sd_median']:.4f}) about {det['first']:.3f} "
               f"to {det['last']:.3f} for a pair with that sd, and {det['mdd80']:.3f} is found "
               "with 80% power at the first step (every metric: *What this board can "
               "detect* below)." if det["sd_median"] else "."))
    lines += ["- **What changed in the statistics** (issue 28): the CIs were a stratified "
              "percentile bootstrap over seeds, now t intervals; Holm ran within each "
              "method's comparisons, now over all pairs of a ranking together; new: rank "
              "intervals, `significant_pairs` in leaderboard.json, the forgotten-items "
              "column. Fewer differences are declared and CIs are wider; docs/leaderboard.md "
              "gives the counts before and after.",
              "- **Status**: *verified* = `harness verify` accepted the bundle as it is now "
              "(a cell re-run); *self-reported* = static checks only.", ""]
    lines += [f"## Ranking by {label} (all streams)", ""] + ranking_table(data, ALL, default)
    flags = X.flagged(data)
    if flags:
        lines += ["**Flagged: truncated generations.**", ""] + [f"- {f}" for f in flags] + [""]
    if X.notes(data):
        lines += ["**Notes on methods (evidence).**", ""] + [f"- {n}" for n in X.notes(data)] + [""]
    words, pairs = X.significant(data)
    if words:
        lines += [f"## Significant differences ({label}, all streams)", "", words, ""]
        lines += [f"- **{m}** above {worse}" for m, worse in pairs] + [""]
    lines += ["## What the columns mean", ""]
    lines += [f"- **{term}**: {text}" for term, text in X.legend(data)] + [""]
    lines += ["## What this board can detect (all streams)", ""] + detectable_table(data)
    for stream in grid["streams"]:
        if default in data["views"][stream]["metrics"]:
            lines += [f"## Stream {stream}", "", stream_power(data["views"][stream]), ""]
            lines += ranking_table(data, stream, default)
    lines += ["## Rank under every metric (all streams)", ""] + ranks_by_metric(data)
    lines += readme_lines(data)
    figure = data["pareto"].get(ALL)
    if figure:
        lines += ["## Pareto front: task gain against drift (all streams)", "",
                  "Methods no other method beats on both task gain (higher) and final drift "
                  "(lower):", ""]
        lines += [f"- {p['method']}: task gain {p['y']:.3f}, drift {p['x']:.4f}"
                  for p in sorted(figure["points"], key=lambda p: (p["x"], -p["y"]))
                  if p["front"]] + [""]
    lines += ["## Streams and tasks", "", "A stream is a sequence of tasks the model is "
              "fine-tuned on one after another; after each task it is tested on every task.",
              ""] + [f"- {line}" for line in X.streams(data)] + ["", "The tasks:", ""]
    lines += [f"- {line}" for line in X.tasks(data)] + ["", "## Submit a method", ""]
    lines += [f"- `{cmd}`: {text}" for cmd, text in X.SUBMIT]
    lines += ["", f"Then open a pull request that adds the bundle folder; the whole procedure: "
              f"[docs/submitting.md]({X.SUBMITTING}).", ""]
    if data["rejected"]:
        lines += ["## Excluded bundles", ""]
        lines += [f"- `{name}`: {problem}" for name, problems in data["rejected"].items()
                  for problem in problems] + [""]
    return "\n".join(lines)
