#!/bin/bash
# Commit leaderboard v2's complete cells as they land (issue 32): copy OUT's complete tuning
# and grid cells (those with result.json) into leaderboard/v2/, without a running cell's
# checkpoint or claim, with the tuning table and chosen settings, and commit them.
#   bash scripts/commit_leaderboard_v2.sh OUT            # once
#   bash scripts/commit_leaderboard_v2.sh OUT --every 900  # every 15 minutes, until killed
set -u
OUT=${1:?OUT}; EVERY=
if [ "${2:-}" = "--every" ]; then EVERY=${3:?--every SECONDS}; fi
cd "$(dirname "$0")/.."
DEST=leaderboard/v2
once() {
  local n=0 c rel dest
  for c in "$OUT"/tuning/*/*/cells/*/ "$OUT"/cells/*/; do
    [ -f "$c/result.json" ] || continue
    rel=${c#"$OUT"/}; dest=$DEST/${rel%/}
    [ -f "$dest/result.json" ] && continue
    mkdir -p "$(dirname "$dest")"; rm -rf "$dest"; cp -r "$c" "$dest"
    rm -f "$dest/checkpoint.pt" "$dest/claim.json"; n=$((n + 1))
  done
  for f in tuning.json tuning.md tuned.json; do [ -f "$OUT/$f" ] && cp "$OUT/$f" "$DEST/$f"; done
  git add "$DEST"
  git diff --cached --quiet -- "$DEST" && return 0  # nothing new
  local t g
  t=$(find "$DEST/tuning" -name result.json 2>/dev/null | wc -l)
  g=$(find "$DEST/cells" -name result.json 2>/dev/null | wc -l)
  git commit -qm "leaderboard v2: $t of 56 tuning cells, $g of 168 grid cells complete" -- "$DEST" \
    && echo "$(date -u +%H:%M) committed $n new cell(s): $t tuning, $g grid"
  return 0
}
once
while [ -n "$EVERY" ]; do sleep "$EVERY"; once; done
