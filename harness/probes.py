"""General-capability probes, run on every checkpoint of a cell.

A probe is measured either through lm-eval (it contributes a task to the row's single
lm-eval call; multiple choice fits this) or directly (drift needs the base model's own
distributions, which lm-eval has no notion of).

- `drift`: mean per-token KL(base || current) over the base model's own greedy answers to
  a fixed set of general prompts. Lower is better; 0 for the base model. The base answers
  are generated once per (model, prompts, settings) and cached on disk; the base
  log-probabilities are computed once per process and kept in memory.
- `knowledge`: multiple-choice questions scored by log-likelihood: the chat-formatted
  question, the assistant turn opened with "The answer is", each option scored by its
  length-normalised log-likelihood (lm-eval `acc_norm`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F

from harness.data import autocast, generate, render_prompt
from harness.errors import HarnessError
from harness.paths import atomic_write_json, cache_dir, stable_hash

PROBE_DATA = Path(__file__).resolve().parent.parent / "benchmarks" / "probes"


class Probe:
    name = ""
    description = ""
    higher_is_better = True
    chance: float | None = None  # for normalised retention, where a chance level exists

    def prepare(self, base_model, tokenizer, model_id: str) -> None:
        """Called once per cell on the untouched base model, before any training."""

    def lmeval_task(self, workdir: Path) -> str | None:
        """Write an lm-eval task config under `workdir`; return its task name, or None."""
        return None

    def measure(self, model, tokenizer, lmeval: dict) -> float:
        """The probe's value for the current model; `lmeval` holds this row's results."""
        raise NotImplementedError


class KnowledgeProbe(Probe):
    name = "knowledge"
    description = ("40 general-knowledge multiple-choice questions, length-normalised "
                   "log-likelihood accuracy")
    chance = 0.25

    def lmeval_task(self, workdir):
        task = "cl_probe_knowledge"
        folder = workdir / task
        folder.mkdir(parents=True, exist_ok=True)
        rows = json.loads((PROBE_DATA / "knowledge.json").read_text())
        data = folder / "test.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        (folder / f"{task}.yaml").write_text(
            f"task: {task}\n"
            "dataset_path: json\n"
            f"dataset_kwargs:\n  data_files:\n    test: {data}\n"
            "test_split: test\n"
            "output_type: multiple_choice\n"
            "doc_to_text: \"{{question}}\"\n"
            "doc_to_choice: \"{{choices}}\"\n"
            "doc_to_target: answer\n"
            "gen_prefix: \"The answer is\"\n"  # a natural answer frame for a chat model
            "target_delimiter: \" \"\n"
            "metric_list:\n  - metric: acc_norm\n    aggregation: mean\n    higher_is_better: true\n"
        )
        self.task = task
        return task

    def measure(self, model, tokenizer, lmeval):
        return float(lmeval["results"][self.task]["acc_norm,none"])


class DriftProbe(Probe):
    name = "drift"
    description = "mean per-token KL(base || current) on the base model's answers to 24 general prompts"
    higher_is_better = False
    max_new_tokens = 48

    def __init__(self):
        self._ref: dict[str, tuple] = {}  # model_id -> (token batches, base log-probs)
        self._active: tuple | None = None

    def prepare(self, base_model, tokenizer, model_id):
        if model_id not in self._ref:
            prompts = json.loads((PROBE_DATA / "general_prompts.json").read_text())
            answers = self._base_answers(base_model, tokenizer, prompts, model_id)
            seqs = []
            for prompt, ans in zip(prompts, answers):
                head = tokenizer(render_prompt(tokenizer, prompt), add_special_tokens=False)
                seqs.append((head["input_ids"], ans))
            self._ref[model_id] = (seqs, self._answer_logprobs(base_model, seqs))
        self._active = self._ref[model_id]

    def _base_answers(self, model, tokenizer, prompts, model_id) -> list[list[int]]:
        """Greedy base answers, cached on disk: generation is the expensive part."""
        key = stable_hash([model_id, prompts, self.max_new_tokens, "greedy"])
        path = cache_dir() / "drift" / f"{key}.json"
        if path.exists():
            return json.loads(path.read_text())["answers"]
        answers = generate(model, tokenizer, prompts, self.max_new_tokens)
        atomic_write_json(path, {"model": model_id, "answers": answers})
        return answers

    @torch.no_grad()
    def _answer_logprobs(self, model, seqs, batch_size: int = 8) -> list[torch.Tensor]:
        """Per sequence, log-softmax over the vocabulary at each answer position: [n, V]."""
        device = next(model.parameters()).device
        out = []
        for start in range(0, len(seqs), batch_size):
            chunk = seqs[start : start + batch_size]
            width = max(len(h) + len(a) for h, a in chunk)
            ids = torch.zeros((len(chunk), width), dtype=torch.long)
            mask = torch.zeros_like(ids)
            for r, (h, a) in enumerate(chunk):
                ids[r, : len(h) + len(a)] = torch.tensor(h + a)
                mask[r, : len(h) + len(a)] = 1
            with autocast(device):
                logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            logp = F.log_softmax(logits.float(), dim=-1).cpu()
            for r, (h, a) in enumerate(chunk):
                # position t predicts token t+1: answers are predicted from len(h)-1 on
                out.append(logp[r, len(h) - 1 : len(h) + len(a) - 1])
        return out

    def measure(self, model, tokenizer, lmeval):
        if self._active is None:
            raise RuntimeError("DriftProbe.measure called before prepare")
        seqs, base = self._active
        current = self._answer_logprobs(model, seqs)
        total = sum(kl_per_token(b, c).sum() for b, c in zip(base, current))
        n_tokens = sum(b.shape[0] for b in base)
        return float(total / max(n_tokens, 1))


def kl_per_token(p_logprobs: torch.Tensor, q_logprobs: torch.Tensor) -> torch.Tensor:
    """KL(p || q) at each position over the full vocabulary: sum_v p (log p - log q)."""
    return (p_logprobs.exp() * (p_logprobs - q_logprobs)).sum(-1)


PROBES: dict[str, type[Probe]] = {"drift": DriftProbe, "knowledge": KnowledgeProbe}


def get_probe(name: str) -> Probe:
    if name not in PROBES:
        raise HarnessError(
            f"unknown probe '{name}'",
            f"use one of: {', '.join(PROBES)} (see `harness list probes`)",
        )
    return PROBES[name]()
