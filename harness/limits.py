"""Settings that cannot work on a model, refused before any cell runs: read from the
model's config.json alone (no weights load), so a dry run and `harness submit` refuse them
too (docs/errors.md: beyond-the-model)."""

from __future__ import annotations

from pathlib import Path

from harness.config import MethodSpec, Suite, cell_train
from harness.yamlio import fail

_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")
_HIDDEN_KEYS = ("hidden_size", "n_embd", "d_model")


def check_model_limits(suite: Suite, models: list[str]) -> None:
    """Settings that cannot work on a model, refused before any cell runs (inside a cell
    they fail late, with an index error): a training sequence (max_len) beyond the model's
    context, a generation (a method's or the evaluation's budget after its prompt) that
    would run past it, a LoRA rank beyond its hidden size. The settings in force are
    checked, defaults included. Read from config.json alone: no weights load."""
    from harness.models import model_config

    for model in models:
        config = model_config(model)
        context = next((config[k] for k in _CONTEXT_KEYS if isinstance(config.get(k), int)), None)
        hidden = next((config[k] for k in _HIDDEN_KEYS if isinstance(config.get(k), int)), None)
        if context:
            _check_context(suite, model, context)
        if hidden:
            _check_rank(suite, model, hidden)


def _check_context(suite: Suite, model: str, context: int) -> None:
    """Every sequence a cell feeds the model must fit its context. A generation's prompt
    is not known before the data is drawn and tokenized: the training length (max_len,
    which bounds a training example's prompt and response) stands for it."""
    from harness.methods.settings import in_force

    name = Path(suite.path).name
    beyond = f"beyond model '{model}''s context of {context} tokens"
    for stream in suite.streams:
        for method in suite.methods:
            where = f"suite {name}, methods.{method.name}"
            max_len = cell_train(suite, stream, method).max_len
            if max_len > context:
                fail(where, f"train.max_len {max_len} (stream '{stream}') is {beyond}",
                     f"use at most max_len: {context}")
            settings = in_force(method) or method.params
            budget = settings.get("max_new_tokens")  # a rollout or rewrite continues a prompt
            if _whole(budget) and budget + max_len > context:
                _too_long(where, method, "max_new_tokens", f"max_new_tokens {budget}"
                          f"{_default(method, 'max_new_tokens', ' (its default)')} after a prompt of up to "
                          f"train.max_len {max_len} (stream '{stream}')", budget + max_len,
                          context - max_len, beyond)
            turns, user, answer = (settings.get(k) for k in ("turns", "user_tokens", "answer_tokens"))
            if all(map(_whole, (turns, user, answer))) and turns * (user + answer) > context:
                _too_long(where, method, "answer_tokens", f"a self-dialogue of turns {turns} "
                          f"x (user_tokens {user} + answer_tokens {answer}"
                          f"{_default(method, 'answer_tokens', ', its default')})", turns * (user + answer),
                          context // max(turns, 1) - user, beyond)
        prompt = cell_train(suite, stream, MethodSpec("", train=suite.train)).max_len
        for task, budget, own in _eval_budgets(suite, stream):
            if budget + prompt > context:
                what = (f"eval.max_new_tokens {budget}" if not own else
                        f"task '{task}''s own max_new_tokens {budget} (eval.max_new_tokens unset)")
                fail(f"suite {name}, eval", f"{what} after a prompt of up to train.max_len "
                     f"{prompt} (stream '{stream}') is {budget + prompt} tokens, {beyond}",
                     f"set eval: {{max_new_tokens: {context - prompt}}} or less in the suite, "
                     "or lower train.max_len" if context > prompt else
                     f"lower train.max_len below {context}")


def _eval_budgets(suite: Suite, stream: str):
    """(task, generation budget, whether it is the task's own) of each task the stream's
    cells evaluate: its own tasks and the `task:` probes, under eval.max_new_tokens."""
    from harness.probes import get_probe
    from harness.tasks import get_task

    tasks = [get_task(t) for t in suite.streams[stream]]
    tasks += [probe.task for probe in map(get_probe, suite.probes)
              if hasattr(probe, "max_new_tokens")]  # task probes generate as tasks do
    for task in tasks:
        yield task.name, suite.eval.max_new_tokens or task.max_new_tokens, \
            suite.eval.max_new_tokens is None


def _too_long(where: str, method: MethodSpec, key: str, what: str, total: int, room: int,
              beyond: str) -> None:
    """Refuse a method's generation budget: `what` reaches `total` tokens; the fix names
    the largest value of `key` that fits (`room`)."""
    fix = (f"--set {method.name}.{key}=N with N at most {room} (or {key}: {room} under "
           f"methods.{method.name} in the suite)" if room >= 1 else
           f"shorten what comes before it (train.max_len, turns, user_tokens)")
    fail(where, f"{what} is {total} tokens, {beyond}", fix)


def _default(method: MethodSpec, key: str, note: str) -> str:
    """`note` where `key` is the method's default, not a value the user gave."""
    return "" if key in method.params else note


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_rank(suite: Suite, model: str, hidden: int) -> None:
    """A LoRA rank beyond the hidden size cannot be: refused, defaults included."""
    from harness.methods.lora import LORA_DEFAULTS
    from harness.methods.settings import in_force

    for method in suite.methods:
        settings = in_force(method) or method.params
        lora = settings.get("lora", settings if "target_modules" in settings else None)
        lora = {**LORA_DEFAULTS, **lora} if isinstance(lora, dict) else (
            LORA_DEFAULTS if lora is True else None)
        if lora and _whole(lora.get("r")) and lora["r"] > hidden:
            fail(f"suite {Path(suite.path).name}, methods.{method.name}",
                 f"LoRA r {lora['r']} is beyond model '{model}''s hidden size {hidden}",
                 f"use a rank well below it, e.g. r: {min(16, hidden)}")
