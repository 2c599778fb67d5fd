"""SDFT by rewriting: the acceptance filter, fallbacks, recorded rates and the cache."""

import pytest

from harness.methods.sdft_rewrite import accepted
from harness.tasks import Example, get_task
from helpers import setup_method


def test_rewrite_filters_on_hand_made_cases():
    arith, tool = get_task("arith"), get_task("tool-call")
    ex = Example("Ann has 5 jars and finds 3 more. How many?", "5 + 3 = 8\n#### 8", "8")
    assert accepted(arith, ex, "Ann had 5 and found 3: 5 + 3 = 8\n#### 8")
    assert not accepted(arith, ex, "5 + 3 = 9\n#### 9")  # wrong answer
    assert not accepted(arith, ex, "The answer is 8.")  # lost the format the scorer needs
    assert not accepted(arith, ex, "As in the reference answer: #### 8")  # filter phrase
    assert not accepted(arith, ex, "Here is my response.\n#### 8")
    assert not accepted(arith, ex, "   ")
    call = '{"tool": "get_weather", "args": {"city": "Oslo", "unit": "C"}}'
    tex = Example("...", call, call)
    assert accepted(tool, tex, 'Sure: {"tool":"get_weather","args":{"unit":"C","city":"Oslo"}}')
    assert not accepted(tool, tex, '{"tool": "get_weather", "args": {"city": "Bergen", "unit": "C"}}')
    assert tool.rewrite_instruction.startswith("Refer to the reference answer")


def test_rewrite_falls_back_records_acceptance_and_caches(tiny, monkeypatch):
    model, tok = tiny
    method, ctx, model = setup_method("sdft-rewrite", model, tok, {"max_new_tokens": 8})
    task, examples = ctx.stream[0]
    good = examples[0].response  # plant one acceptable rewrite, and one cut by the budget
    method.rewritten[task.name] = (
        [{"text": good + " ", "finished": True}, {"text": examples[1].response, "finished": False}]
        + [{"text": "#### wrong", "finished": True}] * (len(examples) - 2))
    data = method.train_data(task, examples, ctx)
    assert [d.response for d in data[1:]] == [e.response for e in examples[1:]]
    assert ctx.stats[task.name]["rewrite_acceptance"] == pytest.approx(1 / len(examples))
    assert ctx.stats[task.name]["rewrite_truncated"] == pytest.approx(1 / len(examples))
    assert data[0].response == good + " " and data[0].prompt == examples[0].prompt
    prompts = []
    monkeypatch.setattr(type(ctx), "generate",
                        lambda self, p, *a, **k: prompts.extend(p) or [[tok.eos_token_id]] * len(p))
    fresh, ctx2, _ = setup_method("sdft-rewrite", model, tok, {"max_new_tokens": 9})
    assert "### Reference Answer:\n" + examples[0].response in prompts[0]
    from harness.data import render_prompt  # the template, in a chat turn
    assert prompts[0] == render_prompt(tok, fresh.params["template"].format(
        instruction=fresh.params["instruction"], query=examples[0].prompt,
        reference=examples[0].response))
    assert all(r["finished"] for r in fresh.rewritten[task.name])
    prompts.clear()
    setup_method("sdft-rewrite", model, tok, {"max_new_tokens": 9})
    assert prompts == []  # cached


def test_rewrite_records_whether_each_rewrite_finished(tiny):
    model, tok = tiny
    method, ctx, _ = setup_method("sdft-rewrite", model, tok, {"max_new_tokens": 3})
    rewrites = method.rewritten["arith"]
    assert len(rewrites) == 8 and not all(r["finished"] for r in rewrites)  # 3 tokens: cut
    for r in rewrites:
        assert r["finished"] in (True, False) and isinstance(r["text"], str)


def test_a_tasks_own_rewrite_input_and_system_message(tiny, monkeypatch):
    """Yang's tasks give the whole rewrite input in their own template (GSM8K's ends in a
    forced answer prefix), continued as raw text; a task's system message stays in front
    of the method's template; both are in the cache key."""
    from harness.data import render_prompt
    from harness.tasks import Framed

    model, tok = tiny
    calls = []
    from harness.methods import Context

    monkeypatch.setattr(Context, "generate", lambda self, p, *a, **k: (
        calls.append((list(p), k.get("chat"))) or [[tok.eos_token_id]] * len(p)))
    arith = get_task("arith")
    monkeypatch.setattr(type(arith), "rewrite_prompt",
                        lambda self, e: f"[INST] {e.prompt} [/INST] Great! Let's think step by step. ")
    method, ctx, _ = setup_method("sdft-rewrite", model, tok, {"max_new_tokens": 7},
                                  stream=("arith",))
    examples = ctx.stream[0][1]
    assert calls[0] == ([f"[INST] {e.prompt} [/INST] Great! Let's think step by step. "
                         for e in examples], False)
    monkeypatch.setattr(type(arith), "rewrite_prompt", lambda self, e: None)
    framed = Framed(examples[0].prompt, examples[0].response, examples[0].target, system="Be terse.")
    text = method.prompt(arith, framed, tok)
    assert text == render_prompt(tok, method.params["template"].format(
        instruction=method.params["instruction"], query=framed.prompt,
        reference=framed.response), (), "Be terse.")
    setup_method("sdft-rewrite", model, tok, {"max_new_tokens": 7}, stream=("arith",))
    assert len(calls) == 2  # another rewrite input: not the cached rewrites

