"""Planning: a suite -> its cells (model x stream x method x seed), the grid id, each cell's
plan (tasks, splits, config and hash, computed once) and the cost estimate of `--dry-run`.

Nothing here trains or evaluates; harness/runner.py runs what is planned here, and
harness/results.py owns what a cell folder holds.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from harness import claims, identity, results
from harness.config import PER_SEED, DataSettings, MethodSpec, Suite, cell_train
from harness.eval_rows import evaluated_entries, probed_rows
from harness.errors import HarnessError
from harness.probes import PROBE_DATA
from harness.results import CellState, cell_id, read_result, results_version_of
from harness.storage import stable_hash
from harness.tasks import Split, get_task
from harness.training import total_steps


@dataclass(frozen=True)
class Cell:
    model: str
    stream: str
    tasks: tuple[str, ...]
    method: MethodSpec
    seed: int

    @property
    def id(self) -> str:
        return cell_id(self.model, self.stream, self.method.name, self.seed)

    @property
    def info(self) -> dict:
        """The cell as result.json and failure.json name it."""
        return {"model": self.model, "stream": self.stream, "method": self.method.name,
                "seed": self.seed}


MAX_CELL_ID = 200  # bytes: a cell folder's name, with room for files made beside it


def expand(suite: Suite) -> list[Cell]:
    """All cells, seed by seed: a grid stopped early still compares every method. Stops on
    two cells whose ids (folder names) are equal, which would overwrite each other. A
    cell's method carries the cell's training settings (config.cell_train)."""
    cells = [Cell(model, stream, tuple(tasks),
                  dataclasses.replace(method, train=cell_train(suite, stream, method)), seed)
             for model in suite.models
             for stream, tasks in suite.streams.items()
             for seed in suite.seeds
             for method in suite.methods]
    seen: dict[str, Cell] = {}
    for cell in cells:
        other = seen.setdefault(cell.id, cell)
        if other is not cell:
            what, a, b, fix = next(
                (what, x, y, fix) for what, x, y, fix in (
                    ("models", other.model, cell.model,
                     "give the model folders different names (a symlink will do)"),
                    ("streams", other.stream, cell.stream, "rename one of the streams"),
                    ("methods", other.method.name, cell.method.name,
                     "give one of the method classes another `name`"))
                if x != y)
            raise HarnessError(f"{what} '{a}' and '{b}' would share the cell folder "
                               f"cells/{cell.id} and overwrite each other's results", fix)
        if len(cell.id.encode()) > MAX_CELL_ID:  # a file name holds at most 255 bytes
            raise HarnessError(f"cell {cell.id[:60]}… would need a folder name of "
                               f"{len(cell.id.encode())} bytes (at most {MAX_CELL_ID})",
                               "shorten the model folder's, stream's or method's name")
    return cells


@functools.lru_cache(maxsize=256)
def split(task: str, data: DataSettings, seed: int | None = None) -> Split:
    """A task's train/test split, generated once per process (every cell shares it; nothing
    may mutate it: methods get copies of the lists). With data.seed "per-seed" the data
    seed is the cell's training seed."""
    return get_task(task).split(data.n_train, data.n_test,
                                seed if data.seed == PER_SEED else data.seed)


def grid_definition(suite: Suite) -> dict:
    """Everything that fixes the grid's results, with the content hashes of the task data
    and probe data: two runs with the same grid id measure the same thing."""
    if suite.data.seed == PER_SEED:  # every seed's data is part of the grid
        task_hashes = {t: {str(k): split(t, suite.data, k).content_hash for k in suite.seeds}
                       for tasks in suite.streams.values() for t in tasks}
    else:
        task_hashes = {t: split(t, suite.data).content_hash
                       for tasks in suite.streams.values() for t in tasks}
    probe_files = {p.name: stable_hash(p.read_text()) for p in sorted(PROBE_DATA.glob("*.json"))}
    return identity.grid_parts(suite, {m: identity.model_identity(m, m) for m in suite.models},
                               task_hashes, probe_files)


def grid_id(suite: Suite) -> str:
    return stable_hash(grid_definition(suite))


@dataclass(frozen=True)
class Plan:
    """What a cell will run: its tasks and splits, and its identity (harness/identity.py):
    `parts`, all of it, and `config`, what is hashed into the hash that decides whether a
    complete cell can be skipped."""

    tasks: list
    splits: list[Split]
    model_id: str
    parts: dict

    @property
    def config(self) -> dict:
        return identity.hashed(self.parts)

    @property
    def config_hash(self) -> str:
        return identity.config_hash(self.parts)


def plan(cell: Cell, suite: Suite, model_path: str | None = None) -> Plan:
    """The cell's plan; `model_path` is where the model was resolved to (its identity keys
    caches), the model as named when not yet resolved (`--dry-run`)."""
    model_id = identity.model_identity(cell.model, model_path or cell.model)
    tasks = [get_task(name) for name in cell.tasks]
    per_seed = cell.seed if suite.data.seed == PER_SEED else None  # one cache entry if fixed
    splits = [split(name, suite.data, per_seed) for name in cell.tasks]
    parts = identity.cell_parts(cell, suite, model_id, {s.task: s.content_hash for s in splits})
    return Plan(tasks, splits, model_id, parts)


def state(cell: Cell, suite: Suite, folder: Path) -> CellState:
    """What a run will do with the cell's folder: skip it (complete), leave it to the live
    process that claimed it (running: `claims.holder(folder)` says who), re-run it (stale:
    settings or the results version changed; corrupt; incomplete), retry it (failed), or
    run it (empty, new)."""
    result, found = read_result(folder)
    if (found is CellState.COMPLETE and result.get("config_hash") == plan(cell, suite).config_hash
            and results_version_of(result) == results.RESULTS_VERSION):
        return CellState.COMPLETE
    if claims.holder(folder) is not None:
        return CellState.RUNNING
    return CellState.STALE if found is CellState.COMPLETE else found


# Seconds per optimiser step (batch 8, ~70 tokens) and per evaluation row, measured for
# SmolLM2-135M at one torch thread (as `--jobs 2 --threads 1` runs it), used when OUT has
# no timings of its own: sft's 3.8 s from pilot-v2's sft cell on knowledge-skills seed 2,
# each other method at its ratio to sft in the v1 board's cells (leaderboard/grid/cells:
# median s a step over 12 tasks each, both workers busy alike). sa-sft's generation in
# setup is not counted; sdft's figure is for rollouts of at most 64 tokens (v1's budget;
# a longer budget costs more: docs/benchmark-card.md).
CPU_135M_STEP_S = {"sft": 3.8, "dft": 3.0, "ewc": 4.6, "freeze": 1.4, "l2sp": 3.2, "lora": 3.0,
                   "lwf": 6.0, "mix-external": 3.8, "multitask": 3.6, "replay": 4.2,
                   "sa-sft": 7.2, "sdft": 14.6, "sdft-rewrite": 4.3, "selfaug": 5.0}
# seconds per test item answered after training: pilot-v2's sft cell on knowledge-skills
# seed 2 (one thread): 90.1 s for 9 entries x 32 items. Seconds of each probe in a row, CPU
# at one thread on the base model (knowledge-v2: 229 questions; the generating probes
# answer the 24 general prompts; benchmark card, stop 35); an unlisted probe counts 20 s.
CPU_135M_ITEM_S = 0.31
CPU_135M_PROBE_S = {"drift": 5.7, "agreement": 16.7, "style-leak": 16.1, "knowledge": 8.8,
                    "knowledge-v2": 43.5}
# Generation cached and shared between cells, paid once by the first cell that needs it
# (one thread, v1 board cells that computed it): sa-sft's self-dialogue pool, once per
# (model, seed): 1,400 s (arith-json seed 0; its 4 rounds run whatever the ratio); sdft-rewrite's
# rewrites, once per (model, seed, task): 6.1 s a training example (median of arith-json
# seeds 0-2: 783 s, 1,055 s and 574 s for 128 rewrites of up to 512 tokens).
CPU_135M_POOL_S = {"sa-sft": 1400.0}
CPU_135M_REWRITE_S = {"sdft-rewrite": 6.1}
# the rollout budget (tokens) at which a method's CPU_135M_STEP_S figure was measured: the
# figure's part beyond sft's (the rollouts) is scaled to the cell's `max_new_tokens`
ROLLOUT_TOKENS = {"sdft": 64}
# bf16 autocast against float32 on this project's CPU (avx512_bf16, AMX), one thread: the
# same short cell (pilot-v2 labels-last sft seed 0, 8 steps a task, 16 test items),
# interleaved, twice each: training 85.1 / 107.3 s and 85.6 / 108.4 s, evaluation 99.0 /
# 100.3 s and 98.3 / 98.0 s; sampled generation in batches (16 x 48 tokens) 5.06 / 7.69
# and 4.99 / 7.53 CPU s (benchmark card). The CPU figures above are float32's, scaled by
# these where a suite runs bf16; evaluation (short greedy answers) does not gain.
CPU_BF16_FACTOR = {"train": 0.79, "eval": 1.0, "generation": 0.65}
# The same on a CPU without native bf16 (AVX2 only: a 2-core AMD EPYC, 2026-12-07, one
# thread), where autocast's bf16 matmuls run a slow fallback: the embedded model's forward
# and backward 18.6-20.5x float32's time (mean 19.5), sampled generation 3.5-4.4x (mean
# 3.9), in three runs of scripts/diagnostics/bf16_cpu.py (docs/performance.md).
CPU_BF16_EMULATED_FACTOR = {"train": 19.5, "eval": 1.0, "generation": 3.9}


def shared_generation(cell: Cell, suite: Suite) -> dict[tuple, float]:
    """CPU fallback for the cached generation `cell` needs (unit -> seconds to make it):
    units are shared, so a dry run counts each once, however many cells need it."""
    from harness.methods import builtin_of

    base, scale = builtin_of(cell.method.name), cpu_scale(suite, "generation")
    units = {}
    if base in CPU_135M_POOL_S:
        units[(base, cell.model, cell.seed)] = CPU_135M_POOL_S[base] * scale
    if base in CPU_135M_REWRITE_S:
        for task in cell.tasks:
            units[(base, cell.model, cell.seed, task)] = (
                CPU_135M_REWRITE_S[base] * suite.data.n_train * scale)
    return units


def fallback_step(base: str, params: dict) -> tuple[float, int | None]:
    """(float32 CPU seconds a step, the rollout budget it assumes or None) for a built-in
    method at its settings in force (`params`, defaults included): a generating method's
    rollouts cost in proportion to their token budget, taken whole (rollouts that stop
    early cost less: an upper bound). sdft's 14.6 s at 64 tokens
    becomes about 25 s at 128 (measured: about 30) and 177 s at its default 1024."""
    per_step = CPU_135M_STEP_S.get(base, CPU_135M_STEP_S["sft"])
    if base not in ROLLOUT_TOKENS:
        return per_step, None
    budget = int(params.get("max_new_tokens", ROLLOUT_TOKENS[base]))
    rollouts = per_step - CPU_135M_STEP_S["sft"]
    return per_step + rollouts * (budget / ROLLOUT_TOKENS[base] - 1), budget


def cpu_scale(suite: Suite, part: str) -> float:
    """The CPU figures' factor for `part` at the suite's precision (they are float32's) on
    this machine's CPU (bf16 with or without native support)."""
    from harness.precision import cpu_has_bf16

    if suite.precision not in ("bf16", "bf16-weights"):
        return 1.0
    return (CPU_BF16_FACTOR if cpu_has_bf16() else CPU_BF16_EMULATED_FACTOR)[part]


def probes_row_seconds(probes) -> float:
    """The CPU fallback for one row of these probes."""
    return sum(CPU_135M_PROBE_S.get(str(p), 20.0) for p in probes)


def answered_items(result: dict) -> int:
    """Test items a cell answered after training: every entry its schedule evaluated
    (`eval.rows: own-and-final` leaves the others null), each its task's items."""
    R, items = result["R"], result.get("items") or {}
    tasks = result.get("tasks") or list(items)
    n_test = (result.get("data_settings") or {}).get("n_test")
    total = 0
    for r, row in enumerate(R[1:], 1):
        for j, value in enumerate(row):
            if value is None:
                continue
            rows = items.get(tasks[j]) if j < len(tasks) else None
            answered = rows[r] if isinstance(rows, list) and r < len(rows) else None
            total += len(answered) if isinstance(answered, list) else int(n_test or 0)
    return total


TUNING_CELLS = "this OUT's tuning cells"  # an estimate's source: OUT/tuning/*/*/cells


def measured_seconds(out: Path) -> dict[str, dict]:
    """Per method, from OUT's complete cells, median seconds: per optimiser step ("step"), per
    test item answered after training ("item": answered_items), per row of the probes
    ("probes_row"), per cell in setup ("setup"), and in batched generation per optimiser
    step ("generation"). A method with no cells in OUT/cells takes its figures from its
    `harness tune` cells in OUT/tuning (same model, precision and machine: closer than the
    fallback figures), marked "from": TUNING_CELLS, with their steps and test items only:
    tuning cells run no probes, and their setup and sa-sft's and sdft-rewrite's generation
    are pools and rewrites, counted apart as the shared generation (shared_generation)."""
    found = _measured(sorted(out.glob("cells/*")))
    for method, figures in _measured(sorted(out.glob("tuning/*/*/cells/*"))).items():
        if method not in found:
            kept = ("step", "item") + (() if method in CPU_135M_POOL_S or method in
                                       CPU_135M_REWRITE_S else ("generation",))
            found[method] = {k: v for k, v in figures.items() if k in kept} | {
                "from": TUNING_CELLS}
    return found


def _measured(folders: list[Path]) -> dict[str, dict[str, float]]:
    """measured_seconds' figures from these cell folders (the complete ones)."""
    found_by: dict[str, dict[str, list[float]]] = {}
    for folder in folders:
        result, found = read_result(folder)
        if found is not CellState.COMPLETE:
            continue
        mine = found_by.setdefault(result["cell"]["method"], {})
        training = [t for t in result.get("training", [])
                    if isinstance(t, dict) and t.get("steps") and "sec_per_step" in t]
        mine.setdefault("step", []).extend(float(t["sec_per_step"]) for t in training)
        timings, rows = result.get("timings") or {}, len(result["R"]) - 1
        probed = probed_rows((result.get("eval_settings") or {}).get("probe_rows", "all"), rows)
        per_cell = {"probes_row": ("probes_s", probed), "setup": ("setup_s", 1),
                    "generation": ("generation_s", sum(int(t["steps"]) for t in training))}
        for key, (field, per) in per_cell.items():
            if isinstance(timings.get(field), (int, float)) and per:
                mine.setdefault(key, []).append(timings[field] / per)
        answered = answered_items(result)
        if isinstance(timings.get("eval_s"), (int, float)) and answered:
            probes = timings.get("probes_s")
            probes = probes if isinstance(probes, (int, float)) else 0.0
            mine.setdefault("item", []).append((timings["eval_s"] - probes) / answered)
    # the median: a cell's timings are wall clock, and a machine paused or shared during
    # one task (40 s a step against 3-5) must not move every estimate
    return {m: {k: median(v) for k, v in figures.items() if v}
            for m, figures in found_by.items() if figures.get("step")}


def estimate(cell: Cell, suite: Suite, measured: dict[str, dict[str, float]]) -> dict:
    """A cell's optimiser steps and estimated seconds of training and evaluation, with
    where the per-step and per-item figures come from; from measured cells also its setup,
    and the generation and probes within those phases (else None)."""
    steps = len(cell.tasks) * total_steps(cell.method.train, suite.data.n_train)
    from harness.methods import builtin_of

    # a preset or plugin with no cells of its own is estimated as the built-in it derives from
    own, base = cell.method.name, builtin_of(cell.method.name)
    name = own if "step" in measured.get(own, {}) else base
    figures = measured.get(name, {})
    if "step" in figures:
        per_step, source = figures["step"], figures.get("from", "this OUT") + (
            "" if name == own else f" ({name}'s cells)")
    else:
        from harness.methods.settings import modelled_as

        per_step, budget = fallback_step(base, modelled_as(cell.method)[1])
        per_step *= cpu_scale(suite, "train")
        source = "135M on 2-core CPU" + ("" if base == own else f" ({base})") + (
            f", rollouts at their full {budget} tokens: at most" if budget else "")
    rows, n_test = len(cell.tasks), suite.data.n_test
    per_item = figures.get("item", CPU_135M_ITEM_S * cpu_scale(suite, "eval"))
    known = {"setup_s": figures.get("setup"), "generation_s": figures.get("generation"),
             "probes_s": figures.get("probes_row")}
    probed = probed_rows(suite.eval.probe_rows, rows)
    scale = {"setup_s": 1, "generation_s": steps, "probes_s": probed}
    # the tasks' part grows with the entries `eval.rows` evaluates and the test items a
    # task; the probes are paid in every row that runs them (`eval.probe_rows`)
    probes_row = known["probes_s"] if known["probes_s"] is not None else (
        0.0 if "item" in figures and "from" not in figures  # grid cells that ran no probes
        else probes_row_seconds(suite.probes) * cpu_scale(suite, "eval"))
    entries = evaluated_entries(suite.eval.rows, rows)
    eval_s = probed * probes_row + entries * n_test * per_item
    row_s = probes_row + rows * n_test * per_item  # a full row, as row 0 is
    return {"steps": steps, "train_s": steps * per_step, "eval_s": eval_s, "row_s": row_s,
            "source": source} | {k: None if v is None else v * scale[k] for k, v in known.items()}
