#!/usr/bin/env bash
# Precision learning check and quickstart cell cost (issue 14), one process at a time on an
# otherwise idle machine: the quickstart's SFT cell, seeds 0-2, fp32 and bf16 interleaved
# (same code), plus seed 0 with the code before the speed work (OLD_TREE, a checkout of
# 084fb7f) first and last, for the wall-clock comparison.
# Results: runs/precision-{old,fp32,bf16,old-again}/cells.
# Summaries: python -m scripts.diagnostics.precision_table runs
# (this session's cells: benchmarks/diagnostics/precision-results)
set -euo pipefail
OLD_TREE=${OLD_TREE:-/tmp/wt}
export OMP_NUM_THREADS=${THREADS:-2}
run() { python -m harness.cli run --suite quickstart --methods sft --quiet "$@"; }
old() {  # the pre-speed-work code, at the start and at the end (brackets drift in load)
  (cd "$OLD_TREE" && python -m harness.cli run --suite quickstart --methods sft --seeds 0 \
     --quiet --out "$OLDPWD/runs/precision-old$1")
}
old ""
for seed in 0 1 2; do
  run --seeds "$seed" --precision fp32 --out runs/precision-fp32
  run --seeds "$seed" --precision bf16 --out runs/precision-bf16
done
old "-again"
