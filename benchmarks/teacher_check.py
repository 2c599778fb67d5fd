"""Can SDFT's teacher do a task in context? A pre-flight check before running `sdft`.

On-policy SDFT can only teach what its teacher (the model shown the demonstration in the
paper's template) already does better than the student (the model shown the query only).
This scores both with the base model, greedy, on the first N training examples of each
task, with the task's own scorer:

    python -m benchmarks.teacher_check [--model smollm2-135m-instruct] [--tasks arith,json-extract] [--n 16]

A task whose teacher score is no higher than the student's gives SDFT nothing to distil.
"""

from __future__ import annotations

import argparse

from harness.data import generate
from harness.methods.sdft import TEMPLATE
from harness.models import load_model
from harness.tasks import get_task


def scores(model, tokenizer, task, n: int, template: str = TEMPLATE) -> tuple[float, float]:
    """(student score, teacher score) of the model on the task's first n training examples."""
    examples = task.split(max(n, 8), 8, 0).train[:n]
    student = [e.prompt for e in examples]
    teacher = [template.format(query=e.prompt, demonstration=e.response) for e in examples]
    out = []
    for prompts in (student, teacher):
        ids = generate(model, tokenizer, prompts, task.max_new_tokens, batch_size=len(prompts))
        texts = [tokenizer.decode(x, skip_special_tokens=True) for x in ids]
        out.append(sum(task.score(t, e.target) for t, e in zip(texts, examples)) / len(examples))
    return out[0], out[1]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--tasks", default="arith,json-extract,tool-call,facts,classify,transform")
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    model, tokenizer, _ = load_model(args.model, args.device)
    print("| task | student (query only) | teacher (query + demonstration) | n |\n|---|---|---|---|")
    for name in args.tasks.split(","):
        student, teacher = scores(model, tokenizer, get_task(name), args.n)
        print(f"| {name} | {student:.3f} | {teacher:.3f} | {args.n} |", flush=True)


if __name__ == "__main__":
    main()
