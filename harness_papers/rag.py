"""SelfAug (2025; suite selfaug-2025): CRAG and RAG-Instruct for training, ChatRAG-Bench's
QuAC, QReCC and INSCIT for evaluation (../shared/PAPERS.md §4.3, §4.6). SelfAug publishes no
prompt and no HTML processing: ours are the numbered documents then the question in the user
turn (harness_papers.templates.rag_prompt), page text stripped of its tags (snippet when a
page is empty), each document cut to a character budget [ours]."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from harness_papers import scorers, templates
from harness_papers.base import PaperTask
from harness_papers.sources import Hub
from harness.errors import HarnessError
from harness.judge import TernaryRubric
from harness.tasks import Example

DOC_CHARS = 3000  # per document; five documents stay under ~4k tokens [ours]
CRAG_FILE = "crag_task_1_dev_v4_release.jsonl.bz2"


class _Text(HTMLParser):
    SKIP = {"script", "style", "noscript", "head", "template"}

    def __init__(self):
        super().__init__()
        self.parts, self.skipping = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skipping += 1

    def handle_endtag(self, tag):
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """The visible text of an HTML page, whitespace collapsed (scripts and styles dropped)."""
    parser = _Text()
    parser.feed(html or "")
    parser.close()
    return re.sub(r"\s+", " ", " ".join(parser.parts)).strip()


def crag_documents(results: list[dict], k: int = 5, chars: int = DOC_CHARS) -> list[tuple[str, str]]:
    """(title, text) of the first `k` search results: the page's text, or its snippet."""
    docs = []
    for page in results[:k]:
        text = html_to_text(page.get("page_result") or "") or (page.get("page_snippet") or "")
        docs.append((page.get("page_name") or "", text[:chars].strip()))
    return docs


class CragRubric(TernaryRubric):
    """CRAG: exact matches and "I don't know" answers by rule, the judge for the rest."""

    name = "crag"

    def decide(self, item):
        return scorers.crag_rule(item.answer, item.references)


class RagTask(PaperTask):
    paper = "selfaug-2025"
    max_new_tokens = 256


class Crag(RagTask):
    name = "crag"
    dataset = "Rickyoung0221/crag"
    description = ("CRAG task 1 (split 0 to train, split 1 to test; five pages as context): "
                   "exact match to answer/alt_ans; the paper's score needs a judge")
    train_source = Hub("Rickyoung0221/crag", "train", file=CRAG_FILE)
    judged = "crag"
    notes = "third-party hub copy of the official crag_task_1_and_2_dev_v4 file; context [ours]"

    def load(self):
        from harness_papers.sources import load_rows

        rows = load_rows(self.train_source)
        return ([r for r in rows if int(r["split"]) == 0], [r for r in rows if int(r["split"]) == 1])

    def rubric(self):
        return CragRubric()

    def example(self, row):
        golds = [str(row["answer"])] + [str(a) for a in row.get("alt_ans") or []]
        prompt = templates.rag_prompt(row["query"], crag_documents(row.get("search_results") or []),
                                      row.get("query_time") or "")
        return Example(prompt, str(row["answer"]), json.dumps(golds), key=row["query"].strip())

    def score(self, output, target):
        return float(scorers.crag_rule(output, json.loads(target)) == 1.0)


QUESTION_FIELDS, ANSWER_FIELDS = ("question", "instruction", "query"), ("answer", "output", "response")
DOCUMENT_FIELDS = ("documents", "docs", "passages", "context", "ctxs", "input")


def _field(row: dict, names, what: str):
    for name in names:
        if name in row:
            return row[name]
    raise HarnessError(f"RAG-Instruct row has no {what} field (tried {', '.join(names)}; "
                       f"found {', '.join(sorted(row))})",
                       "report the dataset's field names; harness_papers/rag.py maps them")


def _documents(value) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [("", value[:DOC_CHARS])] if value.strip() else []
    docs = []
    for doc in value or []:
        if isinstance(doc, dict):
            docs.append((doc.get("title") or "", (doc.get("text") or doc.get("content") or "")[:DOC_CHARS]))
        else:
            docs.append(("", str(doc)[:DOC_CHARS]))
    return docs


class RagInstruct(RagTask):
    name = "rag_instruct"
    dataset = "FreedomIntelligence/RAG-Instruct"
    description = ("RAG-Instruct (40.5k, train split only): documents and question in the user "
                   "turn; ROUGE-L on 500 held-out items [ours; the paper has no in-domain metric]")
    train_source = Hub("FreedomIntelligence/RAG-Instruct", "train")
    holdout_test = 500
    max_new_tokens = 512
    notes = "field names unconfirmed: question/instruction/query, answer/output/response, documents"

    def example(self, row):
        question = _field(row, QUESTION_FIELDS, "question")
        answer = str(_field(row, ANSWER_FIELDS, "answer")).strip()
        docs = next((_documents(row[f]) for f in DOCUMENT_FIELDS if f in row), [])
        return Example(templates.rag_prompt(question, docs), answer, answer, key=question.strip())

    def score(self, output, target):
        return scorers.rouge_l(output, target)


class ChatRag(RagTask):
    """A ChatRAG-Bench subset, evaluation only: the conversation's last user turn with the
    earlier turns and the top-5 retrieved chunks; token F1, best over the gold answers."""

    dataset = "nvidia/ChatRAG-Bench"
    eval_only = True

    def test_example(self, row):
        turns = [(m["role"], m["content"]) for m in row["messages"]]
        question = turns[-1][1]
        docs = [(c.get("title") or "", (c.get("text") or "")[:DOC_CHARS]) for c in (row.get("ctxs") or [])[:5]]
        answers = [str(a) for a in row["answers"]]
        return Example(templates.rag_prompt(question, docs, history=turns[:-1]), answers[0],
                       json.dumps(answers))

    def score(self, output, target):
        return scorers.best_token_f1(output, json.loads(target))


class ChatRagQuac(ChatRag):
    name = "chatrag_quac"
    description = "ChatRAG-Bench QuAC (test), evaluation only: token F1"
    test_source = Hub("nvidia/ChatRAG-Bench", "test", "quac")


class ChatRagQrecc(ChatRag):
    name = "chatrag_qrecc"
    description = "ChatRAG-Bench QReCC (test), evaluation only: token F1"
    test_source = Hub("nvidia/ChatRAG-Bench", "test", "qrecc")


class ChatRagInscit(ChatRag):
    name = "chatrag_inscit"
    description = "ChatRAG-Bench INSCIT (dev), evaluation only: token F1"
    test_source = Hub("nvidia/ChatRAG-Bench", "dev", "inscit")
