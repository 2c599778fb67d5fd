"""The tuning on the page and in README.md: per method the knobs tuned, the settings tried,
the chosen one and its selection value, the item-identical-to-SFT flag, and every setting's
value per validation stream and seed. All of it is text on the page (a table and expandable
details, no hover: a phone cannot hover); a bundle without a tuning table is marked untuned.
"""

from __future__ import annotations

import re
from html import escape

INTRO = ("Every method's declared knobs get the same budget of settings (`harness tune`), run "
         "on validation streams that are never ranked and chosen by a pre-registered "
         "criterion; the ranked cells ran at the chosen setting. *untuned*: the bundle has no "
         "tuning table, so its settings were not chosen by measurement. *identical to SFT*: "
         "at the chosen setting the method answered every test item of the validation cells "
         "as SFT did at the same training settings: it did nothing SFT does not. *at the "
         "grid's edge*: the chosen value of a knob is the lowest or highest tried, so a "
         "better setting may lie beyond the grid the budget allowed.")
NONE_TUNED = ("No ranked bundle carries a tuning table: every method ran at its listed "
              "settings, untuned.")


def _value(v) -> str:
    return format(v, "g") if isinstance(v, float) else str(v)


def setting_text(setting: dict) -> str:
    """`lambda=100000`, `train.lr=0.0005`."""
    return ", ".join(f"{k}={_value(v)}" for k, v in setting.items())


def _num(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def mark(meta: dict) -> str:
    """The short label beside a method's name ("" for a tuned method SFT does not equal)."""
    tuning = meta.get("tuning")
    if tuning is None:
        return "untuned"
    return "identical to SFT" if tuning["identical_to_sft"] else ""


def note(meta: dict) -> str:
    """The tuning table's note: the label, and where the chosen setting is at its grid's
    edge (harness.tune.edge_note)."""
    from harness.tune import edge_note

    tuning = meta.get("tuning")
    return "; ".join(n for n in (mark(meta), tuning and edge_note(tuning)) if n)


def criterion(t: dict) -> str:
    return (f"{t['select']} of the {t['primary']} scoring "
            f"({'higher' if t['higher_is_better'] else 'lower'} is better), mean over "
            f"stream(s) {', '.join(t['streams'])} x seed(s) {', '.join(map(str, t['seeds']))}")


def summary_rows(data: dict) -> list[list[str]]:
    """method, knobs tuned, settings tried, chosen, selection value, note: one row each."""
    rows = []
    for name, meta in data["methods"].items():
        t = meta.get("tuning")
        if t is None:
            rows.append([name, "-", "-", "-", "-", "untuned"])
            continue
        chosen = t["settings"][t["chosen"]]
        rows.append([name, ", ".join(t["knobs"]),
                     "; ".join(setting_text(r["setting"]) for r in t["settings"]),
                     setting_text(chosen["setting"]), f"{t['select']} {_num(chosen['score'])}",
                     note(meta)])
    return rows


def full_table(t: dict) -> tuple[list[str], list[list[str]]]:
    """(head, rows): every setting's value per validation (stream, seed), its mean, chosen."""
    pairs = [(s, n) for s in t["streams"] for n in t["seeds"]]
    head = ["setting"] + [f"{s} s{n}" for s, n in pairs] + [f"mean {t['select']}", "chosen"]
    rows = []
    for i, r in enumerate(t["settings"]):
        got = {(v["stream"], v["seed"]): v["value"] for v in r["values"]}
        rows.append([setting_text(r["setting"])] + [_num(got.get(p)) for p in pairs]
                    + [_num(r["score"]), "yes" if i == t["chosen"] else ""])
    return head, rows


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    return ("<table><thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head)
            + "</tr></thead><tbody>" + "".join(
                "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
            + "</tbody></table>")


def tuning_section(data: dict) -> str:
    """The page's Tuning section: the summary table, then each tuned method's full table."""
    intro = re.sub(r"\*([^*]+)\*", r"<strong>\1</strong>",
                   re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(INTRO)))
    tuned = {n: m["tuning"] for n, m in data["methods"].items() if m.get("tuning")}
    if not tuned:
        body = f"<p>{escape(NONE_TUNED)}</p>"
    else:
        head = ["method", "knobs tuned", "settings tried", "chosen", "selection value", "note"]
        body = f'<div class="scroll">{_html_table(head, summary_rows(data))}</div>' + "".join(
            f'<details><summary>{escape(n)}: every setting ({escape(criterion(t))})</summary>'
            f'<div class="scroll">{_html_table(*full_table(t))}</div></details>'
            for n, t in tuned.items())
    return (f'<section id="tuning"><h2>Tuning</h2><p class="legend-text">{intro}</p>{body}'
            "</section>")


def drill_text(meta: dict) -> str:
    """The drill-down's one line on the method's tuning (HTML)."""
    t = meta.get("tuning")
    if t is None:
        return "untuned (the bundle has no tuning table)"
    chosen = t["settings"][t["chosen"]]
    from harness.tune import edge_note

    flag = "; <strong>item-identical to SFT</strong>" if t["identical_to_sft"] else ""
    flag += f"; {escape(edge_note(t))}" if edge_note(t) else ""
    return (f"<code>{escape(setting_text(chosen['setting']))}</code>, chosen of "
            f"{len(t['settings'])} settings by {escape(criterion(t))}: "
            f"{_num(chosen['score'])}{flag} (table: Tuning)")


def _md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"
    return [line(head), line(["---"] * len(head))] + [line(r) for r in rows] + [""]


def readme_lines(data: dict) -> list[str]:
    """README.md's Tuning section: the summary table, then each tuned method's full table."""
    lines = ["## Tuning", "", INTRO, ""]
    tuned = {n: m["tuning"] for n, m in data["methods"].items() if m.get("tuning")}
    if not tuned:
        return lines + [NONE_TUNED, ""]
    lines += _md_table(["method", "knobs tuned", "settings tried", "chosen", "selection value",
                        "note"], summary_rows(data))
    for name, t in tuned.items():
        lines += [f"**{name}**: {criterion(t)}", ""] + _md_table(*full_table(t))
    return lines
