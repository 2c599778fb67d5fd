"""scripts/teacher_check.py: the pre-flight check scores student and teacher prompts."""

from harness.tasks import get_task
from helpers import load_script


def test_teacher_check_scores_student_and_teacher_prompts(tiny, monkeypatch):
    """The pre-flight check shows the teacher the demonstration and the student only the
    query: a model that copies a demonstration when it sees one scores 1 vs 0."""
    check = load_script("teacher_check")

    model, tok = tiny
    task = get_task("arith")
    by_prompt = {e.prompt: e.response for e in task.split(64, 32, 0).train}
    test_prompts = {e.prompt for e in task.split(64, 32, 0).test}

    def copy_demo(model, tokenizer, prompts, max_new_tokens, batch_size):
        outs = []
        for p in prompts:
            demo = next((r for q, r in by_prompt.items() if p.startswith(q) and r in p), "no idea")
            outs.append(tokenizer(demo, add_special_tokens=False)["input_ids"])
        return outs

    def seen(model, tokenizer, prompts, max_new_tokens, batch_size):
        assert not any(p in test_prompts for p in prompts)  # never a test item
        return copy_demo(model, tokenizer, prompts, max_new_tokens, batch_size)

    monkeypatch.setattr(check, "generate", seen)
    got = check.scores(model, tok, task, 4)
    assert (got["student"], got["teacher"]) == (0.0, 1.0)
    assert got["teacher_cut"] == 1.0  # no end token in these made-up answers
