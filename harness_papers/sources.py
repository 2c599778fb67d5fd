"""Where the papers' data come from: the Hugging Face hub, files of a GitHub repository at
a pinned commit, or, with `HARNESS_PAPER_FIXTURES=<folder>`, small local files of the same
shape (same fields, splits and file formats; tests/fixtures/papers/ ships one).

Every read goes through `datasets`, so HF_HUB_OFFLINE / HF_DATASETS_OFFLINE are honoured
and downloads land in the Hugging Face cache (`harness fetch` fills it ahead of time). A
source that cannot be read raises HarnessError: one line naming the dataset and how to
fetch it.

Fixture layout, under the fixtures folder:
- hub datasets: `hub/<owner>/<name>/<config or default>/<split>.jsonl`, one row a line
- repository files: `github/<owner>/<name>/<path in the repository>`, in the repository's
  own format (JSON list, CSV, an Arrow folder written by `save_to_disk`, `.jsonl.bz2`)
"""

from __future__ import annotations

import bz2
import json
import os
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError

FIXTURES_ENV = "HARNESS_PAPER_FIXTURES"
REPOS_ENV = "HARNESS_PAPER_REPOS"  # a folder holding <owner>/<name>/ checkouts at the pinned commits
FETCH_HINT = "run `harness fetch --suite NAME` where the network is reachable"


def fixtures_root() -> Path | None:
    """The fixtures folder when the switch is set, else None."""
    value = os.environ.get(FIXTURES_ENV, "").strip()
    if not value:
        return None
    root = Path(value).expanduser()
    if not root.is_dir():
        raise HarnessError(f"{FIXTURES_ENV}={value} is not a folder",
                           "point it at a folder of paper fixtures, e.g. tests/fixtures/papers")
    return root


def offline() -> bool:
    flags = (os.environ.get(k, "").strip().lower() for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
    return any(f in ("1", "true", "yes", "on") for f in flags)


@dataclass(frozen=True)
class Hub:
    """A split of a hub dataset: `load_dataset(id, config, split=split, revision=revision)`."""

    id: str
    split: str
    config: str | None = None
    revision: str | None = None
    file: str | None = None  # a raw file of the dataset repository, read as the repository's files are

    def describe(self) -> str:
        extra = [f"config {self.config}"] if self.config else []
        extra += [f"file {self.file}"] if self.file else []
        extra += [f"split {self.split}"] + ([f"revision {self.revision}"] if self.revision else [])
        return f"dataset '{self.id}' ({', '.join(extra)})"

    def fetch_hint(self) -> str:
        return (f"{FETCH_HINT}, or `huggingface-cli download --repo-type dataset {self.id}`; "
                f"offline tests: set {FIXTURES_ENV}=tests/fixtures/papers")


@dataclass(frozen=True)
class Repo:
    """A file (or Arrow folder) of a GitHub repository at a pinned commit."""

    repo: str  # owner/name
    commit: str  # full 40-character sha
    path: str

    def describe(self) -> str:
        return f"file '{self.repo}@{self.commit[:7]}:{self.path}'"

    def url(self, name: str | None = None) -> str:
        path = f"{self.path}/{name}" if name else self.path
        return f"https://raw.githubusercontent.com/{self.repo}/{self.commit}/{path}"

    def fetch_hint(self) -> str:
        return (f"{FETCH_HINT}, or set {REPOS_ENV} to a folder holding {self.repo} checked out at "
                f"{self.commit[:7]}; offline tests: set {FIXTURES_ENV}=tests/fixtures/papers")


def load_rows(source: Hub | Repo) -> list[dict]:
    """The rows of `source` as plain dicts, from the fixtures when the switch is set."""
    try:
        rows = _read(source)
    except HarnessError:
        raise
    except Exception as exc:  # datasets raises many kinds when a file is missing or offline
        why = "not in the local cache and the hub is offline" if offline() else \
            f"could not be read ({type(exc).__name__}: {' '.join(str(exc).split())[:160]})"
        raise HarnessError(f"{source.describe()} {why}", source.fetch_hint()) from exc
    return rows


def _read(source: Hub | Repo) -> list[dict]:
    root = fixtures_root()
    if isinstance(source, Hub):
        if root is not None and source.file:
            return _local(root / "hub" / source.id / source.file, source)
        if root is not None:
            file = root / "hub" / source.id / (source.config or "default") / f"{source.split}.jsonl"
            return _local(file, source)
        return _hub(source)
    local = root / "github" / source.repo / source.path if root is not None else None
    if local is None and os.environ.get(REPOS_ENV):
        local = Path(os.environ[REPOS_ENV]).expanduser() / source.repo / source.path
    if local is not None:
        return _local(local, source)
    return _remote(source)


def _hub(source: Hub) -> list[dict]:
    if source.file:
        from huggingface_hub import hf_hub_download

        path = hf_hub_download(source.id, source.file, repo_type="dataset", revision=source.revision)
        return _parse(Path(path), _kind(source.file))
    import datasets

    return datasets.load_dataset(source.id, source.config, split=source.split,
                                 revision=source.revision).to_list()


def _kind(path: str) -> str:
    for suffix, kind in ((".jsonl.bz2", "jsonl.bz2"), (".jsonl", "jsonl"), (".json", "json"),
                         (".csv", "csv"), (".arrow", "arrow")):
        if path.endswith(suffix):
            return kind
    return "arrow-folder"  # a `save_to_disk` folder: data-00000-of-00001.arrow inside


def _local(path: Path, source) -> list[dict]:
    if not path.exists():
        where = "fixture" if fixtures_root() is not None else "local copy"
        raise HarnessError(f"{source.describe()}: no {where} at {path}", source.fetch_hint())
    kind = _kind(str(path))
    if kind == "arrow-folder":
        return _parse(path / ARROW_FILE, "arrow")
    return _parse(path, kind)


ARROW_FILE = "data-00000-of-00001.arrow"


def _remote(source: Repo) -> list[dict]:
    """A repository file, downloaded through `datasets` into its cache (offline: read
    from the cache) and parsed exactly as a local copy is."""
    from datasets import DownloadManager

    kind = _kind(source.path)
    if kind == "arrow-folder":
        url, kind = source.url(ARROW_FILE), "arrow"
    else:
        url = source.url()
    return _parse(Path(DownloadManager().download(url)), kind)


def _parse(path: Path, kind: str) -> list[dict]:
    if kind == "arrow":
        from datasets import Dataset

        return Dataset.from_file(str(path), in_memory=True).to_list()
    if kind == "csv":
        import csv

        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    opener = bz2.open if kind == "jsonl.bz2" else open
    with opener(path, "rt", encoding="utf-8") as f:
        if kind == "json":
            return json.load(f)
        return [json.loads(line) for line in f if line.strip()]
