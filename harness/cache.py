"""Content-addressed cache for work shared across cells (base-model rows, generated data).

Entries are JSON files under <HARNESS_CACHE>/<namespace>/<hash of key>.json, written
atomically, so concurrent or interrupted runs never see a half-written entry.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from harness.paths import atomic_write_json, cache_dir, stable_hash


class Cache:
    def __init__(self, root: Path | None = None):
        self.root = root or cache_dir()

    def path(self, namespace: str, key: Any) -> Path:
        return self.root / namespace / f"{stable_hash(key, 24)}.json"

    def get_or_compute(self, namespace: str, key: Any, compute: Callable[[], Any]) -> Any:
        """Return the cached value for `key`, computing and storing it on a miss."""
        path = self.path(namespace, key)
        if path.exists():
            try:
                return json.loads(path.read_text())["value"]
            except (json.JSONDecodeError, KeyError):
                path.unlink()  # a corrupt entry is recomputed, never trusted
        value = compute()
        atomic_write_json(path, {"key": key, "value": value})
        return value
