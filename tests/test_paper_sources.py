"""harness_papers/sources.py off the fixture switch: what the hub path asks `datasets`
and huggingface_hub for, the repository path through datasets' download manager (a local
HTTP server stands in for raw.githubusercontent.com), local checkouts under
HARNESS_PAPER_REPOS, and the authors' shipped rewrites."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest

from harness_papers import sources
from harness_papers.sources import Hub, Repo, load_rows
from harness.errors import HarnessError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "papers"


@pytest.fixture(autouse=True)
def no_switch(monkeypatch):
    for var in (sources.FIXTURES_ENV, sources.REPOS_ENV):
        monkeypatch.delenv(var, raising=False)


def test_the_hub_path_asks_datasets_for_the_split(monkeypatch):
    import datasets

    calls = []

    def fake_load(path, name=None, split=None, revision=None):
        calls.append((path, name, split, revision))
        return datasets.Dataset.from_list([{"question": "q", "answer": "#### 1"}])

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    assert load_rows(Hub("openai/gsm8k", "test", "main", revision="abc")) == [{"question": "q", "answer": "#### 1"}]
    assert calls == [("openai/gsm8k", "main", "test", "abc")]


def test_a_hub_file_comes_through_hf_hub_download(monkeypatch):
    import huggingface_hub

    asked = []
    crag = FIXTURES / "hub" / "Rickyoung0221" / "crag" / "crag_task_1_dev_v4_release.jsonl.bz2"

    def fake_download(repo_id, filename, repo_type=None, revision=None):
        asked.append((repo_id, filename, repo_type, revision))
        return str(crag)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    rows = load_rows(Hub("Rickyoung0221/crag", "train", file="crag_task_1_dev_v4_release.jsonl.bz2"))
    assert len(rows) == 6 and rows[0]["query"].startswith("which studio")
    assert asked == [("Rickyoung0221/crag", "crag_task_1_dev_v4_release.jsonl.bz2", "dataset", None)]


def test_an_error_while_online_names_the_source_and_the_cause(monkeypatch):
    import datasets

    def failing(*args, **kwargs):
        raise ConnectionError("no route to host\nsecond line")

    monkeypatch.setattr(datasets, "load_dataset", failing)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    with pytest.raises(HarnessError) as info:
        load_rows(Hub("nvidia/ChatRAG-Bench", "test", "quac"))
    text = str(info.value)
    assert "\n" not in text and "dataset 'nvidia/ChatRAG-Bench' (config quac, split test)" in text
    assert "ConnectionError: no route to host second line" in text


@pytest.fixture
def github(monkeypatch, tmp_path):
    """Serve tests/fixtures/papers/github over HTTP and point Repo URLs at it."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(FIXTURES / "github"))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    seen = []

    def url(self, name=None):
        path = f"{self.path}/{name}" if name else self.path
        seen.append((self.commit, path))
        return f"{base}/{self.repo}/{path}"

    monkeypatch.setattr(Repo, "url", url)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    monkeypatch.setattr("datasets.config.DOWNLOADED_DATASETS_PATH", tmp_path / "datasets" / "downloads")
    yield seen
    server.shutdown()


def test_repository_files_download_and_parse_like_local_copies(github):
    from harness_papers.onpolicy import SD_COMMIT
    from harness_papers.yang import SDFT_COMMIT

    func = load_rows(Repo("sail-sg/sdft", SDFT_COMMIT, "data/openfunction/openfunction_test.json"))
    assert [r["output"] for r in func] == ['places.find(location="Porto", kind="bakery")', "math.sqrt(x=81)"]
    csv_rows = load_rows(Repo("sail-sg/sdft", SDFT_COMMIT, "data/harmful_behaviors.csv"))
    assert len(csv_rows) == 3 and set(csv_rows[0]) == {"goal", "target"}
    tool = load_rows(Repo("idanshen/Self-Distillation", SD_COMMIT, "data/tooluse_data/eval_data"))
    assert len(tool) == 2 and tool[0]["golden_answer"][0]["Action"] == "getBird"
    assert github[-1] == (SD_COMMIT, "data/tooluse_data/eval_data/data-00000-of-00001.arrow")


def test_local_checkouts(monkeypatch):
    from harness_papers.yang import SDFT_COMMIT

    monkeypatch.setenv(sources.REPOS_ENV, str(FIXTURES / "github"))
    rows = load_rows(Repo("sail-sg/sdft", SDFT_COMMIT, "data/lima/lima_train.json"))
    assert len(rows) == 5 and rows[2]["history"] == [["Can you suggest a name for a black kitten?", "Shadow or Onyx."]]
    with pytest.raises(HarnessError, match="no local copy at .*missing.json"):
        load_rows(Repo("sail-sg/sdft", SDFT_COMMIT, "data/missing.json"))


def test_the_switch_must_name_a_folder(monkeypatch, tmp_path):
    monkeypatch.setenv(sources.FIXTURES_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(HarnessError, match="is not a folder"):
        load_rows(Hub("openai/gsm8k", "test", "main"))
    monkeypatch.setenv(sources.FIXTURES_ENV, str(tmp_path))
    with pytest.raises(HarnessError, match="no fixture at .*gsm8k/main/test.jsonl"):
        load_rows(Hub("openai/gsm8k", "test", "main"))


def test_the_authors_rewrites_and_their_acceptance(monkeypatch):
    from harness_papers.yang import authors_rewrites, rewrite_acceptance

    monkeypatch.setenv(sources.FIXTURES_ENV, str(FIXTURES))
    original = load_rows(Repo("sail-sg/sdft", "x" * 40, "data/alpaca/alpaca_train.json"))
    assert rewrite_acceptance(original, authors_rewrites("alpaca")) == pytest.approx(2 / 6)
    func = load_rows(Repo("sail-sg/sdft", "x" * 40, "data/openfunction/openfunction_train.json"))
    assert rewrite_acceptance(func, authors_rewrites("openfunction")) == pytest.approx(1 / 5)
    with pytest.raises(ValueError):
        rewrite_acceptance(original, original[:2])
