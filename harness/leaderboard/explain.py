"""The words the page and README.md share, made from the board's numbers: the first sentence
(which differences are significant), the column legend (read without hovering: a phone
cannot hover), the streams and their tasks, and how to submit. Plain text with `code` in
backticks; the page and README.md only mark it up.
"""

from __future__ import annotations

from harness.leaderboard.cellfacts import FLAG_SHARE

SUBMIT = [("harness submit path/to/my_method.py:MyMethod",
           "runs the leaderboard grid for the method (resumable) and writes its bundle to "
           "`leaderboard/submissions/NAME/`"),
          ("harness verify leaderboard/submissions/NAME",
           "checks the bundle (checksums, source, grid, metrics) and re-runs a sampled cell "
           "exactly; a maintainer's accepted run marks it verified"),
          ("harness leaderboard", "rebuilds this page, README.md and leaderboard.json")]
SUBMITTING = "../docs/submitting.md"


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def summary(ranking: dict | None, reference: str, label: str, alpha: float) -> str | None:
    """The board's first sentence: how many pairs differ on the ranking metric, and which
    methods score significantly above and below the reference (Holm over all pairs)."""
    if not ranking:
        return None
    head = (f"On {label}, {ranking['significant_pairs']} of {ranking['pairs']} method pairs "
            f"differ significantly (Holm, alpha {alpha})")
    versus = {m: s["vs_reference"] for m, s in ranking["methods"].items() if s["vs_reference"]}
    if not versus:
        return head + "."
    order = ranking["order"]
    above = [m for m in order if versus.get(m, {}).get("significant")
             and versus[m]["direction"] == "better"]
    below = [m for m in order if versus.get(m, {}).get("significant")
             and versus[m]["direction"] == "worse"]
    rest = [m for m in order if m in versus and m not in above + below]
    parts = [f"{_names(above)} score{'s' if len(above) == 1 else ''} above {reference}"
             if above else f"no method scores above {reference}",
             f"{_names(below)} below" if below else "none below"]
    if rest:
        others = f"the other {len(rest)} methods are" if len(rest) > 1 else "the other method is"
        parts.append(f"{others} not distinguishable from {reference}" if above or below else
                     f"no method is distinguishable from {reference}")
    return f"{head}: {'; '.join(parts)}."


def _direction(metric: dict) -> str:
    return "higher is better" if metric["higher_is_better"] else "lower is better"


def legend(data: dict) -> list[tuple[str, str]]:
    """(column, what it means) for every column the table can show, in table order."""
    ref = data["reference"] or "the reference"
    metrics = {m["key"]: m for m in data["metrics"]}
    main = metrics[data["settings"]["default_metric"]]
    rows = [("rank", "1 + the number of methods significantly better on the ranking metric "
                     "(directly or through a chain of significant differences); `=` marks a "
                     "shared rank."),
            ("method", "the bundle's name. Badges: *verified* (a maintainer's `harness verify` "
                       "re-ran a cell of the bundle as it is now) or *self-reported* (static "
                       "checks only); *untuned*; *identical to SFT*; *truncated* (below)."),
            (f"{main['label']} [95% CI]", f"the ranking metric ({_direction(main)}): "
             f"{main['description']}; mean over streams of the mean over seeds, with its 95% t "
             "interval."),
            ("rank interval", "the ranks the method plausibly has: all intervals of a ranking "
                              "hold together with probability at least 95%.")]
    for m in data["metrics"]:
        if m is main:
            continue
        said = "is better" in m["description"]  # a probe's description states it
        text = m["description"] + ("." if said else f" ({_direction(m)}).")
        if "duplicates" in m:
            same = m["duplicates"]
            of = ("" if same["sign"] == 1 else "minus ") + metrics[same["of"]]["label"]
            text += (f" Hidden by default: on this board it equals {of} plus an amount that is "
                     "the same for every method in each (stream, seed) pair (such as the base "
                     "model's score there), so it orders and tests the methods exactly as that column "
                     "does." if same.get("shifted") else
                     f" Hidden by default: on this board it equals {of} in every cell, so it "
                     "says nothing new.")
        rows.append((m["label"], text))
    if data["reference"]:
        rows += [(f"vs {ref} W-L-T", f"(stream, seed) pairs where the method beats, loses to "
                                     f"and ties {ref} on the ranking metric."),
                 (f"p vs {ref} (Holm)", "paired t-test over the pairs, Holm-adjusted over all "
                                        "pairs of methods; `*`: below alpha.")]
    if any(meta.get("truncation") for meta in data["methods"].values()):
        rows.append(("truncated", "generating methods only: the share of their generations "
                     "(rollouts, rewrites, self-written turns) that hit the token budget "
                     "unfinished, mean over cells; above "
                     f"{FLAG_SHARE:.0%} it is flagged, with the budget, because then much "
                     "of what the method trains on was cut off or dropped."))
    rows.append(cost_legend(data))
    return rows


def cost_legend(data: dict) -> tuple[str, str]:
    costs = [meta["cost"] for meta in data["methods"].values()]
    if all(c["basis"] == "cpu_hours" for c in costs):
        text = ("CPU-hours of all the method's cells with a cold cache: CPU time of the cells "
                "plus that of the cache entries they reused (base-model rows, generated "
                "data).")
        if any(c["lower_bound"] for c in costs):
            text += (" `>=` marks a lower bound: some cells did not record the CPU time of the "
                     "cache entries they reused (`timings.cache_cpu_s`), so only their own "
                     "CPU time is counted.")
        return "CPU-h", text
    return "device-h", ("wall-clock hours of the method's cells on the device they ran on: "
                        "these cells recorded no CPU time (`timings.cpu_s`), so not CPU-hours; "
                        "cache entries reused from other cells are not counted.")


def cost_text(cost: dict, digits: int = 2) -> str:
    if cost["hours"] is None:
        return "-"
    return (">=" if cost["lower_bound"] else "") + f"{cost['hours']:.{digits}f}"


def truncation_text(t: dict | None) -> str:
    """"83% (flagged)" or "-" for a method that does not generate."""
    if not t:
        return "-"
    return f"{t['share']:.0%}" + (" (flagged)" if t["flagged"] else "")


def flagged(data: dict) -> list[str]:
    """One line of evidence per flagged method."""
    out = []
    for name, meta in sorted(data["methods"].items()):
        t = meta.get("truncation")
        if t and t["flagged"]:
            out.append(f"{name}: {t['share']:.0%} of its generations hit the token budget "
                       f"unfinished (mean over {t['cells']} cells, highest cell "
                       f"{t['max']:.0%}; budget: {t['budget'] or 'not recorded'}), above "
                       f"{FLAG_SHARE:.0%}.")
    return out


def significant(data: dict) -> tuple[str, list[tuple[str, str]]]:
    """Every significant pair on the ranking metric (all streams), as (the words above the
    list, [(method, the methods it scores significantly above, each with the mean
    difference)]), the better methods in rank order; ("", []) for a board without them."""
    key = data["settings"]["default_metric"]
    ranking = data["views"].get("all", {}).get("metrics", {}).get(key) or {}
    found = ranking.get("significant")
    if found is None:
        return "", []
    label = next(m["label"] for m in data["metrics"] if m["key"] == key)
    by: dict[str, list[str]] = {}
    for d in found:
        by.setdefault(d["better"], []).append(f"{d['worse']} ({d['difference']:+.3f})")
    words = (f"{len(found)} of {ranking['pairs']} pairs of methods differ significantly on "
             f"{label} (paired t over the (stream, seed) pairs, Holm over all "
             f"{ranking['pairs']} pairs, alpha {data['settings']['alpha']}). Each "
             "method is followed by those it scores significantly above, with the mean "
             "difference; a pair not listed is not distinguishable on this grid (*What "
             "this board can detect*).")
    return words, [(m, ", ".join(by[m])) for m in ranking["order"] if m in by]


def notes(data: dict) -> list[str]:
    """The maintainers' note on a method (leaderboard/notes.yaml), one line each."""
    return [f"{name}: {meta['note']}" for name, meta in sorted(data["methods"].items())
            if meta.get("note")]


def streams(data: dict) -> list[str]:
    """One line per stream: its tasks in training order."""
    grid = data["grid"]
    return [f"{s}: " + ", then ".join(f"`{t}`" for t in grid["tasks"].get(s, []))
            for s in grid["streams"]]


def tasks(data: dict) -> list[str]:
    """One line per task: its description from the task registry."""
    found = data["grid"].get("task_descriptions") or {}
    return [f"`{t}`: {d or 'no description (the task is not installed where this page was built)'}"
            for t, d in found.items()]


PRECISION_TEXT = {"auto": "float32 on a CPU, bf16 autocast on CUDA", "fp32": "float32",
                  "bf16": "bf16 autocast, float32 weights", "bf16-weights": "bf16 weights"}


def precision_text(grid: dict) -> str:
    """How the grid's cells computed (harness/precision.py), as a reader wants it; "" for
    bundles from before the manifest said (v1's)."""
    found = grid.get("precision")
    return "" if found is None else PRECISION_TEXT.get(found, str(found))
