"""The paper table of `harness report OUT --paper` as markdown (OUT/paper.md) and as rich
tables for the terminal, from a `harness.report.paper.paper_report` (a plain dict)."""

from __future__ import annotations

COLUMNS = ("metric", "paper column", "ours: method", "paper", "ours [95% CI]", "n", "diff",
           "paper Δbase", "ours Δbase", "status")


def _num(x, signed: bool = False) -> str:
    return "-" if x is None else (f"{x:+.2f}" if signed else f"{x:.2f}")


def _cells(row: dict, best_of: bool) -> list[str]:
    ours = _num(row["ours"])
    if row["ci"]:
        ours += f" [{_num(row['ci'][0])}, {_num(row['ci'][1])}]"
    if best_of and row.get("best") is not None and row["n"] > 1:
        ours += f" (best {_num(row['best'])})"
    return [row["label"], row["column"], row["method"] or "-", _num(row["theirs"]), ours,
            str(row["n"]), _num(row["diff"], True), _num(row["theirs_delta"], True),
            _num(row["ours_delta"], True), row["status"]]


def _header(report: dict) -> tuple[str, str]:
    paper = report["paper"]
    title = f"{paper.get('title', report['suite'])} (arXiv {paper['arxiv']})"
    how = (f"Ours: the mean over seeds, x{report['scale']:g} to the paper's unit, with a "
           f"95% CI (Student t over seeds; one seed: bootstrap over test items). diff = ours - "
           "paper; Δbase = the change from that side's own base row (the fair comparison where "
           "the two evaluations differ).")
    if report.get("judge"):
        how += (f" Judged tasks scored by {report['judge']} from their recorded answers (not "
                "the paper's judge: not comparable in absolute value).")
    return title, how


def render_paper_markdown(report: dict) -> str:
    """OUT/paper.md from a `paper_report`."""
    title, how = _header(report)
    lines = [f"# {title}: the paper's numbers beside ours", "",
             f"Suite `{report['suite']}`, cells in `{report['out']}`. {how}", "",
             f"Transcribed from: {' '.join(report['transcribed_from'].split())}", ""]
    by_table: dict[str, list[dict]] = {}
    for row in report["rows"]:
        by_table.setdefault(row["table"], []).append(row)
    for t in report["tables"]:
        lines += [f"## {t['id']}: {t['source']}", "",
                  f"Provenance {t['provenance']}; model {t['model'] or 'not stated'}; "
                  f"stream {t['stream'] or 'any'}; {t['setting']}.", ""]
        lines += ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in _cells(r, report["best_of_seeds"]))
                  + " |" for r in by_table.get(t["id"], [])]
        lines += [""] + [f"- {n}" for n in (t.get("differences") or []) + (t.get("notes") or [])]
        lines += [""]
    lines += ["## Metrics: the paper's definition, and why ours may differ", ""]
    for mid, m in report["metrics"].items():
        lines.append(f"- **{m['label']}** ({m['comparability']}): {' '.join(m['definition'].split())}"
                     + (f" Ours: {' '.join(m['why'].split())}" if m.get("why") else ""))
    lines += ["", "## Statuses", "",
              "- comparable / approximate / not comparable: as the metric's definition says",
              "- needs a judge: a judge-scored metric without a judge (a judge-free fallback is "
              "shown where the data side computes one, and is not comparable)",
              "- local judge: scored by the named local judge, not the paper's: not comparable in "
              "absolute value",
              "- not reproduced: the data or protocol is not available (see why)",
              "- not run: no complete cell of ours for that setting; no paper number: our method "
              "the paper does not report", ""]
    why = sorted({(r["label"], r["column"], r["status"], r["why"]) for r in report["rows"]
                  if r["why"] and r["status"] in ("not run", "not reproduced", "needs a judge",
                                                  "local judge")})
    lines += [f"- {label} / {column}: {status}: {' '.join(text.split())}"
              for label, column, status, text in why]
    extra = [f"- {x['what']}: {' '.join(x['why'].split())}" for x in report["not_compared"]]
    lines += ["", "## Not compared", "", *extra, *[f"- {n}" for n in report["notes"]], ""]
    return "\n".join(lines)


def paper_terminal(report: dict) -> list:
    """Rich renderables: one table per paper table with, under it, what differs in our
    setting for each metric we have a number for; then the notes."""
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    title, how = _header(report)
    out = [Text(f"{title}: suite {report['suite']}. {how}")]
    colour = {"comparable": "green", "approximate": "yellow", "local judge": "yellow"}
    for t in report["tables"]:
        rows = [r for r in report["rows"] if r["table"] == t["id"]]
        table = Table(title=escape(f"{t['id']}: {t['source']} {t['provenance']}; "
                                   f"{t['model'] or 'model not stated'}"), title_justify="left")
        for col in COLUMNS:
            table.add_column(col, justify="right" if col in ("paper", "n", "diff") else "left")
        for r in rows:
            cells = [escape(c) for c in _cells(r, report["best_of_seeds"])]
            style = colour.get(r["status"], "dim")
            cells[-1] = f"[{style}]{cells[-1]}[/{style}]"
            table.add_row(*cells)
        out.append(table)
        why: dict[str, str] = {}  # what differs in our setting, where we have a number
        for r in rows:
            if r["why"] and r["ours"] is not None and r["status"] not in ("comparable",
                                                                          "no paper number"):
                why.setdefault(r["label"], " ".join(r["why"].split()))
        out += [Text(f"  {label}: {text}", style="dim") for label, text in why.items()]
        out += [Text(f"  {d}", style="dim") for d in t.get("differences") or []]
    for note in report["notes"]:
        out.append(Text(note))
    return out
