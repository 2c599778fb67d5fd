"""A diagnostic, not a test (pytest does not collect it): does a process that runs many
cells keep memory? After each cell of a tiny-Llama grid run one after another in one process: the live torch tensors (count, bytes), the RSS, and the RSS
after glibc's malloc_trim (what the allocator held but nothing used). docs/performance.md,
"Memory across cells in one process". From the repository root:

    python tests/cell_memory_diagnostic.py sft,ewc,sdft,sa-sft,lwf,replay [WORKDIR]
"""
import ctypes
import gc
import os
import shutil
import sys
from pathlib import Path

import psutil
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.config import load_suite  # noqa: E402
from harness.grid import expand  # noqa: E402
from harness.runner import Runner  # noqa: E402
from harness.ui import UI  # noqa: E402
from tests.conftest import build_tiny_model  # noqa: E402
from tests.helpers import tiny_suite  # noqa: E402

torch.set_num_threads(1)
root = Path(sys.argv[2] if len(sys.argv) > 2 else "/tmp/cell-memory")
root.mkdir(parents=True, exist_ok=True)
os.environ["HARNESS_CACHE"] = str(root / "cache")
model = root / "model"
if not (model / "config.json").exists():
    build_tiny_model(model)
methods = {m: {} for m in sys.argv[1].split(",")}
suite = load_suite(tiny_suite(root, str(model), methods=methods, seeds=[0, 1, 2]))
cells = expand(suite)
shutil.rmtree(root / "out", ignore_errors=True)  # complete cells would be skipped
runner = Runner(suite, root / "out", torch.device("cpu"), UI(quiet=True))


def live() -> tuple[int, int]:
    """(bytes, count) of the torch tensors alive after a full collection."""
    gc.collect()
    seen, total = set(), 0
    for o in gc.get_objects():
        try:
            if isinstance(o, torch.Tensor) and id(o) not in seen:
                seen.add(id(o))
                total += o.numel() * o.element_size()
        except Exception:  # an object whose isinstance check raises: not a tensor
            pass
    return total, len(seen)


proc = psutil.Process()
for c in cells:
    runner.run([c])
    b, n = live()
    rss = proc.memory_info().rss
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    print(f"{c.id}: live tensors {n} {b / 1e6:.2f} MB; rss {rss / 1e6:.0f} MB, after "
          f"malloc_trim {proc.memory_info().rss / 1e6:.0f} MB", flush=True)
