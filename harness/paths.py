"""Where the harness keeps its caches (models, base-model evaluations, generated data)."""

import contextlib
import hashlib
import json
import os
from pathlib import Path


def cache_dir() -> Path:
    """Root cache; override with HARNESS_CACHE (CI and tests point it at a temp dir)."""
    root = os.environ.get("HARNESS_CACHE") or Path.home() / ".cache" / "harness"
    return Path(root).expanduser()


def stable_hash(obj, n: int = 16) -> str:
    """Content hash of a JSON-serialisable object (sorted keys), hex, n chars."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:n]


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file + rename, so a reader never sees a half-written file; a write
    that fails (a full disk) leaves no temp file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=False) + "\n")


def writable_problem(folder: Path) -> str | None:
    """Why files cannot be written under `folder`, or None. Checked before a run, so that
    an unwritable folder stops it before any work is lost; leaves nothing behind."""
    folder = Path(folder)
    created = []
    try:
        for parent in [*reversed(folder.parents), folder]:
            if parent.exists() and not parent.is_dir():
                return f"{parent} is a file, not a folder"
            if not parent.is_dir():
                parent.mkdir()
                created.append(parent)
        probe = folder / f".harness-write-check-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    finally:
        for made in reversed(created):
            with contextlib.suppress(OSError):
                made.rmdir()
    return None
