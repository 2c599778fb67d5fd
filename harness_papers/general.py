"""SA-SFT (2026; suite sa-sft-2026, approximate): SuperNI tasks chosen by name [ours; the
paper's five are not public], the ROUGE-L-only MedText probe, and the external instruction
sources that mixing baselines and SFT+re-invoke draw from (../shared/PAPERS.md §1.8, §6)."""

from __future__ import annotations

from pathlib import Path

from harness_papers import scorers, templates
from harness_papers.base import PaperTask
from harness_papers.sources import Hub, load_rows
from harness.errors import HarnessError
from harness.tasks import Example, Framed

SUPERNI = "Muennighoff/natural-instructions"


class SuperNI(PaperTask):
    """One SuperNI task by `task_name`: prompt `definition + inputs`, target `targets`. The
    hub copy's train and test splits are read and filtered by task name; a task found in
    only one split is split there by a seeded hold-out of a fifth (at most 500) [ours]."""

    paper = "sa-sft-2026"
    dataset = SUPERNI
    task_name = ""
    metric = "exact_match"  # or "rougeL" (SuperNI's convention for generation tasks)
    max_new_tokens = 64
    train_source = Hub(SUPERNI, "train")
    test_source = Hub(SUPERNI, "test")
    notes = "the whole dataset is downloaded to filter one task (several GB)"

    def load(self):
        from harness_papers.base import seeded_holdout

        train, test = ([r for r in load_rows(s) if r["task_name"] == self.task_name]
                       for s in (self.train_source, self.test_source))
        if train and test:
            return train, test
        pool = train or test
        if not pool:
            raise HarnessError(f"SuperNI task '{self.task_name}' is not in {SUPERNI} (train, test)",
                               "check the task name against the dataset's task_name column")
        rest, _, held = seeded_holdout(pool, min(500, max(1, len(pool) // 5)))
        return rest, held

    def example(self, row):
        target = row["targets"] if isinstance(row["targets"], str) else row["targets"][0]
        return Example(templates.superni(row["definition"], row["inputs"]), target.strip(),
                       target.strip(), key=row["inputs"].strip())

    def score(self, output, target):
        if self.metric == "rougeL":
            return scorers.rouge_l(output, target)
        return scorers.exact_match(output, target)


class SuperNIArith(SuperNI):
    name = "superni_arith"
    task_name = "task085_unnatural_addsub_arithmetic"
    description = "SuperNI task085 (arithmetic with swapped operator symbols): exact match"


class SuperNIAlgebra(SuperNI):
    name = "superni_algebra"
    task_name = "task090_equation_learner_algebra"
    description = "SuperNI task090 (evaluate a given equation): exact match"


class SuperNITypo(SuperNI):
    name = "superni_typo"
    task_name = "task088_identify_typo_verification"
    description = "SuperNI task088 (find the misspelt word in a sentence): exact match"


class SuperNICola(SuperNI):
    name = "superni_cola"
    task_name = "task1346_glue_cola_grammatical_correctness_classification"
    description = "SuperNI task1346 (CoLA grammatical acceptability): exact match"


class SuperNICommonGen(SuperNI):
    name = "superni_commongen"
    task_name = "task102_commongen_sentence_generation"
    description = "SuperNI task102 (a sentence from given concepts): ROUGE-L"
    metric = "rougeL"


def medtext_instruction() -> str:
    """The instruction lm-eval's `medtext` task gives as its description, read from the
    installed lm-eval (so the light variant prompts exactly as the full task)."""
    import lm_eval
    import yaml

    class Loader(yaml.SafeLoader):  # lm-eval's `!function` tags are not needed here
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    text = (Path(lm_eval.__file__).parent / "tasks" / "medtext" / "medtext.yaml").read_text()
    return str(yaml.load(text, Loader).get("description") or "").strip()


class MedTextLight(PaperTask):
    name = "medtext_rougeL"
    paper = "sa-sft-2026"
    dataset = "BI55/MedText"
    description = ("MedText (the train split, as lm-eval uses it), evaluation only: lm-eval's "
                   "prompt, ROUGE-L only (no BLEURT or BERTScore downloads)")
    eval_only = True
    max_new_tokens = 256
    test_source = Hub("BI55/MedText", "train")

    def test_example(self, row):
        return Framed(row["Prompt"].strip(), row["Completion"].strip(), row["Completion"].strip(),
                      system=medtext_instruction())

    def score(self, output, target):
        return scorers.rouge_l(output, target)


MIX_SOURCES = {  # external data for mixing baselines and SFT+re-invoke prompts
    "alpaca": Hub("tatsu-lab/alpaca", "train"),
    "ultrachat": Hub("HuggingFaceH4/ultrachat_200k", "train_sft"),
}


def mix_pairs(source: str) -> list[tuple[str, str]]:
    """(prompt, response) pairs of an external source: Alpaca's instruction (+ input) and
    output; UltraChat's first user and assistant turns."""
    rows = load_rows(MIX_SOURCES[source])
    if source == "alpaca":
        return [(templates.yang_query(r["instruction"], r.get("input") or ""), r["output"].strip())
                for r in rows]
    pairs = []
    for r in rows:
        turns = r["messages"]
        if len(turns) >= 2 and turns[0]["role"] == "user" and turns[1]["role"] == "assistant":
            pairs.append((turns[0]["content"].strip(), turns[1]["content"].strip()))
    return pairs
