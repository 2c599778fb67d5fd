"""What a suite needs from outside the harness, for `harness fetch --suite NAME` (download
it all into the local caches, for clusters without internet), `--dry-run` (list it, with
sizes where known) and the offline check (a run that lacks something stops in one line
naming it).

`downloads(suite)` gathers, without network access:
- the suite's hub models (embedded models and local folders need nothing), and a judge;
- its tasks' data: a paper task's `sources()` (harness_papers/sources.py: hub dataset
  splits and files, files of GitHub repositories at pinned commits; nothing under the
  fixture switch HARNESS_PAPER_FIXTURES), or a task's `hub_datasets` (an attribute or a
  method returning a list, each a dataset id or a dict {"id", "config" or "configs",
  "files", "revision", "size_gb", "gated", "kind": "dataset" by default, or "manual" with
  "how"}); `task:<name>` probes bring their task's, other probes and method classes may
  declare `hub_datasets`;
- its lm-eval probes' datasets (from lm-eval's own task index, groups and tags expanded,
  cached per lm-eval installation) and what those tasks load at run time: Python packages,
  nltk data, `evaluate` metrics.
`fetch(suite)` downloads each item through huggingface_hub / datasets / nltk / evaluate into
their usual caches and returns one result per item; `missing(suite)` lists the items not in
the local caches; `check_offline(suite)` raises a one-line HarnessError naming them when
HF_HUB_OFFLINE or HF_DATASETS_OFFLINE is set.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

from harness.errors import HarnessError
from harness.storage import user_path

# bf16/fp16 safetensors, from the parameter count at 2 bytes (approximate)
MODEL_SIZES_GB = {
    "Qwen/Qwen2.5-3B-Instruct": 6.2, "Qwen/Qwen2.5-7B-Instruct": 15.2,
    "Qwen/Qwen2.5-14B-Instruct": 29.5, "Qwen/Qwen2.5-32B-Instruct": 65.5,
    "meta-llama/Meta-Llama-3-8B-Instruct": 16.1, "meta-llama/Llama-2-7b-chat-hf": 13.5,
    "allenai/Olmo-3-7B-Think": 14.6,
}
GATED_ORGS = ("meta-llama/",)
# weights in another format than safetensors, and original checkpoints: never needed
MODEL_SKIP = ["*.bin", "*.pth", "*.pt", "*.gguf", "*.h5", "*.msgpack", "*.onnx", "*.ot",
              "original/*", "*.tflite"]
# what an lm-eval task loads besides its dataset (lm_eval/tasks/<task>/utils.py at 0.4.13)
LMEVAL_EXTRAS = {
    "ifeval": [{"kind": "pip", "id": "langdetect", "module": "langdetect"},
               {"kind": "pip", "id": "immutabledict", "module": "immutabledict"},
               {"kind": "nltk", "id": "punkt_tab", "path": "tokenizers/punkt_tab"}],
    "humaneval": [{"kind": "metric", "id": "code_eval",
                   "how": "runs generated code: set HF_ALLOW_CODE_EVAL=1"}],
    "minerva_math": [{"kind": "pip", "id": "math-verify", "module": "math_verify"},
                     {"kind": "pip", "id": "antlr4-python3-runtime==4.11", "module": "antlr4"},
                     {"kind": "pip", "id": "sympy", "module": "sympy"}],
}


def _offline() -> bool:
    return any(os.environ.get(v, "").upper() in {"1", "ON", "YES", "TRUE"}
               for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


# --------------------------------------------------------------------------- the list

def downloads(suite, judge: str | None = None) -> list[dict]:
    """Everything `suite` needs from outside, deduplicated: {kind, id, size_gb (None if
    unknown), for (what needs it), ...}; `judge`: a judge model for `--paper` reports."""
    from harness.methods import METHODS
    from harness.probes import LmEvalProbe, get_probe
    from harness.tasks import get_task

    items: list[dict] = []
    for model, what in [(m, "models") for m in suite.models] + [(judge, "the judge")] * bool(judge):
        if is_hub_id(model):
            items.append({"kind": "model", "id": model, "size_gb": MODEL_SIZES_GB.get(model),
                          "gated": model.startswith(GATED_ORGS), "for": [what]})
    for task in dict.fromkeys(t for tasks in suite.streams.values() for t in tasks):
        items += task_items(get_task(task), f"task {task}")
    for name in suite.probes:
        probe = get_probe(name)
        if isinstance(probe, LmEvalProbe):
            items += lmeval_items(probe.task, f"probe {name}")
        elif hasattr(getattr(probe, "task", None), "sources"):  # task:<name>
            items += task_items(probe.task, f"probe {name}")
        else:
            items += _declared(probe, f"probe {name}")
    for method in suite.methods:
        try:
            items += _declared(METHODS[method.name], f"method {method.name}")
        except HarnessError:
            pass  # a plugin that does not import: its cells fail on their own
    return _merge(items)


def is_hub_id(name: str) -> bool:
    """A hub id (org/name) rather than a local folder or an embedded model's name."""
    return ("/" in name and not name.startswith((".", "/", "~"))
            and not user_path(name).exists())


def fixtures_on() -> bool:
    """Is the papers' fixture switch set (their data then come from local files)?"""
    return bool(os.environ.get("HARNESS_PAPER_FIXTURES", "").strip())


def task_items(task, what: str) -> list[dict]:
    """A task's sources (a paper task's `sources()`: hub splits and files of GitHub
    repositories at pinned commits) or its `hub_datasets`; none under the fixture switch.
    `fetch` downloads them as the task's loader does (load_dataset, hf_hub_download of a
    dataset file, datasets' DownloadManager for a repository file), into the same caches."""
    if not hasattr(task, "sources"):
        return _declared(task, what)
    if fixtures_on():
        return []
    items = []
    for source in task.sources():
        if hasattr(source, "commit"):  # a file of a GitHub repository
            items.append({"kind": "github", "id": f"{source.repo}@{source.commit[:7]}:{source.path}",
                          "urls": _repo_urls(source), "size_gb": None, "for": [what]})
            continue
        item = {"kind": "dataset", "id": source.id, "size_gb": None, "for": [what]}
        if source.config:
            item["configs"] = [source.config]
        if source.file:
            item["files"] = [source.file]
        if source.revision:
            item["revision"] = source.revision
        items.append(item)
    return items


def _repo_urls(source) -> list[str]:
    """The raw URLs a repository source is downloaded from: the file, or the Arrow file of
    a `save_to_disk` folder (as harness_papers/sources.py reads them)."""
    if source.path.endswith((".json", ".jsonl", ".csv", ".bz2", ".arrow")):
        return [source.url()]
    return [source.url("data-00000-of-00001.arrow")]


def _declared(obj, what: str) -> list[dict]:
    """An object's `hub_datasets` (attribute or method) as download items."""
    found = getattr(obj, "hub_datasets", None)
    if callable(found):
        found = found()
    items = []
    for entry in found or []:
        item = {"id": entry} if isinstance(entry, str) else dict(entry)
        if not isinstance(item.get("id"), str):
            raise HarnessError(f"{what}: hub_datasets entry {entry!r} has no id",
                               "give each entry as a dataset id or a dict with 'id'")
        item.setdefault("kind", "dataset")
        if "config" in item:
            item["configs"] = [item.pop("config")]
        item.setdefault("size_gb", None)
        items.append({**item, "for": [what]})
    return items


def _merge(items: list[dict]) -> list[dict]:
    """One item per (kind, id): configs and files united, `for` lists joined."""
    merged: dict[tuple, dict] = {}
    for item in items:
        key = (item["kind"], item["id"])
        if key not in merged:
            merged[key] = {**item, "for": list(item["for"])}
            continue
        have = merged[key]
        have["for"] += [f for f in item["for"] if f not in have["for"]]
        for field in ("configs", "files"):
            if field in have or field in item:
                if field in have and field in item:
                    have[field] = sorted(set(have[field]) | set(item[field]), key=str)
                else:  # one of them wants all of it
                    have.pop(field, None)
    return list(merged.values())


def lmeval_items(task: str, what: str) -> list[dict]:
    """The datasets (with their configs) of an lm-eval task, group or tag, and the extras
    its code loads at run time."""
    by_id: dict[str, set] = {}
    for path, name in lmeval_datasets(task):
        by_id.setdefault(path, set()).add(name)
    items = []
    for path, names in sorted(by_id.items()):
        item = {"kind": "dataset", "id": path, "size_gb": None, "for": [what]}
        if None not in names:
            item["configs"] = sorted(names)
        items.append(item)
    for prefix, extras in LMEVAL_EXTRAS.items():  # humaneval covers humaneval_instruct
        if task.startswith(prefix):
            items += [{**extra, "size_gb": None, "for": [what]} for extra in extras]
    return items


def lmeval_datasets(task: str) -> list[list]:
    """[dataset_path, dataset_name] of every leaf task under an lm-eval task, group or tag,
    read from lm-eval's task index (no download); cached per lm-eval installation."""
    import lm_eval

    from harness.storage import Cache

    key = [getattr(lm_eval, "__version__", "?"), str(Path(lm_eval.__file__).parent), task]
    return Cache().get_or_compute("lmeval_datasets", key, lambda: _resolve_lmeval(task),
                                  valid=lambda v: isinstance(v, list))


@functools.lru_cache(maxsize=1)
def _lmeval_index() -> dict:
    """lm-eval's task index (~10 s to build): built at most once per process."""
    from lm_eval.tasks import TaskManager

    return TaskManager().task_index


def _resolve_lmeval(task: str) -> list[list]:
    index = _lmeval_index()
    found, seen = set(), set()

    def walk(spec):
        if isinstance(spec, dict):
            if spec.get("dataset_path"):
                found.add((spec["dataset_path"], spec.get("dataset_name")))
            elif isinstance(spec.get("task"), (str, list)):
                walk(spec["task"])
            return
        if isinstance(spec, list):
            for sub in spec:
                walk(sub)
            return
        if spec in seen or spec not in index:
            return
        seen.add(spec)
        entry = index[spec]
        if entry.kind.name == "TAG":
            walk(sorted(entry.tags))
        elif entry.kind.name == "GROUP":
            walk((entry.cfg or {}).get("task") or [])
        elif entry.cfg and entry.cfg.get("dataset_path"):
            found.add((entry.cfg["dataset_path"], entry.cfg.get("dataset_name")))

    walk(task)
    return [list(x) for x in sorted(found, key=lambda x: (x[0], str(x[1])))]


def label(item: dict) -> str:
    """`kind id` with its configs counted, e.g. `dataset cais/mmlu (57 configs)`."""
    configs = item.get("configs")
    more = f" ({len(configs)} configs)" if configs and len(configs) > 1 else (
        f" ({configs[0]})" if configs else "")
    return f"{item['kind']} {item['id']}{more}"


def download_lines(items: list[dict]) -> list[str]:
    """The `--dry-run` listing: one line per item (sizes where known), then the total."""
    lines = []
    for item in items:
        size = f"  ~{item['size_gb']:.1f} GB" if item.get("size_gb") else ""
        extra = " (gated: accept its licence and `hf auth login`)" if item.get("gated") else ""
        how = f"; {item['how']}" if item.get("how") else ""
        lines.append(f"{label(item)}{size}{extra}  for {', '.join(item['for'])}{how}")
    known = sum(i["size_gb"] for i in items if i.get("size_gb"))
    unknown = sum(1 for i in items if not i.get("size_gb") and i["kind"] in ("model", "dataset"))
    lines.append(f"total ~{known:.1f} GB of models" + (f", plus {unknown} dataset(s) of unknown "
                                                      "size" if unknown else ""))
    return lines


# --------------------------------------------------------------------------- downloading
# The library calls, looked up at call time (tests replace them).

def snapshot_download(**kwargs) -> str:
    from huggingface_hub import snapshot_download as download

    return download(**kwargs)


def load_dataset(*args, **kwargs):
    from datasets import load_dataset as load

    return load(*args, **kwargs)


def nltk_download(name: str) -> None:
    import nltk

    if not nltk.download(name, quiet=True):
        raise HarnessError(f"nltk could not download {name}", "check the network")


def evaluate_load(name: str):
    import evaluate

    return evaluate.load(name)


def fetch(suite, log=print, judge: str | None = None) -> list[dict]:
    """Download everything `suite` needs into the local caches (the Hugging Face hub and
    datasets caches, nltk's and evaluate's); one result per item: the item with `ok` and
    `error` (why not: gated, not found, a package to install, a manual step)."""
    if _offline():
        raise HarnessError("harness fetch needs the hub, but HF_HUB_OFFLINE or "
                           "HF_DATASETS_OFFLINE is set",
                           "unset them on a machine that reaches huggingface.co")
    results = []
    for item in downloads(suite, judge):
        log(f"[fetch] {label(item)}")
        try:
            _FETCH[item["kind"]](item)
            results.append({**item, "ok": True, "error": None})
        except Exception as exc:  # one failed item must not stop the others
            results.append({**item, "ok": False, "error": _why(item, exc)})
            log(f"[fetch]   FAILED: {results[-1]['error']}")
    return results


def _why(item: dict, exc: Exception) -> str:
    name = type(exc).__name__
    if name == "GatedRepoError" or item.get("gated") and "401" in str(exc):
        return (f"gated: accept the licence at https://huggingface.co/{item['id']} and log "
                "in with `hf auth login`")
    if name in ("RepositoryNotFoundError", "DatasetNotFoundError"):
        return f"not found on the hub ({name}); check the id or log in if it is private"
    text = (str(exc).strip().splitlines() or [""])[0][:200]
    return f"{name}: {text}" if text else name


def _fetch_model(item: dict) -> None:
    folder = Path(snapshot_download(repo_id=item["id"], ignore_patterns=MODEL_SKIP))
    if not any(folder.glob("*.safetensors")):  # a model with .bin weights only
        snapshot_download(repo_id=item["id"], allow_patterns=["*.bin", "*.json"])


def _fetch_dataset(item: dict) -> None:
    if item.get("files"):
        snapshot_download(repo_id=item["id"], repo_type="dataset", allow_patterns=item["files"],
                          revision=item.get("revision"))
        return
    for config in item.get("configs") or [None]:
        kwargs = {"revision": item["revision"]} if item.get("revision") else {}
        load_dataset(item["id"], config, **kwargs)  # every split


def _fetch_github(item: dict) -> None:
    for url in item["urls"]:
        download_url(url)


def download_url(url: str) -> str:
    from datasets import DownloadManager

    return DownloadManager().download(url)


def _fetch_pip(item: dict) -> None:
    if importlib.util.find_spec(item["module"]) is None:
        raise HarnessError(f"Python package {item['id']} is not installed",
                           f"pip install '{item['id']}'")


def _fetch_manual(item: dict) -> None:
    raise HarnessError(f"{item['id']} is not on the hub", item.get("how") or "see the task's docs")


_FETCH = {"model": _fetch_model, "dataset": _fetch_dataset, "github": _fetch_github,
          "pip": _fetch_pip,
          "nltk": lambda item: nltk_download(item["id"]),
          "metric": lambda item: evaluate_load(item["id"]), "manual": _fetch_manual}


# --------------------------------------------------------------------------- offline check

def present(item: dict) -> bool:
    """Is the item in the local caches (nothing is downloaded)?"""
    kind = item["kind"]
    if kind == "model":
        try:
            folder = Path(snapshot_download(repo_id=item["id"], local_files_only=True,
                                            ignore_patterns=MODEL_SKIP))
        except Exception:
            return False
        return (folder / "config.json").is_file() and any(
            p.suffix in (".safetensors", ".bin") for p in folder.iterdir())
    if kind == "dataset":
        return _dataset_cached(item["id"])
    if kind == "github":
        return all(_url_cached(url) for url in item["urls"])
    if kind == "pip":
        return importlib.util.find_spec(item["module"]) is not None
    if kind == "nltk":
        try:
            import nltk

            nltk.data.find(item.get("path") or item["id"])
            return True
        except (LookupError, ImportError):
            return False
    if kind == "metric":
        from huggingface_hub import constants

        modules = Path(os.environ.get("HF_MODULES_CACHE", Path(constants.HF_HOME) / "modules"))
        return any((modules / "evaluate_modules" / "metrics").glob(f"*--{item['id']}"))
    return bool(item.get("path")) and user_path(item["path"]).exists()


def _dataset_cached(dataset: str) -> bool:
    """In the hub cache (a snapshot with files) or prepared in the datasets cache."""
    from datasets import config as datasets_config
    from huggingface_hub import constants

    hub = Path(constants.HF_HUB_CACHE) / f"datasets--{dataset.replace('/', '--')}" / "snapshots"
    if hub.is_dir() and any(p.is_file() or p.is_symlink() for p in hub.rglob("*")):
        return True
    prepared = Path(datasets_config.HF_DATASETS_CACHE) / dataset.replace("/", "___")
    return prepared.is_dir() and any(prepared.iterdir())


def _url_cached(url: str) -> bool:
    """Is a URL in datasets' download cache (where the repository files are fetched to)?"""
    from datasets import DownloadConfig
    from datasets.utils.file_utils import cached_path

    try:
        cached_path(url, download_config=DownloadConfig(local_files_only=True))
        return True
    except Exception:
        return False


def missing(suite, judge: str | None = None) -> list[dict]:
    """The items of `downloads(suite)` that are not in the local caches."""
    return [item for item in downloads(suite, judge) if not present(item)]


def check_offline(suite) -> None:
    """Offline (HF_HUB_OFFLINE or HF_DATASETS_OFFLINE set), stop in one line naming what
    the suite needs and the caches lack; online, do nothing (it is downloaded on use)."""
    if not _offline():
        return
    lacking = missing(suite)
    if lacking:
        shown = ", ".join(label(i) for i in lacking[:5])
        more = f" and {len(lacking) - 5} more" if len(lacking) > 5 else ""
        raise HarnessError(
            f"offline (HF_HUB_OFFLINE or HF_DATASETS_OFFLINE is set), and suite {suite.name} "
            f"needs what is not in the local Hugging Face cache: {shown}{more}",
            f"where the hub is reachable run `harness fetch --suite {suite.name}` and copy its "
            "Hugging Face cache (HF_HOME, default ~/.cache/huggingface) here; pip-install the "
            "packages listed; `--dry-run` lists everything")
