"""Content-addressed cache for work shared across cells (base-model rows, generated data).

Entries are JSON files under <HARNESS_CACHE>/<namespace>/<hash of key>.json, written
atomically, so concurrent or interrupted runs never see a half-written entry.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Callable

from harness.paths import atomic_write_json, cache_dir, stable_hash

_MISSING = object()


class Cache:
    def __init__(self, root: Path | None = None):
        self.root = root or cache_dir()

    def path(self, namespace: str, key: Any) -> Path:
        return self.root / namespace / f"{stable_hash(key, 24)}.json"

    def get_or_compute(self, namespace: str, key: Any, compute: Callable[[], Any],
                       valid: Callable[[Any], bool] | None = None) -> Any:
        """Return the cached value for `key`, computing and storing it on a miss.

        An entry that cannot be read, is not {"value": ...}, or whose value fails `valid`
        (the caller's shape check) counts as a miss and is rebuilt: a damaged cache must
        never fail the cells that share it.
        """
        path = self.path(namespace, key)
        value = self._read(path)
        if value is not _MISSING and (valid is None or valid(value)):
            return value
        value = compute()
        atomic_write_json(path, {"key": key, "value": value})
        return value

    @staticmethod
    def _read(path: Path) -> Any:
        if not path.exists():
            return _MISSING
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError):
            entry = None
        if isinstance(entry, dict) and "value" in entry:
            return entry["value"]
        with contextlib.suppress(OSError):
            path.unlink()  # a corrupt entry is recomputed, never trusted
        return _MISSING
