"""SDFT by rewriting (Yang et al., ACL 2024; suite sdft-rewrite-2024): the seven training
sets and the evaluation sets of ../shared/PAPERS.md §3, with the paper's templates (plain
LLaMA-Factory text, no chat template) and scorers.

Data: GSM8K and MultiArith from the hub (GSM8K preprocessed as the authors did); the rest
from the authors' repository `sail-sg/sdft` at `bfb6c25` (the files are the same on the
`reproduce` branch, which has no OpenHermes). The instruction-following sets (Alpaca, Dolly,
LIMA, OpenHermes, MagiCoder) have no test split and no in-domain metric in the paper: we hold
out 100 items and score ROUGE-L against the reference [ours; a proxy, not a paper metric].
"""

from __future__ import annotations

import re

from harness_papers import scorers, templates
from harness_papers.base import PaperTask
from harness_papers.sources import Hub, Repo
from harness.tasks import Example

SDFT_REPO, SDFT_COMMIT = "sail-sg/sdft", "bfb6c255fccdce7459235c20f19a3b9817a9cd5d"
SAMPLED = "sampled: temperature 0.95, top-p 0.7, top-k 50, max 512 new tokens (LLaMA-Factory defaults)"


def sdft_file(path: str) -> Repo:
    return Repo(SDFT_REPO, SDFT_COMMIT, f"data/{path}")


def gsm8k_answer(answer: str) -> str:
    """The authors' GSM8K preprocessing: calculator annotations `<<48/2=24>>` removed and the
    final `#### N` line written as `The answer is N.`"""
    text = re.sub(r"<<[^>]*>>", "", answer)
    return re.sub(r"####\s*(.+?)\s*$", r"The answer is \1.", text.strip())


class YangTask(PaperTask):
    paper = "sdft-rewrite-2024"
    chat_template = False
    max_new_tokens = 512
    paper_decoding = SAMPLED
    rewrite_template = "alpaca_distill_using"

    def rewrite_prompt(self, example: Example) -> str:
        """The paper's rewrite input for a training example (`example.key` holds the query)."""
        return templates.YANG_TEMPLATES[self.rewrite_template](example.key, example.response)

    def accept_rewrite(self, example, text):
        """Yang's filter: the ban list, then the task's own check (none by default)."""
        return scorers.rewrite_passes_ban_list(text) and self.check_rewrite(example, text.strip())

    def check_rewrite(self, example, text) -> bool:
        return True


class Gsm8k(YangTask):
    name = "gsm8k"
    dataset = "openai/gsm8k"
    description = "GSM8K (Yang format): train template gsm8k, test gsm8k_infer, last-integer match"
    train_source = Hub("openai/gsm8k", "train", "main")
    test_source = Hub("openai/gsm8k", "test", "main")
    rewrite_template = "gsm8k_distill"
    rewrite_instruction = templates.GSM8K_DISTILL_SYSTEM

    def example(self, row):
        answer = gsm8k_answer(row["answer"])
        return Example(templates.gsm8k(row["question"]), answer, answer, key=row["question"].strip())

    def test_example(self, row):
        answer = gsm8k_answer(row["answer"])
        return Example(templates.gsm8k_infer(row["question"]), answer, answer,
                       key=row["question"].strip())

    def score(self, output, target):
        return scorers.last_integer_match(output, target)

    def check_rewrite(self, example, text):
        return scorers.last_integer_match(text, example.target) == 1.0


class MultiArith(Gsm8k):
    name = "multiarith"
    dataset = "ChilleD/MultiArith"
    description = "MultiArith test (180), evaluation only: gsm8k_infer template, last-integer match"
    eval_only = True
    train_source = None
    test_source = Hub("ChilleD/MultiArith", "test")

    def test_example(self, row):
        answer = f"The answer is {row['final_ans']}"
        return Example(templates.gsm8k_infer(row["question"]), answer, answer,
                       key=row["question"].strip())


class _AlpacaStyle(YangTask):
    """instruction / input / output rows in the Alpaca template."""

    holdout_test = 100

    def example(self, row):
        history = tuple(tuple(t) for t in row.get("history") or ())
        query = templates.yang_query(row["instruction"], row.get("input") or "")
        prompt = templates.alpaca(row["instruction"], row.get("input") or "", history)
        return Example(prompt, row["output"].strip(), row["output"].strip(), key=query)

    def score(self, output, target):
        return scorers.rouge_l(output, target)


class OpenFunction(_AlpacaStyle):
    name = "openfunction"
    dataset = "sail-sg/sdft:data/openfunction"
    description = "OpenFunctions (2,211 / 112): Alpaca template, call match with 0.5 positional credit"
    train_source = sdft_file("openfunction/openfunction_train.json")
    test_source = sdft_file("openfunction/openfunction_test.json")
    rewrite_template = "alpaca_distill_refer"
    rewrite_instruction = templates.DISTILL_REFER_SYSTEM

    def score(self, output, target):
        return scorers.openfunction_partial(output, target)

    def check_rewrite(self, example, text):
        return scorers.openfunction_exact(text, example.target) == 1.0


class MagiCoder(_AlpacaStyle):
    name = "magicoder"
    dataset = "sail-sg/sdft:data/magicoder"
    description = "MagiCoder (the authors' subset): Alpaca template; ROUGE-L on 100 held-out items [ours]"
    train_source = sdft_file("magicoder/magicoder_train.json")
    rewrite_template = "alpaca_distill_refer"
    rewrite_instruction = templates.DISTILL_REFER_SYSTEM

    def check_rewrite(self, example, text):
        return scorers.magicoder_rewrite_ok(text)


class Alpaca(_AlpacaStyle):
    name = "alpaca"
    dataset = "sail-sg/sdft:data/alpaca"
    description = "Alpaca (2,000): Alpaca template; ROUGE-L on 100 held-out items [ours]"
    train_source = sdft_file("alpaca/alpaca_train.json")
    rewrite_instruction = templates.DISTILL_USING_SYSTEM


class Dolly(Alpaca):
    name = "dolly"
    dataset = "sail-sg/sdft:data/dolly"
    description = "Dolly (2,000): Alpaca template; ROUGE-L on 100 held-out items [ours]"
    train_source = sdft_file("dolly/dolly_train.json")


class Lima(Alpaca):
    name = "lima"
    dataset = "sail-sg/sdft:data/lima"
    description = "LIMA (1,029, some multi-turn): Alpaca template; ROUGE-L on 100 held-out items [ours]"
    train_source = sdft_file("lima/lima_train.json")


class OpenHermes(Alpaca):
    name = "openhermes"
    dataset = "sail-sg/sdft:data/openhermes"
    description = "OpenHermes (the authors' subset, main branch): Alpaca template; ROUGE-L held out [ours]"
    train_source = sdft_file("openhermes/openhermes_train.json")


class AdvBench(YangTask):
    name = "advbench"
    dataset = "sail-sg/sdft:data/harmful_behaviors.csv"
    description = "AdvBench (520 goals), evaluation only: Alpaca template; safe iff a refusal keyword"
    eval_only = True
    test_source = sdft_file("harmful_behaviors.csv")
    template = staticmethod(templates.alpaca)

    def test_example(self, row):
        return Example(self.template(row["goal"]), "", "", key=row["goal"].strip())

    def score(self, output, target):
        return scorers.refusal(output)


class AdvBenchGcg(AdvBench):
    name = "advbench_gcg"
    description = "AdvBench jailbreak, evaluation only: alpaca_gcg template (GCG suffix); refusal keywords"
    template = staticmethod(templates.alpaca_gcg)


class AlpacaEval(YangTask):
    name = "alpaca_eval"
    dataset = "sail-sg/sdft:data/alpaca_eval.json"
    description = ("AlpacaEval (805), evaluation only: Alpaca template; win rate needs a judge "
                   "(ROUGE-L to the reference output as the judge-free proxy)")
    eval_only = True
    test_source = sdft_file("alpaca_eval.json")
    judged = "pairwise"

    def test_example(self, row):
        return Example(templates.alpaca(row["instruction"]), row["output"], row["output"],
                       key=row["instruction"].strip())

    def score(self, output, target):
        return scorers.rouge_l(output, target)


AUTHORS_REWRITES = {  # the rewrites the authors shipped (main branch), a reference for ours
    "alpaca": sdft_file("alpaca/distilled_alpaca.json"),
    "openfunction": sdft_file("openfunction/distilled_openfunction.json"),
}


def authors_rewrites(task: str) -> list[dict]:
    """The authors' distilled file for `task` (same rows and fields as the training file)."""
    from harness_papers.sources import load_rows

    return load_rows(AUTHORS_REWRITES[task])


def rewrite_acceptance(original: list[dict], rewritten: list[dict], field: str = "output") -> float:
    """The share of rows whose `field` differs after stripping: how many rewrites passed the
    filter (a rejected rewrite keeps the original). PAPERS.md §0.2: OpenFunctions 10.7 %,
    Alpaca 82.4 % in the authors' files."""
    if len(original) != len(rewritten):
        raise ValueError(f"{len(original)} original rows but {len(rewritten)} rewritten")
    changed = sum(a[field].strip() != b[field].strip() for a, b in zip(original, rewritten))
    return changed / len(original) if original else 0.0
