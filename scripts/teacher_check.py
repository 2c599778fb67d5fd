"""Can SDFT's teacher do a task in context? A pre-flight check before running `sdft`.

On-policy SDFT can only teach what its teacher (the model shown the demonstration in the
paper's template) already does better than the student (the model shown the query only).
This scores both with the base model, greedy, on the first N training examples of each
task (from the same split as the suites': `--n-train`/`--n-test`, so never a test item),
with the task's own scorer, on a budget long enough for a sentence of reasoning and the
answer (`--max-new-tokens`, default 128; the share of answers cut by it is printed):

    python scripts/teacher_check.py [--model smollm2-135m-instruct] [--tasks arith,json-extract] [--n 16]

A task whose teacher score is no higher than the student's gives SDFT nothing to distil.
"""

from __future__ import annotations

import argparse

from harness.generation import finished, generate
from harness.methods.sdft import TEACHER_TEMPLATE
from harness.models import load_model
from harness.tasks import get_task


def scores(model, tokenizer, task, n: int, template: str = TEACHER_TEMPLATE, n_train: int = 64,
           n_test: int = 32, max_new_tokens: int = 128) -> dict:
    """Student and teacher scores, and the share of answers cut by the budget, on the first
    n training examples of the task's split."""
    examples = task.split(max(n, n_train), n_test, 0).train[:n]
    prompts = {"student": [e.prompt for e in examples],
               "teacher": [template.format(query=e.prompt, demonstration=e.response)
                           for e in examples]}
    out = {}
    for who, texts in prompts.items():
        ids = generate(model, tokenizer, texts, max_new_tokens, batch_size=len(texts))
        answers = [tokenizer.decode(x, skip_special_tokens=True) for x in ids]
        out[who] = sum(task.score(a, e.target) for a, e in zip(answers, examples)) / len(examples)
        out[f"{who}_cut"] = sum(not finished(x, tokenizer) for x in ids) / len(examples)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--tasks", default="arith,json-extract,tool-call,facts,classify,transform")
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--n-train", type=int, default=64, help="the suite's data.n_train")
    parser.add_argument("--n-test", type=int, default=32, help="the suite's data.n_test")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    model, tokenizer, _ = load_model(args.model, args.device)
    print(f"greedy, {args.max_new_tokens} new tokens, first {args.n} training examples\n")
    print("| task | student (query only) | teacher (query + demonstration) | student cut | "
          "teacher cut |\n|---|---|---|---|---|")
    for name in args.tasks.split(","):
        s = scores(model, tokenizer, get_task(name), args.n, n_train=args.n_train,
                   n_test=args.n_test, max_new_tokens=args.max_new_tokens)
        print(f"| {name} | {s['student']:.3f} | {s['teacher']:.3f} | {s['student_cut']:.2f} | "
              f"{s['teacher_cut']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
