"""The papers' aggregate numbers (../shared/PAPERS.md §6, items 29-32), from per-benchmark
values. An aggregate that lacks one of its parts is None with the reason (the parts that
are missing), never an average over fewer parts under the paper's name."""

from __future__ import annotations

from dataclasses import dataclass

ARC_SIZES = {"arc_easy": 2376, "arc_challenge": 1172}  # test-set sizes (lm-eval ai2_arc)
PRIOR_CAPABILITY = ("hellaswag", "humaneval", "ifeval", "mmlu", "truthfulqa", "winogrande")
SELFAUG_TABLE1 = ("crag", "bioasq", "omnieval", "math", "humaneval", "ifeval", "mmlu", "arc_c",
                  "hellaswag")  # ChatRAG is reported but not averaged
SELFAUG_TABLE5 = ("crag", "chatrag", "bioasq", "omnieval", "ifeval")


@dataclass(frozen=True)
class Aggregate:
    value: float | None
    reason: str = ""


def _missing(values: dict, names) -> list[str]:
    return [n for n in names if values.get(n) is None]


def ai2_arc(values: dict[str, float], sizes: dict[str, int] | None = None) -> Aggregate:
    """SDFT-Yang's "ai2_arc": the size-weighted mean of `arc_easy` and `arc_challenge` acc
    (the old lm-eval group score); `sizes` default to the test sets' (2,376 and 1,172)."""
    sizes = sizes or ARC_SIZES
    missing = _missing(values, ARC_SIZES)
    if missing:
        return Aggregate(None, f"missing {', '.join(missing)}")
    total = sum(sizes[n] for n in ARC_SIZES)
    return Aggregate(sum(values[n] * sizes[n] for n in ARC_SIZES) / total, "size-weighted")


def prior_capability(values: dict[str, float]) -> Aggregate:
    """On-policy SDFT's "prior capabilities": the plain mean of the six benchmarks."""
    missing = _missing(values, PRIOR_CAPABILITY)
    if missing:
        return Aggregate(None, f"missing {', '.join(missing)}")
    return Aggregate(sum(values[n] for n in PRIOR_CAPABILITY) / len(PRIOR_CAPABILITY), "mean of 6")


def crag_to_percent(score_x100: float) -> float:
    """SelfAug maps the CRAG score (x100, in [-100, 100]) to [0, 100] before averaging."""
    return (score_x100 + 100) / 2


def selfaug_average(values: dict[str, float], columns=SELFAUG_TABLE1) -> Aggregate:
    """SelfAug's Average: the mean of `columns` (Table 1: nine benchmarks without ChatRAG;
    Table 5: its five columns), all on the x100 scale, CRAG mapped by `crag_to_percent`."""
    missing = _missing(values, columns)
    if missing:
        return Aggregate(None, f"missing {', '.join(missing)}")
    parts = [crag_to_percent(values[c]) if c == "crag" else values[c] for c in columns]
    return Aggregate(sum(parts) / len(parts), f"mean of {len(parts)}, CRAG as (x+100)/2")


def sequential_normalised(curves: dict[str, list[float]], base: float) -> dict[str, list[float | None]]:
    """On-policy SDFT's Fig. 3, for one task: each method's accuracy over the sequence,
    rescaled so that 0 is the base model's accuracy and 1 the maximum any method reached
    on that task. None everywhere when no method rose above the base (the scale is undefined)."""
    top = max((v for c in curves.values() for v in c), default=base)
    if top <= base:
        return {m: [None] * len(c) for m, c in curves.items()}
    return {m: [(v - base) / (top - base) for v in c] for m, c in curves.items()}
