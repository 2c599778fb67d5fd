"""Training encodes an example as it is evaluated: the chat template with the task's
system message (Framed), or the task's own raw template (Plain); the generated tasks'
encoding is the chat template exactly as before."""

from pathlib import Path

import pytest

from harness.data import encode_example, encode_pair, render_prompt
from harness.tasks import Example, Framed, Plain, get_task

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "papers"


def test_plain_example_is_raw_text_then_response_and_eos(tiny):
    _, tok = tiny
    assert tok.chat_template  # the raw path must not fall back to it
    e = Plain("### Instruction:\nAdd 2 and 3.\n\n### Response:\n", "5", "5")
    ids, n_prompt = encode_example(tok, e, 256)
    prompt = tok(e.prompt, add_special_tokens=False)["input_ids"]
    assert ids == prompt + tok("5" + tok.eos_token, add_special_tokens=False)["input_ids"]
    assert n_prompt == len(prompt)


def test_framed_example_carries_its_system_message(tiny):
    _, tok = tiny
    e = Framed("What is 2+3?", "5", "5", system="You are a careful tutor.")
    ids, n_prompt = encode_example(tok, e, 256)
    head = render_prompt(tok, e.prompt, system=e.system)
    assert "You are a careful tutor." in head
    assert ids[:n_prompt] == tok(head, add_special_tokens=False)["input_ids"]
    plain_ids, _ = encode_example(tok, Example("What is 2+3?", "5", "5"), 256)
    assert len(ids) > len(plain_ids)


def test_generated_tasks_encode_as_before(tiny):
    """The old encoding, written out: the chat template over the user and assistant turns."""
    _, tok = tiny
    e = get_task("arith").split(4, 2, 0).train[0]
    ids, n_prompt = encode_example(tok, e, 256)
    head = tok.apply_chat_template([{"role": "user", "content": e.prompt}], tokenize=False,
                                   add_generation_prompt=True)
    full = tok.apply_chat_template([{"role": "user", "content": e.prompt},
                                    {"role": "assistant", "content": e.response}], tokenize=False)
    tail = full[len(head):].rstrip("\n")
    expected = (tok(head, add_special_tokens=False)["input_ids"]
                + tok(tail, add_special_tokens=False)["input_ids"])
    assert (ids, n_prompt) == (expected, len(tok(head, add_special_tokens=False)["input_ids"]))
    assert (ids, n_prompt) == encode_pair(tok, e.prompt, e.response, 256)


def test_a_task_in_its_own_template_splits_into_plain_examples(monkeypatch):
    monkeypatch.setenv("HARNESS_PAPER_FIXTURES", str(FIXTURES))
    task = get_task("gsm8k")
    assert task.chat_template is False
    split = task.split(2, 2, 0)
    assert split.train and all(type(e) is Plain for e in split.train + split.test)
    science = get_task("science").split(2, 2, 0)  # chat template, system message kept
    assert all(type(e) is Framed and e.system for e in science.train)
