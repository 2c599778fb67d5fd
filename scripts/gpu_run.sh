#!/usr/bin/env bash
# The GPU checks in one command for a short GPU lease (issue 33; docs/gpu.md).
#   bash scripts/gpu_run.sh          on the GPU machine, once per carried .gpu/K
#   bash scripts/gpu_run.sh --dry    here, on the CPU: the whole flow on the tiny model
# Options: python3 scripts/gpu_run.py run --help
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" -u scripts/gpu_run.py run "$@"
