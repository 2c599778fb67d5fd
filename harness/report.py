"""Reports: the end-of-run table (per method: final task average, BWT, probes)."""

from __future__ import annotations

from collections import defaultdict
from statistics import mean, stdev

from rich.table import Table


def _fmt(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{mean(values):.3f} ± {stdev(values):.3f}"


def summary_table(results: list[dict]) -> Table:
    """One row per (model, stream, method): mean ± sd over seeds of the key metrics."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in results:
        c = r["cell"]
        groups[(c["model"], c["stream"], c["method"])].append(r)
    probe_names = sorted({p for r in results for p in r["probes"]})
    table = Table(title="Results (final row; mean ± sd over seeds)")
    for col in ["model", "stream", "method", "seeds", "ACC", "BWT", "plasticity"]:
        table.add_column(col)
    for p in probe_names:
        table.add_column(f"{p} ({'↑' if results[0]['probe_info'].get(p, {}).get('higher_is_better', True) else '↓'})")
    table.add_column("train s")
    for (model, stream, method), rs in sorted(groups.items()):
        m = [r["metrics"] for r in rs]
        table.add_row(
            model, stream, method, str(len(rs)), _fmt([x["acc"] for x in m]),
            _fmt([x["bwt"] for x in m]), _fmt([x["plasticity"] for x in m]),
            *[_fmt([r["probes"][p][-1] for r in rs if p in r["probes"]]) for p in probe_names],
            f"{mean(r['timings']['train_s'] for r in rs):.0f}",
        )
    return table
