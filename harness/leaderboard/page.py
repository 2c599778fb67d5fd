"""index.html: one self-contained page (CSS, JS, data and SVG figures inline; no request of
any kind, so it opens from disk, offline, and cannot leak who reads it). The ranking table
is drawn by the inline script from the embedded leaderboard data; the header note, the
Pareto figures and every method's drill-down are rendered here, so they are in the file
as text.
"""

from __future__ import annotations

import json
import re
from html import escape

import harness.leaderboard.explain as X
from harness.leaderboard.assets import CSS, JS
from harness.leaderboard.readme import DETECTABLE_HEAD, detectable_rows
from harness.leaderboard.svg import pareto_svg, sparkline
from harness.leaderboard.tuning import drill_text, tuning_section

TITLE = "Continual-learning leaderboard for LM fine-tuning"
# shown unless they repeat another column, with every probe's final value ("*_final": what
# the model still knows and does, whatever the suite's probes are)
DEFAULT_SHOWN = ("acc", "format_acc", "task_gain", "bwt", "forgetting", "forgotten_items",
                 "learned_from_base")


def _json_for_script(obj) -> str:
    """JSON safe inside <script>: '<' (never outside a string in JSON) escaped."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return text.replace("<", "\\u003c")


def _num(x, digits: int = 3) -> str:
    return "\u2013" if x is None else f"{x:.{digits}f}"


def _inline(text: str) -> str:
    """explain's plain text as HTML: escaped, `code` and *emphasis* marked up."""
    html = re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(text, quote=False))
    return re.sub(r"\*([^*]+)\*", r"<em>\1</em>", html)


def legend_section(data: dict) -> str:
    """What every column means, as text under the table (a phone cannot hover), then the
    flagged methods' evidence."""
    items = "".join(f"<dt>{escape(term)}</dt><dd>{_inline(text)}</dd>"
                    for term, text in X.legend(data))
    flags = "".join(f"<li>{_inline(line)}</li>" for line in X.flagged(data))
    notes = "".join(f"<li>{_inline(line)}</li>" for line in X.notes(data))
    return (f'<section id="legend"><h2>What the columns mean</h2><dl class="legend">{items}</dl>'
            + (f'<div id="flagged" class="flagged"><strong>Flagged: truncated generations'
               f"</strong><ul>{flags}</ul></div>" if flags else "")
            + (f'<div id="notes" class="flagged"><strong>Notes on methods (evidence)'
               f"</strong><ul>{notes}</ul></div>" if notes else "") + "</section>")


def significant_section(data: dict) -> str:
    """Every significant pair on the ranking metric, by the better method (explain.significant)."""
    words, pairs = X.significant(data)
    if not words:
        return ""
    items = "".join(f"<dt>{escape(m)}</dt><dd>above {escape(worse)}</dd>" for m, worse in pairs)
    return (f'<section id="significant"><h2>Significant differences</h2>'
            f'<p class="legend-text">{_inline(words)}</p><dl class="legend">{items}</dl></section>')


def streams_section(data: dict) -> str:
    """The streams (their tasks in training order) and what each task is."""
    streams = "".join(f"<li>{_inline(line)}</li>" for line in X.streams(data))
    tasks = "".join(f"<li>{_inline(line)}</li>" for line in X.tasks(data))
    return ('<section id="streams"><h2>Streams and tasks</h2><p>A <em>stream</em> is a '
            "sequence of tasks the model is fine-tuned on one after another; after each task "
            "it is tested on every task, which gives the score matrix R behind ACC, BWT and "
            "the item counts. Each (stream, seed) pair is one cell per method.</p>"
            f"<ul>{streams}</ul><p>The tasks:</p><ul>{tasks}</ul></section>")


def submit_section() -> str:
    rows = "".join(f"<dt><code>{escape(cmd)}</code></dt><dd>{_inline(text)}</dd>"
                   for cmd, text in X.SUBMIT)
    return ('<section id="submit"><h2>Submit a method</h2><dl class="legend">'
            f'{rows}</dl><p>Then open a pull request that adds the bundle folder. The whole '
            f'procedure: <a href="{X.SUBMITTING}">docs/submitting.md</a>.</p></section>')


def _settings(obj) -> str:
    return escape(json.dumps(obj, sort_keys=True, separators=(", ", ": ")))


def grid_line(data: dict) -> str:
    grid, power = data["grid"], data["views"]["all"]["power"]
    return (f"{len(data['methods'])} methods on grid <code>{escape(str(grid['grid_id']))}</code> "
            f"(suite {escape(str(grid['name']))}): {escape(', '.join(grid['models']))}"
            + (f" ({escape(X.precision_text(grid))})" if X.precision_text(grid) else "") + "; "
            f"{len(grid['streams'])} streams &times; {len(grid['seeds'])} seeds = "
            f"{power['n_pairs']} (stream, seed) pairs per method.")


def archive_note(data: dict) -> str:
    """Links to earlier boards kept under leaderboard/archive/ (relative: nothing remote)."""
    links = [f'<a href="{escape(a["href"])}">{escape(a["name"])}</a>'
             for a in data.get("archives") or []]
    return (f'<p class="sub" id="archives">Earlier boards, kept as they were: '
            f'{", ".join(links)}.</p>' if links else "")


def header_note(data: dict) -> str:
    """Seeds, pairs, the test, the floor and how to read CIs and badges, stated plainly."""
    grid, power = data["grid"], data["views"]["all"]["power"]
    n_methods, streams, seeds = len(data["methods"]), grid["streams"], grid["seeds"]
    s = data["settings"]
    lines = [
        f"<strong>{n_methods} methods</strong> on one fixed grid: model "
        f"{escape(', '.join(grid['models']))}; {len(streams)} stream(s) "
        f"({escape(', '.join(streams))}) &times; {len(seeds)} seed(s) "
        f"({', '.join(map(str, seeds))}) = <strong>{power['n_pairs']} (stream, seed) pairs "
        f"per method</strong>; every method runs the same pairs, so methods are compared "
        "pair by pair.",
        f"<strong>Aggregate</strong>: {escape(s['aggregate'])}, with a 95% t interval "
        f"(residuals around each stream's mean, {power['df']} degrees of freedom). A "
        "bootstrap over 3 seeds covered about 80% in simulation; this interval covers 95% "
        "(docs/leaderboard.md quotes <code>harness stats-check</code>).",
        f"<strong>Rank</strong> = 1 + the number of methods significantly better (directly "
        f"or through a chain of significant differences): a paired t-test over the "
        f"{power['n_pairs']} pairs, Holm-corrected over all {power['comparisons']} pairs of "
        f"methods of the ranking together, &alpha; = {s['alpha']}. A shared rank (shown =) "
        "means as many methods are significantly better; the bracket after a rank is its "
        "<strong>rank interval</strong> (all plausible ranks; every interval of a ranking "
        "holds at once with probability at least 95%). Differences with no spread "
        "(the same on every pair) get the exact sign-flip p, 2/2<sup>n</sup>. "
        f"Significant pairs on the default metric: {data['significant_pairs']} of "
        f"{power['comparisons']}.",
        f"<strong>Why a t-test</strong>: a sign-flip permutation test's smallest two-sided p "
        f"with {power['n_pairs']} pairs is 2/2<sup>{power['n_pairs']}</sup> = "
        f"{power['permutation_floor_p']:.3f}; after Holm over {power['comparisons']} "
        f"comparisons it is at least {power['permutation_floor_holm']:.3f}, so nothing "
        "could ever be significant. The t-test assumes roughly normal per-pair differences "
        "and can then detect a consistent difference; more seeds would let a permutation "
        "test replace it.",
        "<strong>Verified</strong>: a maintainer ran <code>harness verify</code> on the "
        "bundle as it is now (checksums, metrics recomputed, a cell re-run). "
        "<strong>Self-reported</strong>: the bundle passed the static checks (checksums, "
        "grid, method source, metrics recomputed from its scores) but no re-run vouches for it.",
    ]
    return "".join(f"<p>{line}</p>" for line in lines)


def detectable_section(data: dict) -> str:
    """Per ranking metric, the minimum detectable difference of the board's own design from
    its own spread: README.md's rows (readme.detectable_rows), as text in the file."""
    power = data["views"]["all"]["power"]
    head = "".join(f"<th>{escape(h)}</th>" for h in DETECTABLE_HEAD)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
                   for row in detectable_rows(data))
    return ('<section id="detectable"><h2>What this board can detect</h2>'
            f'<p class="legend-text">All streams: {power["n_pairs"]} (stream, seed) pairs per '
            f"method, {power['df']} degrees of freedom, Holm over all {power['comparisons']} "
            f"pairs, &alpha; = {power['alpha']}. <em>sd</em>: the board's own spread, the "
            "median over all method pairs of the sd of their stream-centred paired "
            "differences. <em>Significant from</em>: the smallest difference the test can "
            "call significant for a pair with that sd. <em>MDD</em>: the true difference "
            "found with 80% power after the correction "
            "(harness.power.minimum_detectable_difference); a real difference smaller than "
            "it is likely to tie.</p>"
            f'<div class="scroll"><table class="detectable"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div></section>")


def controls(data: dict) -> str:
    views = "".join(f'<option value="{escape(k)}">{escape(v["label"])}</option>'
                    for k, v in data["views"].items())
    default = data["settings"]["default_metric"]
    metrics = "".join(f'<option value="{escape(m["key"])}"'
                      f'{" selected" if m["key"] == default else ""}>{escape(m["label"])}'
                      f'{"" if m["higher_is_better"] else " (lower is better)"}</option>'
                      for m in data["metrics"])
    labels = {m["key"]: m["label"] for m in data["metrics"]}

    def box(m: dict) -> str:
        on = (m["key"] in DEFAULT_SHOWN or m["key"].endswith("_final")) and "duplicates" not in m
        same = m.get("duplicates")
        note = (f' <span class="dup">(= {"" if same["sign"] == 1 else "&minus;"}'
                f'{escape(labels[same["of"]])}{" shifted" if same.get("shifted") else ""})'
                '</span>' if same else "")
        return (f'<label><input type="checkbox" value="{escape(m["key"])}"'
                f'{" checked" if on else ""}> {escape(m["label"])}{note}</label> ')
    boxes = "".join(box(m) for m in data["metrics"])
    return (f'<div class="controls"><label>Stream <select id="view">{views}</select></label>'
            f'<label>Rank by <select id="metric">{metrics}</select></label>'
            f'<details id="columns"><summary>Columns shown</summary><fieldset id="shown">'
            f"<legend>Metrics shown (= X: repeats column X on this board; shifted: by the "
            f"same amount for every method in a pair)</legend>{boxes}"
            "</fieldset></details></div>")


def pareto_section(data: dict) -> str:
    labels = {m["key"]: m["label"] for m in data["metrics"]}
    figures = []
    for view, figure in data["pareto"].items():
        if not figure:
            continue
        hidden = "" if view == "all" else " hidden"
        front = ", ".join(figure["front"])
        figures.append(f'<figure data-view="{escape(view)}"{hidden}>'
                       f'{pareto_svg(figure, "drift", labels.get(figure["y"], figure["y"]))}'
                       f'<figcaption class="legend-text">{escape(data["views"][view]["label"])}: '
                       f'means over the view\'s pairs; Pareto front: {escape(front)}'
                       f'</figcaption></figure>')
    if not figures:
        return ""
    return ('<section id="pareto"><h2>Task gain against drift</h2><p class="legend-text">'
            "Up is more learned, left is less changed from the base model (drift: mean KL "
            "from the base model on general prompts). A method is on the Pareto front when "
            "no other has at least as much task gain and at most as much drift, with one of "
            "them strictly. The stream filter above "
            f"switches the figure.</p>{''.join(figures)}</section>")


def _badge(meta: dict) -> str:
    if meta["verified"]:
        return f'<span class="badge verified">verified {escape(meta["verified_at"] or "")}</span>'
    return '<span class="badge self">self-reported</span>'


def _cell_detail(cell_id: str, cell: dict) -> str:
    tasks = cell["tasks"] or [f"task {j + 1}" for j in range(len(cell["R"][0]))]
    rows = ["base"] + [f"after {t}" for t in tasks]
    head = "".join(f"<th>{escape(t)}</th>" for t in tasks)
    body = "".join(f"<tr><th>{escape(rows[i])}</th>"
                   + "".join(f"<td>{_num(x)}</td>" for x in row) + "</tr>"
                   for i, row in enumerate(cell["R"]))
    gaps = any(x is None for row in cell["R"] for x in row)
    r_table = ('<table class="R"><caption>R: score on each task (column) after each '
               'training step (row)'
               + (" (\u2013: not evaluated, eval.rows: own-and-final)" if gaps else "")
               + f'</caption><thead><tr><th></th>{head}</tr></thead>'
               f"<tbody>{body}</tbody></table>")
    p_head = "".join(f"<th>{escape(r)}</th>" for r in rows)
    p_body = "".join(f"<tr><th>{escape(name)}</th>"
                     + "".join(f"<td>{_num(v)}</td>" for v in values)
                     + f"<td>{sparkline(values)}</td></tr>"
                     for name, values in sorted(cell["probes"].items()))
    p_table = (f'<table class="probes"><caption>probe curves</caption><thead><tr><th>probe'
               f"</th>{p_head}<th>curve</th></tr></thead><tbody>{p_body}</tbody></table>"
               if cell["probes"] else "")
    return (f'<details><summary>{escape(cell["stream"])}, seed {cell["seed"]} '
            f'<code>{escape(cell_id)}</code></summary><div class="cell-detail">{r_table}'
            f"{p_table}</div></details>")


def drilldown(name: str, meta: dict, metrics: list[dict]) -> str:
    """One method: description, settings, cost, provenance, then its cells (metrics,
    score matrix R and probe curves of each)."""
    hw = meta["hardware"]
    harness = meta.get("harness") or {}
    cost = (f"{_num(meta['device_hours'], 3)} device-hours ({_num(meta['wall_clock_s'], 0)} s "
            f"of cell wall clock) on {escape(str(hw.get('processor')))} "
            f"({escape(str(hw.get('device_type')))}, {escape(str(hw.get('threads')))} "
            f"thread{'' if hw.get('threads') == 1 else 's'})")
    meta_rows = [("method", f"<code>{escape(str(meta['method']))}</code> "
                            f"({escape(str(meta['class']))}"
                            f"{', built-in' if meta['builtin'] else ', file plugin'})"),
                 ("settings", f"<code>{_settings(meta['params'])}</code>"),
                 ("training", f"<code>{_settings(meta['train'])}</code>"),
                 ("tuning", drill_text(meta)),
                 ("cost", cost),
                 ("harness", f"{escape(str(harness.get('version')))} at "
                             f"<code>{escape(str(harness.get('git_revision')))}</code>"),
                 ("source", f"<code>{escape(str(meta['source']))}</code> sha256 "
                            f"<code>{escape(str(meta['source_sha256']))}</code>"),
                 ("bundle", f"<code>{escape(meta['bundle'])}</code>")]
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in meta_rows)
    head = "".join(f'<th title="{escape(m["description"])}">{escape(m["label"])}</th>'
                   for m in metrics)
    body = "".join(f"<tr><td><code>{escape(cid)}</code></td><td>{escape(c['stream'])}</td>"
                   f"<td>{c['seed']}</td>"
                   + "".join(f"<td>{_num(c['values'].get(m['key']))}</td>" for m in metrics)
                   + "</tr>" for cid, c in meta["cells"].items())
    cells = (f'<table class="cells"><thead><tr><th>cell</th><th>stream</th><th>seed</th>{head}'
             f"</tr></thead><tbody>{body}</tbody></table>")
    details = "".join(_cell_detail(cid, c) for cid, c in meta["cells"].items())
    return (f'<section class="drill" id="drill-{escape(name)}" data-method="{escape(name)}" '
            f'hidden><h3>{escape(name)} {_badge(meta)}</h3><p>{escape(meta["description"])}</p>'
            f"<dl>{dl}</dl><h4>Cells</h4>{cells}<h4>Score matrices and probe curves</h4>"
            f"{details}</section>")


def pending_note(data: dict) -> str:
    if not data.get("pending"):
        return ""
    return (f'<p class="pending" id="pending"><strong>Not ranked yet</strong>: '
            f"{escape(', '.join(data['pending']))}: the leaderboard suite lists them, but no "
            "bundle of theirs is in <code>leaderboard/submissions/</code> yet.</p>")


def rejected_section(data: dict) -> str:
    if not data["rejected"]:
        return ""
    items = "".join(f"<li>{escape(name)}: {escape(problem)}</li>"
                    for name, problems in data["rejected"].items() for problem in problems)
    return (f'<section id="rejected" class="rejected"><h2>Excluded bundles</h2><p>These '
            f"bundles failed <code>harness verify</code>'s static checks and are not ranked:"
            f"</p><ul>{items}</ul></section>")


def page_data(data: dict) -> dict:
    """What the script needs: everything but the cells (the drill-downs hold those)."""
    methods = {name: {k: v for k, v in meta.items() if k != "cells"}
               for name, meta in data["methods"].items()}
    return ({k: v for k, v in data.items() if k not in ("methods", "pareto")}
            | {"methods": methods, "cost_label": X.cost_legend(data)[0]})


def render_page(data: dict) -> str:
    """The page as ASCII text (other characters as references), whatever the locale."""
    return _page(data).encode("ascii", "xmlcharrefreplace").decode("ascii")


def _page(data: dict) -> str:
    drills = "".join(drilldown(name, meta, data["metrics"])
                     for name, meta in data["methods"].items())
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{TITLE}</title>
<style>{CSS}</style>
</head>
<body>
<header>
<h1>{TITLE}</h1>
<p class="lead" id="lead">{escape(data['summary'] or '')}</p>
<p class="sub">{grid_line(data)} Generated by <code>harness leaderboard</code> from
<code>leaderboard/submissions/</code>; the same numbers are in leaderboard.json and README.md.
Below: the table, <a href="#significant">every significant difference</a>,
<a href="#legend">what each column means</a>,
<a href="#statistics">how ranks are decided</a>, <a href="#streams">the streams and tasks</a>,
<a href="#submit">how to submit</a>.</p>
{archive_note(data)}
{pending_note(data)}
</header>
<main>
{controls(data)}
<div class="scroll"><table id="board"><thead></thead><tbody></tbody></table></div>
<noscript><p>The table needs JavaScript; README.md beside this page has the same ranking.</p></noscript>
<p class="legend-text">Click a column header to sort (again to reverse); click a row for the
method's cells. "untuned" and "identical to SFT" beside a name: see <a href="#tuning">Tuning</a>.</p>
{significant_section(data)}
{legend_section(data)}
<section id="statistics"><h2>How ranks are decided</h2>
<p id="power" class="power"></p>
<div class="note" id="note">{header_note(data)}</div>
</section>
{detectable_section(data)}
{pareto_section(data)}
{streams_section(data)}
{submit_section()}
{tuning_section(data)}
<section id="drilldowns"><h2>Methods</h2><p class="legend-text">Click a row of the table to
open a method here.</p>{drills}</section>
{rejected_section(data)}
</main>
<script type="application/json" id="lb-data">{_json_for_script(page_data(data))}</script>
<script>{JS}</script>
</body>
</html>
"""
