"""PNG plots of `harness report` (matplotlib; Agg canvas, no pyplot global state), drawn
from the score table's groups of records and the summary's rows.

Every plot function either writes its file or returns why it did not; `make_plots` turns
exceptions into skipped entries too, so a plot never stops a report.

- pareto.png: per (model, stream), new-task gain (plasticity) against task retention (BWT)
  and each probe's final value; one point per method (mean ± sd over seeds), the
  non-dominated methods circled and joined.
- r_<model>__<stream>.png: mean R matrix over seeds, one heatmap per method.
- cd_<metric>.png: critical-difference diagram (Friedman average ranks, Nemenyi CD).
- curves_<stream>.png: each task's score (and each probe) along the stream's rows, one
  line per method (mean over seeds, band ± sd), one row of panels per model.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-.") or "x"


def _figure(width: float, height: float, constrained: bool = True):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100,
                 layout="constrained" if constrained else None)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    # constrained-layout figures already fit their labels; "tight" would draw twice
    tight = None if fig.get_layout_engine() is not None else "tight"
    fig.savefig(tmp, format="png", bbox_inches=tight)
    tmp.replace(path)


def _unique_name(name: str, used: set[str]) -> str:
    base, n = name, 2
    while name in used:
        name = base.replace(".png", f"-{n}.png")
        n += 1
    used.add(name)
    return name


def make_plots(groups: dict, per_method: list[dict], metrics: dict[str, bool],
               probes: list[str], friedman: list[dict], outdir: Path
               ) -> tuple[list[dict], list[dict]]:
    """Write every plot under outdir; return (plots [{file, what}], skipped [{what, why}]).

    groups: {(model, stream): {method: {seed: Record}}}; per_method: the summary rows
    (mean, sd per scenario and method); metrics: {metric: higher_is_better}; friedman: the
    summary's Friedman entries.
    """
    outdir = Path(outdir)
    made, skipped, used = [], [], set()

    def attempt(what: str, name: str, fn, *args):
        name = _unique_name(name, used)
        try:
            with warnings.catch_warnings():  # empty-slice means, layout hints: not news
                warnings.simplefilter("ignore")
                why = fn(*args, outdir / name)
        except Exception as exc:  # a plot must never stop the report
            why = f"plot failed: {type(exc).__name__}: {exc}"
        if why:
            skipped.append({"what": f"plot {name}", "why": why})
        else:
            made.append({"file": f"{outdir.name}/{name}", "what": what})

    attempt("new-task gain (plasticity) vs retention (BWT) and probes, per method "
            "(mean ± sd over seeds); circled = not dominated", "pareto.png",
            pareto_plot, per_method, metrics, probes)
    for (model, stream), methods in sorted(groups.items()):
        attempt(f"mean R over seeds, {model} / {stream}, one heatmap per method",
                f"r_{slug(model)}__{slug(stream)}.png", r_heatmaps, model, stream, methods)
    if not friedman:
        skipped.append({"what": "plot cd_<metric>.png",
                        "why": "no Friedman result (needs >= 3 methods in >= 2 scenarios; "
                               "see Skipped for each metric)"})
    for entry in friedman:
        attempt(f"critical-difference diagram for {entry['metric']} (Friedman p = "
                f"{entry['p']:.3g}, CD = {entry['cd']:.2f})", f"cd_{slug(entry['metric'])}.png",
                cd_diagram, entry)
    streams: dict[str, dict] = {}
    for (model, stream), methods in sorted(groups.items()):
        streams.setdefault(stream, {})[model] = methods
    for stream, by_model in sorted(streams.items()):
        attempt(f"score per task (and probes) along the rows of stream {stream}, one line "
                "per method (mean ± sd over seeds)", f"curves_{slug(stream)}.png",
                stream_curves, stream, by_model, probes, metrics)
    return made, skipped


# --------------------------------------------------------------------------- pareto

def _pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points not dominated (both coordinates: higher is better)."""
    front = []
    for i, (x, y) in enumerate(points):
        if not any((qx >= x and qy >= y) and (qx > x or qy > y)
                   for j, (qx, qy) in enumerate(points) if j != i):
            front.append(i)
    return front


def pareto_plot(per_method: list[dict], metrics: dict[str, bool], probes: list[str],
                path: Path) -> str | None:
    look = {(r["model"], r["stream"], r["metric"], r["method"]): r for r in per_method}
    groups = sorted({(r["model"], r["stream"]) for r in per_method})
    y_metrics = [m for m in ["bwt", *[f"{p}_final" for p in probes]]
                 if any(r["metric"] == m and r["mean"] is not None for r in per_method)]
    if not y_metrics:
        return "no retention measure (bwt or a probe) has a value"
    panels = []
    for g in groups:
        methods = sorted({r["method"] for r in per_method if (r["model"], r["stream"]) == g})
        for ym in y_metrics:
            pts = []
            for m in methods:
                rx, ry = look.get((*g, "plasticity", m)), look.get((*g, ym, m))
                if rx and ry and rx["mean"] is not None and ry["mean"] is not None:
                    pts.append((m, rx["mean"], rx["sd"] or 0.0, ry["mean"], ry["sd"] or 0.0))
            panels.append((g, ym, pts))
    if not any(len(pts) >= 2 for _, _, pts in panels):
        return ("needs at least 2 methods with both plasticity and a retention measure in "
                "one (model, stream); a single method has no trade-off to show")
    nrows, ncols = len(groups), len(y_metrics)
    fig = _figure(4.2 * ncols, 3.4 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for idx, (g, ym, pts) in enumerate(panels):
        ax = axes[idx // ncols][idx % ncols]
        hib = metrics[ym]
        ax.set_title(f"{g[0]} / {g[1]}", fontsize=9)
        ax.set_xlabel("plasticity (new-task gain) →", fontsize=8)
        ax.set_ylabel(f"{ym} ({'higher' if hib else 'lower'} is better)", fontsize=8)
        ax.tick_params(labelsize=7)
        if len(pts) < 1:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
            continue
        for k, (m, x, xe, y, ye) in enumerate(pts):
            ax.errorbar(x, y, xerr=xe, yerr=ye, fmt="o", color=f"C{k % 10}", capsize=3,
                        label=m)
            ax.annotate(m, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        oriented = [(x, y if hib else -y) for _, x, _, y, _ in pts]
        front = sorted(_pareto_front(oriented), key=lambda i: pts[i][1])
        if front:
            ax.plot([pts[i][1] for i in front], [pts[i][3] for i in front], "--",
                    color="0.5", lw=1, zorder=0)
            ax.scatter([pts[i][1] for i in front], [pts[i][3] for i in front], s=160,
                       facecolors="none", edgecolors="k", lw=1)
        if not hib:
            ax.invert_yaxis()  # better is always up
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="best")
    fig.suptitle("Pareto view: gain on new tasks vs retention (mean ± sd over seeds; "
                 "up and right is better)", fontsize=10)
    _save(fig, path)
    return None


# --------------------------------------------------------------------------- R heatmaps

def r_heatmaps(model: str, stream: str, methods: dict, path: Path) -> str | None:
    panels = []
    for method, by_seed in sorted(methods.items()):
        records = list(by_seed.values())
        shapes = [np.asarray(r.data["R"], dtype=float).shape for r in records]
        common = max(set(shapes), key=shapes.count)
        use = [r for r, sh in zip(records, shapes) if sh == common]
        R = np.mean([np.asarray(r.data["R"], dtype=float) for r in use], axis=0)
        panels.append((method, R, use[0].tasks, len(use), len(records) - len(use)))
    if not panels:
        return "no complete cell"
    n = len(panels)
    ncols = min(n, 4)
    nrows = (n + ncols - 1) // ncols
    T = max(p[1].shape[1] for p in panels)
    size = max(2.8, 0.55 * T + 1.6)
    fig = _figure(size * ncols, size * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    # entries a schedule did not evaluate (null in R: eval.rows) are NaN: blank cells, '-'
    lo = min([0.0] + [float(np.nanmin(p[1])) for p in panels])
    hi = max([1.0] + [float(np.nanmax(p[1])) for p in panels])
    image = None
    for k, (method, R, tasks, used, dropped) in enumerate(panels):
        ax = axes[k // ncols][k % ncols]
        image = ax.imshow(R, vmin=lo, vmax=hi, cmap="viridis", aspect="auto")
        title = f"{method} (n={used})" + (f", {dropped} seed(s) of another shape left out"
                                          if dropped else "")
        ax.set_title(title, fontsize=9)
        ax.set_xticks(range(R.shape[1]))
        ax.set_xticklabels(tasks, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(R.shape[0]))
        ax.set_yticklabels(["base"] + [f"after {t}" for t in tasks], fontsize=7)
        ax.set_xlabel("evaluated on", fontsize=8)
        if R.shape[1] <= 10:
            for i in range(R.shape[0]):
                for j in range(R.shape[1]):
                    v = R[i, j]
                    ax.text(j, i, "-" if np.isnan(v) else f"{v:.2f}", ha="center",
                            va="center", fontsize=6,
                            color="white" if v < lo + 0.5 * (hi - lo) else "black")
    for k in range(n, nrows * ncols):
        axes[k // ncols][k % ncols].axis("off")
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="score")
    fig.suptitle(f"R matrix (mean over seeds): {model} / {stream}; row i = after training "
                 "task i", fontsize=10)
    _save(fig, path)
    return None


# --------------------------------------------------------------------------- CD diagram

def cd_diagram(entry: dict, path: Path) -> str | None:
    ranks = entry["avg_ranks"]
    cd = float(entry["cd"])
    k = len(ranks)
    order = sorted(ranks, key=lambda m: (ranks[m], m))
    groups = entry.get("groups") or []
    half = (k + 1) // 2
    left, right = order[:half], order[half:][::-1]
    rows = max(len(left), len(right))
    fig = _figure(8, 1.6 + 0.32 * rows + 0.12 * len(groups), constrained=False)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_xlim(0.2, k + 0.8)
    top = 0.6
    bar_y = [-0.12 - 0.1 * g for g in range(len(groups))]
    first = (bar_y[-1] if bar_y else 0) - 0.25
    ax.set_ylim(first - 0.3 * rows - 0.1, top + 0.25)
    ax.axis("off")
    ax.plot([1, k], [0, 0], color="k", lw=1)
    for r in range(1, k + 1):
        ax.plot([r, r], [0, 0.06], color="k", lw=1)
        ax.text(r, 0.1, str(r), ha="center", va="bottom", fontsize=8)
    ax.plot([1, 1 + cd], [top, top], color="k", lw=2)
    ax.plot([1, 1], [top - 0.04, top + 0.04], color="k", lw=1)
    ax.plot([1 + cd, 1 + cd], [top - 0.04, top + 0.04], color="k", lw=1)
    ax.text(1 + cd / 2, top + 0.06, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=8)
    for i, m in enumerate(left):
        y = first - 0.3 * i
        ax.plot([ranks[m], ranks[m], 0.9], [0, y, y], color="k", lw=0.8)
        ax.text(0.85, y, f"{m} ({ranks[m]:.2f})", ha="right", va="center", fontsize=8)
    for i, m in enumerate(right):
        y = first - 0.3 * i
        ax.plot([ranks[m], ranks[m], k + 0.1], [0, y, y], color="k", lw=0.8)
        ax.text(k + 0.15, y, f"{m} ({ranks[m]:.2f})", ha="left", va="center", fontsize=8)
    for g, members in enumerate(groups):
        lo, hi = min(ranks[m] for m in members), max(ranks[m] for m in members)
        ax.plot([lo - 0.03, hi + 0.03], [bar_y[g], bar_y[g]], color="k", lw=3)
    ax.set_title(f"{entry['metric']}: average rank over {entry['n_scenarios']} scenarios "
                 f"(1 = best); Friedman p = {entry['p']:.3g}; bars join methods within CD "
                 f"(Nemenyi, alpha = {entry['alpha']})", fontsize=9)
    _save(fig, path)
    return None


# --------------------------------------------------------------------------- curves

def stream_curves(stream: str, by_model: dict, probes: list[str], metrics: dict[str, bool],
                  path: Path) -> str | None:
    models = sorted(by_model)
    layout = []  # per model: (tasks, probes present, {method: [records]})
    for model in models:
        methods = by_model[model]
        records = [r for by_seed in methods.values() for r in by_seed.values()]
        tasks = max((r.tasks for r in records), key=lambda t: sum(r.tasks == t for r in records))
        present = [p for p in probes if any(p in (r.data.get("probes") or {}) for r in records)]
        layout.append((model, tasks, present, methods))
    ncols = max(len(t) + len(p) for _, t, p, _ in layout)
    if ncols == 0:
        return "no tasks"
    fig = _figure(3.0 * ncols, 2.8 * len(models))
    axes = fig.subplots(len(models), ncols, squeeze=False)
    for row, (model, tasks, present, methods) in enumerate(layout):
        panels = [("task", j, t) for j, t in enumerate(tasks)] + \
                 [("probe", None, p) for p in present]
        for col in range(ncols):
            if col >= len(panels):
                axes[row][col].axis("off")
            else:
                _curve_panel(axes[row][col], model, tasks, methods, panels[col], metrics)
        axes[row][0].legend(fontsize=6, loc="best")
    fig.suptitle(f"Stream {stream}: score on each task after each training step (dotted: "
                 "when the task is trained); mean ± sd over seeds", fontsize=10)
    _save(fig, path)
    return None


def _curve_panel(ax, model: str, tasks: list[str], methods: dict, panel: tuple,
                 metrics: dict[str, bool]) -> None:
    """One task's score (or one probe) along the rows, a line per method (mean ± sd over
    the seeds whose task list is `tasks`)."""
    kind, j, name = panel
    T = len(tasks)
    xs = np.arange(T + 1)
    for k, (method, by_seed) in enumerate(sorted(methods.items())):
        series = []
        for r in by_seed.values():
            if r.tasks != tasks:
                continue
            if kind == "task":
                series.append([np.nan if row_[j] is None else row_[j] for row_ in r.data["R"]])
            else:
                vals = (r.data.get("probes") or {}).get(name)
                if vals and len(vals) == T + 1:
                    series.append([np.nan if v is None else float(v) for v in vals])
        if not series:
            continue
        arr = np.asarray(series, dtype=float)
        with np.errstate(all="ignore"):
            mu = np.nanmean(arr, axis=0)
            sd = np.nanstd(arr, axis=0, ddof=1) if len(series) > 1 else None
        # a probe's rows that ran none (null: eval.probe_rows) are skipped, the line joins
        # the others; a task's unevaluated entries stay gaps
        at = xs if kind == "task" else xs[~np.isnan(mu)]
        mu, sd = (mu, sd) if kind == "task" else (mu[at], None if sd is None else sd[at])
        ax.plot(at, mu, marker="o", ms=3, color=f"C{k % 10}", label=method)
        if sd is not None:
            ax.fill_between(at, mu - sd, mu + sd, color=f"C{k % 10}", alpha=0.15)
    if kind == "task":
        ax.axvline(j + 1, color="0.6", ls=":", lw=1)
        ax.set_title(f"{model}: {name} (task {j + 1})", fontsize=8)
        ax.set_ylabel("score", fontsize=7)
    else:
        hib = metrics[f"{name}_final"]
        ax.set_title(f"{model}: probe {name} ({'↑' if hib else '↓'})", fontsize=8)
    ax.set_xticks(xs)
    ax.set_xticklabels(["base"] + [f"{i + 1}" for i in range(T)], fontsize=7)
    ax.set_xlabel("after task", fontsize=7)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
