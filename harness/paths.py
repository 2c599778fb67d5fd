"""Where the harness keeps its caches (models, base-model evaluations, generated data)."""

import hashlib
import json
import os
from pathlib import Path


def cache_dir() -> Path:
    """Root cache; override with HARNESS_CACHE (CI and tests point it at a temp dir)."""
    root = os.environ.get("HARNESS_CACHE") or Path.home() / ".cache" / "harness"
    return Path(root)


def stable_hash(obj, n: int = 16) -> str:
    """Content hash of a JSON-serialisable object (sorted keys), hex, n chars."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:n]


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file + rename, so a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=False) + "\n")
