"""SDFT by rewriting ("Self-Distillation Bridges Distribution Gap", Yang et al., ACL 2024).

Before training, the frozen base model rewrites every gold response in its own words, shown
the query and the reference in the authors' Alpaca-style template (put in the user turn of
the chat template, after the example's system message), or in the task's own rewrite
input where it has one (`Task.rewrite_prompt`: the paper's templates, e.g. GSM8K's with its
forced "Great! Let's think step by step." prefix, continued as raw text); then plain SFT on
the rewritten set. A rewrite is kept only if it
passes the task's check (`Task.accept_rewrite`: by default the task's scorer gives it full
marks) and contains none of the filter phrases; otherwise the original response is used.
The acceptance rate per task goes into the cell's result.json (`method_stats`).

Sampling follows the paper (T 0.95, top-p 0.7, top-k 50, 512 new tokens), one rewrite per
example. A rewrite that hits the budget is unfinished: it is never trained on (the original
response is used) and counted (`rewrite_truncated`). The rewrites of a stream are cached
per (model, seed, examples and their exact rewrite inputs, settings, version of this code).
The paper trains with LoRA (r 8, alpha 16, q/v): `lora: {r: 8, alpha: 16, target_modules:
[q_proj, v_proj]}`.
No state to checkpoint: a resumed cell's `setup` runs on the base model again and reads the
same rewrites from the cache (or makes them again, from the same seed).
"""

from __future__ import annotations

from dataclasses import replace

from harness.methods import Method, OptionalLoRA, finished, prompt_text

REWRITE_INSTRUCTION = "Using the reference answer as a guide, write your own response."
REWRITE_TEMPLATE = "{instruction}\n\n### Instruction:\n{query}\n\n### Reference Answer:\n{reference}\n\n### Response:\n"
FILTER_PHRASES = ["reference answer", "your response", "my response", "your own response"]
VERSION = 3  # of the generating code, in the cache key: 2 records whether a rewrite finished;
# 3 keeps the example's system message and uses the task's own rewrite input


def accepted(task, example, text: str, phrases=FILTER_PHRASES) -> bool:
    """Keep a rewrite? Non-empty, free of the filter phrases, and correct for the task."""
    lowered = text.lower()
    return bool(text.strip()) and not any(p in lowered for p in phrases) \
        and task.accept_rewrite(example, text)


class SDFTRewrite(OptionalLoRA, Method):
    name = "sdft-rewrite"
    version = "1"  # bump when a change moves its numbers (docs/writing-a-method.md)
    description = "SFT on the base model's own rewrites of the gold responses (SDFT, ACL 2024)"
    defaults = {
        "temperature": 0.95,
        "top_p": 0.7,
        "top_k": 50,
        "max_new_tokens": 512,  # rewrite budget (the paper's code: 512)
        "instruction": REWRITE_INSTRUCTION,  # a task's own `rewrite_instruction` takes precedence
        "template": REWRITE_TEMPLATE,
        "filter_phrases": FILTER_PHRASES,
        "lora": False,  # True or a dict of LoRA settings to train adapters only
    }

    def setup(self, ctx):
        """Rewrite every task of the stream now, while ctx.model is the untouched base."""
        self.rewritten = {}
        for task, examples in ctx.stream:
            key = [ctx.model_id, ctx.seed, task.name,
                   [(e.prompt, e.response, self.prompt(task, e, ctx.tokenizer)) for e in examples],
                   {k: v for k, v in self.params.items() if k != "lora"}, VERSION]
            self.rewritten[task.name] = ctx.cache.get_or_compute(
                "sdft_rewrite", key, lambda: self.rewrite(task, examples, ctx),
                valid=lambda found: isinstance(found, list) and len(found) == len(examples) and all(
                    isinstance(r, dict) and isinstance(r.get("text"), str)
                    and isinstance(r.get("finished"), bool) for r in found))

    def prompt(self, task, example, tokenizer) -> str:
        """The text the base model continues to rewrite `example`."""
        own = task.rewrite_prompt(example)
        if own is not None:
            return own
        p = self.params
        return prompt_text(tokenizer, example, p["template"].format(
            instruction=task.rewrite_instruction or p["instruction"], query=example.prompt,
            reference=example.response))

    def rewrite(self, task, examples, ctx) -> list[dict]:
        """One sampled rewrite per example: {"text", "finished"}."""
        p = self.params
        prompts = [self.prompt(task, e, ctx.tokenizer) for e in examples]
        ids = ctx.generate(prompts, int(p["max_new_tokens"]), ids=True, chat=False, do_sample=True,
                           temperature=p["temperature"], top_p=p["top_p"], top_k=p["top_k"],
                           seed=ctx.seed, batch_size=64)
        return [{"text": ctx.tokenizer.decode(x, skip_special_tokens=True).strip(),
                 "finished": finished(x, ctx.tokenizer)} for x in ids]

    def train_data(self, task, examples, ctx):
        rewrites = self.rewritten.get(task.name)
        if rewrites is None or len(rewrites) != len(examples):
            raise ValueError(f"no rewrites prepared for task {task.name}")
        out, kept = [], 0
        for example, r in zip(examples, rewrites):
            ok = r["finished"] and accepted(task, example, r["text"], self.params["filter_phrases"])
            kept += ok
            out.append(replace(example, response=r["text"]) if ok else example)
        rate = kept / len(examples)
        ctx.record("rewrite_acceptance", rate, task=task.name)
        ctx.record("rewrite_truncated", sum(not r["finished"] for r in rewrites) / len(examples),
                   task=task.name)
        ctx.log(f"  sdft-rewrite: {kept}/{len(examples)} rewrites accepted for {task.name} "
                f"({rate:.0%}); the rest train on the original response")
        return out
