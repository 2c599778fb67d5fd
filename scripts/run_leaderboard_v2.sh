#!/bin/bash
# Leaderboard v2's run (issue 32), resumable: the tuning, then the grid in seed pairs on both
# streams (every method gets the same (stream, seed) pairs first, so a stop leaves a
# balanced grid; --cell keeps the suite's grid id, where --seeds would make another grid).
#   bash scripts/run_leaderboard_v2.sh OUT CACHE [CODE]
# OUT: the run folder (outside the repository: a running cell's checkpoint is up to 1.5 GiB);
# CACHE: its own HARNESS_CACHE (fresh at the start, so cold-cache costs are exact); CODE: a
# checkout of the commit the run started from (default: this one).
# The grid runs as two slots of one-thread `harness run` processes on the same cells, which
# split them by cell claims; a slot starts a fresh process a cell (a process that ran
# several cells grew to 9-10 GiB; a third torch process beside two such got one OOM-killed
# on 2026-12-06), retried up to 3 times if it stops early: a killed cell resumes from its
# checkpoint.
set -u
OUT=${1:?OUT}; export HARNESS_CACHE=${2:?CACHE}
SELF=$(cd "$(dirname "$0")/.." && pwd)  # this checkout (its machine check below)
CODE=${3:-$SELF}
export PYTHONPATH=$CODE
cd "$CODE"
command -v harness > /dev/null || {  # else every step fails on its own and the log fills up
  echo "run_leaderboard_v2.sh: 'harness' is not on PATH; activate the environment it is installed in (source .venv/bin/activate) and run again" >&2
  exit 2; }
# One machine for the whole grid: cells from another processor are not re-run exactly by a
# verifier on either, their costs do not compare, and on a CPU without native bf16 this
# bf16 grid trains ~20x slower (harness.launch.grid_machine_problem). V2_ANY_MACHINE=1
# overrides.
SUITE=${V2_SUITE:-leaderboard-v2}  # another suite file: the rehearsal in tests/test_publish_v2_shape.py
(cd "$SELF" && PYTHONPATH=$SELF python3 -c "import sys; from pathlib import Path
from harness.config import load_suite
from harness.launch import grid_machine_problem
problem = grid_machine_problem(Path(sys.argv[1]), load_suite(sys.argv[2]).precision)
sys.exit(problem and 'run_leaderboard_v2.sh: ' + problem + ', or set V2_ANY_MACHINE=1 to mix machines in this grid')" "$(realpath -m "$OUT")" "$SUITE") || [ "${V2_ANY_MACHINE:-}" = 1 ] || exit 2
run=(--suite $SUITE --out "$OUT" --threads 1 --quiet)
harness tune "${run[@]}" --jobs 2; echo "TUNE DONE rc=$?"
[ -f "$OUT/tuned.json" ] || exit 1

held() {  # does a live process hold cell $1's claim (harness.claims.holder)? 0.1 s, where
  # starting `harness run` only to be told so costs about 10 CPU s
  python3 -c "import sys; from pathlib import Path; from harness.claims import holder
sys.exit(0 if holder(Path(sys.argv[1])) else 1)" "$OUT/cells/$1"
}

slot() {  # the cells $2 in order, a fresh process each (see above); a complete cell, or one
  # the other slot holds, is skipped before starting a process (the claim decides a tie)
  local id try rc
  for id in ${2//,/ }; do
    [ -f "$OUT/cells/$id/result.json" ] && continue
    held "$id" && continue
    for try in 1 2 3; do
      harness run "${run[@]}" --settings "$OUT/tuned.json" --cell "$id" 2>&1 | sed -u "s/^/[p$1] /"
      rc=${PIPESTATUS[0]}
      [ "$rc" -eq 0 ] && break
      echo "[p$1] $id stopped with rc=$rc (try $try of 3)"
    done
  done
}

for pair in "0 1" "2 3" "4 5"; do
  ids=$(harness run "${run[@]}" --settings "$OUT/tuned.json" --dry-run --json | python3 -c "
import json, sys
pair = {int(s) for s in sys.argv[1].split()}
print(','.join(c['id'] for c in json.load(sys.stdin)['cells'] if c['seed'] in pair))" "$pair")
  [ -n "$ids" ] || continue  # a suite with fewer seeds (the rehearsal)
  slot 1 "$ids" & (sleep 30; slot 2 "$ids") & wait  # slot 1 claims first, not a tie
  echo "GRID SEEDS $pair DONE"
done
harness run "${run[@]}" --jobs 2 --settings "$OUT/tuned.json"; rc=$?; echo "GRID DONE rc=$rc"
exit $rc
