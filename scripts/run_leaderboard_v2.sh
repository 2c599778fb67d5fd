#!/bin/bash
# Leaderboard v2's run (issue 32), resumable: the tuning, then the grid in seed pairs on both
# streams (every method gets the same (stream, seed) pairs first, so a stop leaves a
# balanced grid; --cell keeps the suite's grid id, where --seeds would make another grid).
#   bash scripts/run_leaderboard_v2.sh OUT CACHE [CODE]
# OUT: the run folder (outside the repository: a running cell's checkpoint is up to 1.5 GiB);
# CACHE: its own HARNESS_CACHE (fresh at the start, so cold-cache costs are exact); CODE: a
# checkout of the commit the run started from (default: this one). Two one-thread workers.
set -u
OUT=${1:?OUT}; export HARNESS_CACHE=${2:?CACHE}
CODE=${3:-$(cd "$(dirname "$0")/.." && pwd)}
export PYTHONPATH=$CODE
cd "$CODE"
SUITE=leaderboard-v2
run=(--suite $SUITE --out "$OUT" --jobs 2 --threads 1 --quiet)
harness tune "${run[@]}"; echo "TUNE DONE rc=$?"
[ -f "$OUT/tuned.json" ] || exit 1
for pair in "0 1" "2 3" "4 5"; do
  ids=$(harness run "${run[@]}" --settings "$OUT/tuned.json" --dry-run --json | python3 -c "
import json, sys
pair = {int(s) for s in sys.argv[1].split()}
print(','.join(c['id'] for c in json.load(sys.stdin)['cells'] if c['seed'] in pair))" "$pair")
  [ -n "$ids" ] || exit 1
  harness run "${run[@]}" --settings "$OUT/tuned.json" --cell "$ids"
  echo "GRID SEEDS $pair DONE rc=$?"
done
harness run "${run[@]}" --settings "$OUT/tuned.json"; echo "GRID DONE rc=$?"
