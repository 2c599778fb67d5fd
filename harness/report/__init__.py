"""`harness report OUT`: statistics across the cells of a run.

    harness.cells.read_cells(OUT) -> collect (score table) -> analysis, items (one function
    per statistic) -> summary dict -> OUT/summary.json, markdown -> OUT/report.md,
    plots -> OUT/plots/*.png, terminal -> the tables printed by `harness report`

`build_report(out)` does all of it and returns the summary; `run_report` adds the terminal
tables for the CLI. docs/report.md documents the summary.json schema and how to read a
report. A broken or missing cell never stops a report: every cell folder is accounted for
as complete, failed, incomplete, corrupt or empty, and the report names all but the first.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

from harness.cells import Cells, read_cells
from harness.errors import HarnessError
from harness.report import analysis
from harness.report.collect import ReportInputs, collect
from harness.report.items import item_forgetting
from harness.report.markdown import render_markdown
from harness.report.terminal import terminal_tables

__all__ = ["build_report", "run_report", "render_markdown", "terminal_tables",
           "SUMMARY_SCHEMA_VERSION"]

SUMMARY_SCHEMA_VERSION = 1


def build_report(out, reference: str = "sft", alpha: float = 0.05, plots: bool = True,
                 confidence: float = 0.95, n_resamples: int = 9999,
                 n_permutations: int = 9999, n_iqm_resamples: int = 2000,
                 n_item_resamples: int = 1999, seed: int = 0) -> dict:
    """Read OUT/cells, compute the statistics, write OUT/report.md, OUT/summary.json and
    (unless plots=False) OUT/plots/*.png; return the summary (the content of summary.json).

    Raises HarnessError when OUT or OUT/cells does not exist, OUT/cells holds no cell
    folder, alpha is not in (0, 1), or the reference method has no complete cell (while
    other methods do).
    """
    out = Path(out)
    cells = _read(out, reference, alpha)
    inputs = collect(cells, reference=reference, alpha=alpha, confidence=confidence,
                     n_resamples=n_resamples, n_permutations=n_permutations,
                     n_iqm_resamples=n_iqm_resamples,
                     n_item_resamples=min(n_item_resamples, n_resamples), seed=seed)
    summary = _summary(out, inputs)
    if plots and cells.records:
        from harness.report.plots import make_plots

        made, skipped = make_plots(inputs.groups, summary["per_method"], inputs.metrics,
                                   list(inputs.probes), summary["friedman"], out / "plots")
        summary["plots"] = made
        summary["skipped"].extend(skipped)
    elif not plots:
        summary["skipped"].append({"what": "plots", "why": "--no-plots"})
    summary = _clean(summary)
    try:
        _write(out / "summary.json", json.dumps(summary, indent=1, allow_nan=False) + "\n")
        _write(out / "report.md", render_markdown(summary))
    except OSError as exc:
        raise HarnessError(f"cannot write the report into '{out}': {exc.strerror or exc}",
                           "make the folder writable or copy it somewhere writable") from exc
    return summary


def _read(out: Path, reference: str, alpha: float) -> Cells:
    """OUT's cells, after the checks that stop a report with a one-line error."""
    fix = "pass the folder given to `harness run --out` (it holds cells/)"
    if not out.exists():
        raise HarnessError(f"output directory '{out}' does not exist", fix)
    if not out.is_dir():
        raise HarnessError(f"'{out}' is not a directory", fix)
    if not (out / "cells").is_dir():
        hint = ("pass its parent folder" if out.name == "cells" else
                "pass the folder given to `harness run --out`, which holds cells/")
        raise HarnessError(f"'{out}' has no cells/ folder", hint)
    if not 0 < alpha < 1:
        raise HarnessError(f"--alpha must be between 0 and 1, got {alpha}", "e.g. --alpha 0.05")
    cells = read_cells(out)
    if cells.n_folders == 0:
        raise HarnessError(f"'{out / 'cells'}' holds no cell folders",
                           "run `harness run --suite S --out DIR` first, then report on DIR")
    methods_present = sorted({r.method for r in cells.records})
    if cells.records and reference not in methods_present:
        raise HarnessError(f"reference method '{reference}' has no complete cell in '{out}' "
                           f"(methods with complete cells: {', '.join(methods_present)})",
                           f"pass --reference with one of: {', '.join(methods_present)}")
    return cells


def _summary(out: Path, inputs: ReportInputs) -> dict:
    """summary.json without plots: every analysis, its skipped items in section order."""
    from harness import __version__

    cells, skipped = inputs.cells, []
    if not cells.records:
        skipped.append({"what": "all statistics and plots",
                        "why": "no complete cell (see cells: failed, incomplete, corrupt)"})
    per_method = analysis.per_method(inputs)
    comparisons, why = analysis.comparisons(inputs)
    skipped += why
    wins, why = analysis.wins(inputs) if cells.records else ([], [])
    skipped += why
    across, why = analysis.across_scenarios(inputs, comparisons)
    skipped += why
    friedman, why = analysis.friedman(inputs) if cells.records else ([], [])
    skipped += why
    items, why = item_forgetting(inputs)
    skipped += why
    iqm, why, notes = analysis.iqm(inputs) if cells.records else (
        {"normalisation": analysis.NORMALISATION, "rows": []}, [], [])
    skipped += why
    return {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "harness_version": __version__,
        "out": str(out),
        "reference": inputs.reference,
        "alpha": inputs.alpha,
        "settings": _settings(inputs, len(comparisons)),
        "metrics": [{"name": m, "higher_is_better": hib} for m, hib in inputs.metrics.items()],
        "cells": {"folders": cells.n_folders, "complete": len(cells.records),
                  "failed": cells.failed, "incomplete": cells.incomplete,
                  "corrupt": cells.corrupt, "empty": cells.empty,
                  "duplicates": cells.duplicates, "missing": cells.missing},
        "seeds": analysis.seed_summary(inputs),
        "per_method": per_method,
        "comparisons": comparisons,
        "across_scenarios": across,
        "wins": wins,
        "friedman": friedman,
        "iqm": iqm,
        "item_forgetting": items,
        "plots": [],
        "skipped": skipped,
        "notes": inputs.notes + notes,
    }


def _settings(inputs: ReportInputs, n_comparisons: int) -> dict:
    """How the numbers were computed, in words and numbers (summary.json `settings`)."""
    return {
        "confidence": inputs.confidence,
        "pairing": ("by seed: a comparison uses only the seeds with a value for both "
                    "the method and the reference (n in every row); fewer than 2 paired "
                    "seeds: no interval, no test, no win (said in Skipped)"),
        "ci": ("t interval over the paired seed differences (harness.statistics."
               "stratified_t; df = n - 1): 95% coverage at 2-10 seeds by simulation "
               "(`harness stats-check`), where a bootstrap over 3 seeds covered about 80%"),
        "item_ci": ("acc only: final row, seeds and items as crossed random factors "
                    "(harness.statistics.seed_item_t: two-way ANOVA variance, Satterthwaite "
                    "df): the difference for new seeds and new items of the task"),
        "test": "two-sided paired t-test (the interval's; equal differences: 2/2^n)",
        "family": ("Holm within each metric over every scenario's comparisons with the "
                   "reference -> p_adjusted"),
        "pooled": ("across scenarios: stream-centred paired t over every (scenario, seed) "
                   "pair, Holm over all pairs of the metric's methods (the leaderboard's "
                   "family) -> p_pooled_adjusted"),
        "across_grid": f"Benjamini-Hochberg over all {n_comparisons} comparisons -> p_bh",
        "significant": "p_adjusted < alpha",
        "tie_rule": analysis.TIE_RULE,
        "random_seed": inputs.seed,
    }


def _clean(obj):
    """JSON-safe: numpy scalars/arrays to Python, non-finite floats to null."""
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_clean(v) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(float(obj)) else None
    return obj


def _write(path: Path, text: str) -> None:
    from harness.storage import atomic_write_text

    atomic_write_text(path, text)


def run_report(out, reference: str = "sft", alpha: float = 0.05, plots: bool = True,
               console=None) -> int:
    """`harness report OUT`: build the report, print the terminal tables; exit code 0."""
    from harness.ui import make_console

    console = console or make_console()
    summary = build_report(out, reference=reference, alpha=alpha, plots=plots)
    for item in terminal_tables(summary):
        console.print(item)
    out = Path(out)
    console.print(f"report: {out / 'report.md'}  summary: {out / 'summary.json'}"
                  + (f"  plots: {out / 'plots'} ({len(summary['plots'])})"
                     if summary["plots"] else ""), highlight=False, markup=False)
    return 0
