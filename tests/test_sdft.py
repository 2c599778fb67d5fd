"""On-policy SDFT: completion positions, the EMA teacher, rollouts and the loss by hand."""

import copy

import pytest
import torch
import torch.nn.functional as F

from harness.data import Batch
from harness.methods import response_logits
from harness.methods.sdft import completion_positions, sequence_mean
from helpers import SETTINGS, batch_of, setup_method, train_stream_task


def test_completion_positions_and_sequence_mean():
    labels = torch.tensor([[-100, -100, 5, 6, 7, -100], [-100, 8, 9, -100, -100, -100]])
    batch = Batch(labels.clamp(min=0), torch.ones_like(labels), labels, [])
    # labels[:, 1:] has completion tokens at row 0: 5 6 7, row 1: 8 9
    assert completion_positions(batch).tolist() == [0, 1, 2, 0, 1]
    values = torch.tensor([1.0, 2.0, 3.0, 10.0])
    rows = torch.tensor([0, 0, 0, 2])
    assert sequence_mean(values, rows, 3).item() == pytest.approx((2.0 + 10.0) / 2)


def test_sdft_ema_update_is_exact(tiny):
    model, tok = tiny
    method, ctx, model = setup_method("sdft", model, tok, {"ema_rate": 0.25})
    method.train_data(*ctx.stream[0], ctx)
    before = {n: e.clone() for n, e in method.ema.items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    method.after_step(model, ctx)
    for n, p in model.named_parameters():
        assert torch.allclose(method.ema[n], 0.25 * p + 0.75 * before[n], atol=1e-6)


def _sdft_with_moved_ema(tiny, scale: float):
    """An sdft method set up on the tiny model, its EMA teacher moved off the student by
    Gaussian noise of this scale: (method, model, tokenizer)."""
    model, tok = tiny
    method, ctx, model = setup_method("sdft", model, tok)
    method.train_data(*ctx.stream[0], ctx)
    with torch.no_grad():
        for e in method.ema.values():
            e.add_(scale * torch.randn_like(e))
    return method, model, tok


def test_sdft_teacher_swaps_ema_weights_in_and_back(tiny):
    method, model, tok = _sdft_with_moved_ema(tiny, 0.01)
    student = {n: p.detach().clone() for n, p in model.named_parameters()}
    reference = copy.deepcopy(model)
    reference.load_state_dict({**reference.state_dict(), **method.ema})
    batch = batch_of(tok)
    with method.teacher(model) as teacher:
        got = response_logits(teacher, batch)[0]
    assert torch.allclose(got, response_logits(reference, batch)[0], atol=1e-5)
    for n, p in model.named_parameters():
        assert torch.equal(p, student[n])


def test_sdft_teacher_is_the_ema_model_under_autocast(tiny):
    """Regression: autocast caches each weight's low-precision copy by parameter; a `.data`
    swap left the teacher running on the student's cached weights (CUDA's bf16 autocast
    shares the mechanism with CPU's)."""
    method, model, tok = _sdft_with_moved_ema(tiny, 0.5)
    reference = copy.deepcopy(model)
    reference.load_state_dict({**reference.state_dict(), **method.ema})
    batch = batch_of(tok)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        student = response_logits(model, batch)[0]  # with grad: fills the cast cache
        with method.teacher(model) as teacher:
            got = response_logits(teacher, batch)[0]
        again = response_logits(model, batch)[0]  # the student sees its own weights again
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want = response_logits(reference, batch)[0]
    assert (student.float() - want.float()).abs().max() > 0.5  # the two really differ
    assert torch.equal(got.float(), want.float())
    assert torch.equal(again.float(), student.float())


def test_sdft_divergence_at_the_sampling_temperature(tiny, monkeypatch):
    import harness.methods.sdft as sdft

    model, tok = tiny
    seen = []
    monkeypatch.setattr(sdft, "token_divergence",
                        lambda s, t, kind, beta, **k: seen.append((s, t)) or (s - t).sum(-1) * 0)
    method, ctx, model = setup_method("sdft", model, tok, {"temperature": 2.0,
                                                            "max_new_tokens": 6})
    method.train_data(*ctx.stream[0], ctx)
    batch = batch_of(tok)
    torch.manual_seed(0)
    method.loss(model, batch, ctx)
    torch.manual_seed(0)
    student, _, _ = method.rollouts(model, batch, ctx)
    with torch.no_grad():
        raw = response_logits(model, student)[0]
    assert torch.allclose(seen[0][0], raw / 2.0, atol=1e-5)


def test_sdft_counts_truncated_rollouts_and_kl_by_position(tiny):
    model, tok = tiny
    method, ctx, model = setup_method("sdft", model, tok, {"max_new_tokens": 5})
    train_stream_task(method, ctx, model, 0)
    stats = ctx.stats["arith"]
    assert stats["rollouts"] == SETTINGS.steps * SETTINGS.batch_size
    assert stats["truncated_share"] > 0.5  # a random tiny model rarely stops within 5 tokens
    assert set(stats["kl_by_position"]) == {"0", "1", "2", "3-7"}
    assert all(v >= 0 for v in stats["kl_by_position"].values())


def test_sdft_lora_teacher_holds_only_the_adapters(tiny):
    model, tok = tiny
    total = sum(p.numel() for p in model.parameters())
    method, ctx, model = setup_method("sdft", model, tok, {"lora": {"r": 4, "alpha": 8}})
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    train_stream_task(method, ctx, model, 0)
    held = sum(e.numel() for e in method.ema.values())
    assert all("lora_" in n for n in method.ema) and 0 < held < total / 10
    for n, p in model.named_parameters():  # the frozen weights did not move
        if n in frozen:
            assert torch.equal(p, frozen[n])
    assert any(not torch.equal(e, p) for n, p in model.named_parameters() if n in method.ema
               for e in [method.ema[n]])


def test_sdft_rollouts_share_completions_and_show_the_demonstration(tiny):
    model, tok = tiny
    method, ctx, model = setup_method("sdft", model, tok)
    batch = batch_of(tok)
    student, teacher, _ = method.rollouts(model, batch, ctx)
    for row, e in enumerate(batch.examples):
        s_ids = student.input_ids[row][student.labels[row] != -100]
        t_ids = teacher.input_ids[row][teacher.labels[row] != -100]
        assert torch.equal(s_ids, t_ids) and len(s_ids) > 0
        t_prompt = tok.decode(teacher.input_ids[row][teacher.labels[row] == -100])
        assert e.response in t_prompt and "This is an example for a response" in t_prompt
        assert e.response not in tok.decode(student.input_ids[row][student.labels[row] == -100])


def test_sdft_prompts_keep_the_examples_system_message(tiny):
    """A task whose examples come after a system message (the paper's science questions):
    student and teacher prompts both start from it, and the rollouts are sampled from the
    student's; without one, the prompts are the plain chat turns they always were."""
    from dataclasses import replace

    from harness.data import render_prompt
    from harness.tasks import Framed

    model, tok = tiny
    method, ctx, model = setup_method("sdft", model, tok)
    batch = batch_of(tok)
    plain_student, _, _ = method.rollouts(model, batch, ctx)
    head = plain_student.input_ids[0][plain_student.prompt_mask[0]].tolist()
    assert head == tok(render_prompt(tok, batch.examples[0].prompt),
                       add_special_tokens=False)["input_ids"]
    system = "You are a careful chemist. Answer in <answer> tags."
    framed = [Framed(e.prompt, e.response, e.target, system=system) for e in batch.examples]
    seen = []
    real = type(ctx).generate
    ctx_generate = lambda self, texts, *a, **k: seen.extend(texts) or real(self, texts, *a, **k)
    type(ctx).generate = ctx_generate
    try:
        student, teacher, _ = method.rollouts(model, replace(batch, examples=framed), ctx)
    finally:
        type(ctx).generate = real
    assert seen == [render_prompt(tok, e.prompt, (), system) for e in framed]
    for b in (student, teacher):
        assert system in tok.decode(b.input_ids[0][b.labels[0] == -100])
    assert "This is an example for a response" in tok.decode(teacher.input_ids[0][teacher.labels[0] == -100])


def test_sdft_refuses_a_task_in_its_own_template(tiny):
    from harness.errors import HarnessError
    from harness.tasks import Plain

    model, tok = tiny
    method, ctx, model = setup_method("sdft", model, tok)
    task, examples = ctx.stream[0]
    plain = [Plain(e.prompt, e.response, e.target) for e in examples]
    with pytest.raises(HarnessError, match="own template"):
        method.train_data(task, plain, ctx)


def test_sdft_loss_is_zero_when_teacher_sees_what_student_sees(tiny):
    """Same prompt and same weights: every per-token divergence is 0."""
    model, tok = tiny
    method, ctx, model = setup_method("sdft", model, tok, {"template": "{query}"})
    method.train_data(*ctx.stream[0], ctx)
    assert method.loss(model, batch_of(tok), ctx).item() == pytest.approx(0.0, abs=1e-6)


def test_sdft_loss_matches_a_hand_computation(tiny):
    model, tok = tiny
    method, ctx, model = setup_method("sdft", model, tok, {"skip_tokens": 2, "kl": "reverse"})
    method.train_data(*ctx.stream[0], ctx)
    with torch.no_grad():
        for e in method.ema.values():
            e.add_(0.05 * torch.randn_like(e))
    batch = batch_of(tok)
    torch.manual_seed(3)
    loss = method.loss(model, batch, ctx)
    torch.manual_seed(3)
    student, teacher, _ = method.rollouts(model, batch, ctx)
    ema_model = copy.deepcopy(model)
    ema_model.load_state_dict({**ema_model.state_dict(), **method.ema})
    per_seq = []
    for row in range(len(batch.examples)):
        def row_logits(m, b):
            out = m(input_ids=b.input_ids[row:row + 1], attention_mask=b.attention_mask[row:row + 1])
            return out.logits[0, :-1][b.labels[row, 1:] != -100]
        s, t = row_logits(model, student), row_logits(ema_model, teacher)
        kl = (F.softmax(s, -1) * (F.log_softmax(s, -1) - F.log_softmax(t, -1))).sum(-1)[2:]
        if len(kl):
            per_seq.append(kl.mean())
    assert loss.item() == pytest.approx(torch.stack(per_seq).mean().item(), rel=1e-4)


@pytest.mark.parametrize("lora", [False, True])
def test_sdft_trains_and_moves_teacher_slowly(tiny, lora):
    model, tok = tiny
    params = {"lora": {"r": 4, "alpha": 8}} if lora else {}
    method, ctx, model = setup_method("sdft", model, tok, params)
    start = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    train_stream_task(method, ctx, model, 0)
    student_move = sum((p.detach() - start[n]).norm() for n, p in model.named_parameters()
                       if p.requires_grad)
    teacher_move = sum((method.ema[n] - start[n]).norm() for n in start)
    assert 0 < teacher_move < student_move
    assert ctx.stats[ctx.stream[0][0].name]["rollout_s"] > 0  # sampling time is reported


def test_sdft_teacher_offloaded_to_cpu_is_the_same_teacher(tiny):
    """`teacher_device: cpu` (the EMA in host memory, copied in over the student's weights
    for the teacher forward and back): on a CPU the copy path is forced, and it gives the
    swap path's teacher logits, restores the student bit for bit, and trains identically."""
    import harness.methods.sdft as sdft_mod

    model, tok = tiny
    runs = {}
    for offload in (False, True):
        torch.manual_seed(0)
        m = copy.deepcopy(model)
        method, ctx, m = setup_method("sdft", m, tok, {"teacher_device": "cpu", "ema_rate": 0.5})
        method.train_data(*ctx.stream[0], ctx)
        if offload:  # what a CUDA model gets: host copies and a stash
            method.stash = {n: t.clone() for n, t in method.ema.items()}
        before = {n: p.detach().clone() for n, p in m.named_parameters()}
        with torch.no_grad():
            for p in m.parameters():
                p.add_(0.01)  # the student moves away from the teacher
        student = {n: p.detach().clone() for n, p in m.named_parameters()}
        batch = batch_of(tok)
        with method.teacher(m) as t:
            teacher_logits = t(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        assert all(torch.equal(p, student[n]) for n, p in m.named_parameters())  # restored
        method.after_step(m, ctx)
        runs[offload] = (teacher_logits, {n: e.clone() for n, e in method.ema.items()}, before)
    (a, ema_a, before), (b, ema_b, _) = runs[False], runs[True]
    explicit = copy.deepcopy(model)
    with torch.no_grad():
        for n, p in explicit.named_parameters():
            p.copy_(before[n])
        want = explicit(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    assert torch.equal(a, b) and torch.equal(a, want)
    assert all(torch.equal(ema_a[n], ema_b[n]) for n in ema_a)
    assert sdft_mod.SDFT.defaults["teacher_device"] == "model"


def test_sdft_samples_a_whole_optimiser_step_in_one_call(tiny, monkeypatch):
    """With gradient accumulation every micro-batch of a step is sampled in one generate
    call (same weights: as on-policy as one call a micro-batch), and each micro-batch is
    scored on its own examples' completions; one micro-batch a step: one call each."""
    import dataclasses

    from harness.methods import Context
    from harness.training import train_task

    model, tok = tiny
    method, ctx, model = setup_method("sdft", model, tok, {"max_new_tokens": 4})
    task, examples = ctx.stream[0]
    data = method.train_data(task, examples, ctx)
    calls, scored = [], []
    real_generate, real_rollouts = Context.generate, type(method).rollouts
    monkeypatch.setattr(Context, "generate", lambda self, texts, *a, **k: (
        calls.append(list(texts)) or real_generate(self, texts, *a, **k)))

    def rollouts(self, model, batch, ctx):
        student, teacher, sampled = real_rollouts(self, model, batch, ctx)
        scored.append((batch.examples, student.examples, teacher.examples))
        return student, teacher, sampled

    monkeypatch.setattr(type(method), "rollouts", rollouts)
    settings = dataclasses.replace(SETTINGS, steps=2, batch_size=2, grad_accum=3)
    train_task(model, method, ctx, task, data, settings, 0)
    assert [len(c) for c in calls] == [6, 6] and len(scored) == 6
    assert all(b == s == t for b, s, t in scored) and method.pending == {}
    assert ctx.step_batches == []
    calls.clear()
    train_task(model, method, ctx, task, data, dataclasses.replace(settings, grad_accum=1), 0)
    assert [len(c) for c in calls] == [2, 2]


def test_sdft_topk_distillation_is_trls_and_the_full_vocabulary_at_k_v(tiny):
    """`topk: K` distills over the student's top K tokens (TRL's objective): at K = the
    vocabulary it is the full-vocabulary loss; at a small K another, smaller loss."""
    model, tok = tiny
    losses = {}
    for k in (0, model.config.vocab_size, 5):
        method, ctx, m = setup_method("sdft", copy.deepcopy(model), tok,
                                      {"kl": "jsd", "topk": k, "skip_tokens": 0,
                                       "template": "{demonstration}\n{query}"})
        method.train_data(*ctx.stream[0], ctx)
        with torch.no_grad():
            for e in method.ema.values():
                e.add_(0.05 * torch.randn(e.shape, generator=torch.Generator().manual_seed(1)))
        torch.manual_seed(4)
        losses[k] = method.loss(m, batch_of(tok), ctx).item()
    assert losses[model.config.vocab_size] == pytest.approx(losses[0], rel=1e-4)
    assert 0 < losses[5] != pytest.approx(losses[0], rel=1e-2)


def test_sdft_samples_several_rollouts_per_prompt(tiny, monkeypatch):
    """`rollouts: 3`: each prompt three times in one generate call, three sampled
    completions scored in a row (student and teacher on the same ones), all counted."""
    from harness.methods import Context

    model, tok = tiny
    method, ctx, model = setup_method("sdft", model, tok, {"rollouts": 3, "max_new_tokens": 6})
    method.train_data(*ctx.stream[0], ctx)
    calls = []
    real_generate = Context.generate
    monkeypatch.setattr(Context, "generate", lambda self, texts, *a, **k: (
        calls.append(list(texts)) or real_generate(self, texts, *a, **k)))
    batch = batch_of(tok)
    torch.manual_seed(0)
    student, teacher, _ = method.rollouts(model, batch, ctx)
    n = len(batch.examples)
    assert [len(c) for c in calls] == [3 * n] and student.input_ids.shape[0] == 3 * n
    assert student.examples == [e for e in batch.examples for _ in range(3)]
    answers = [tuple(student.input_ids[r][student.labels[r] != -100].tolist()) for r in range(3 * n)]
    assert answers == [tuple(teacher.input_ids[r][teacher.labels[r] != -100].tolist())
                       for r in range(3 * n)]
    assert any(len(set(answers[3 * i:3 * i + 3])) > 1 for i in range(n))  # sampled, not copies
    assert method.rollouts_n == 3 * n


@pytest.mark.parametrize("key,value", [("topk", -1), ("rollouts", 0), ("rollouts", 1.5),
                                       ("topk", True)])
def test_sdft_refuses_bad_topk_and_rollouts(key, value):
    from harness.errors import HarnessError
    from harness.methods import make_method

    with pytest.raises(HarnessError, match=key):
        make_method("sdft", {key: value})


def test_steps_ahead_are_the_batches_the_loop_then_trains_on(tiny, monkeypatch):
    """ctx.steps_ahead(n) draws the next steps early: the loop trains on exactly the
    batches it would have drawn (same order), and never past the task's last step."""
    import dataclasses

    from harness.training import train_task

    model, tok = tiny
    settings = dataclasses.replace(SETTINGS, steps=5, batch_size=2, grad_accum=2)
    seen = {}
    from harness.methods import METHODS

    real = METHODS["sft"].loss
    for look in (0, 3):
        method, ctx, m = setup_method("sft", copy.deepcopy(model), tok)
        task, examples = ctx.stream[0]
        trained, peeked = [], []

        def loss(self, model, batch, ctx, look=look, trained=trained, peeked=peeked):
            trained.append(batch.input_ids.tolist())
            if look and batch is ctx.step_batches[0]:
                steps = ctx.steps_ahead(look)
                assert steps[0] is ctx.step_batches and all(len(s) == 2 for s in steps)
                peeked.append(len(steps))
            return real(self, model, batch, ctx)

        monkeypatch.setattr(type(method), "loss", loss)
        train_task(m, method, ctx, task, method.train_data(task, examples, ctx), settings, 0)
        seen[look] = (trained, peeked)
        assert ctx.steps_ahead(2) == [] and ctx._peek is None  # outside training
    assert seen[3][0] == seen[0][0] and len(seen[0][0]) == 10
    assert seen[3][1] == [3, 3, 3, 2, 1]  # the task's last steps see fewer


def test_sdft_samples_several_steps_at_once_with_the_importance_correction(tiny, monkeypatch):
    """`sample_steps: 3`: one generate call serves three optimiser steps; the first step's
    rollouts carry no correction, the later ones the sampling weights' token log-probs; the
    loss weights each token by pi_now / pi_sampled (capped): at unchanged weights the ratio
    is 1 and the loss equals the uncorrected one."""
    import dataclasses

    from harness.methods import Context
    from harness.training import train_task

    model, tok = tiny
    method, ctx, m = setup_method("sdft", copy.deepcopy(model), tok,
                                  {"sample_steps": 3, "max_new_tokens": 4, "is_clip": 1.5})
    task, examples = ctx.stream[0]
    data = method.train_data(task, examples, ctx)
    calls = []
    real_generate = Context.generate
    monkeypatch.setattr(Context, "generate", lambda self, texts, *a, **k: (
        calls.append(len(texts)) or real_generate(self, texts, *a, **k)))
    settings = dataclasses.replace(SETTINGS, steps=4, batch_size=2, grad_accum=1)
    train_task(m, method, ctx, task, data, settings, 0)
    assert calls == [6, 2] and method.pending == {}  # steps 1-3 in one call, then step 4
    method.after_task(task, m, ctx)
    stats = ctx.stats[task.name]
    assert 0 < stats["is_ratio_mean"] <= 1.5 and 0 <= stats["is_clipped_share"] <= 1
    # the correction by hand: sampled at these very weights, the ratio is exactly 1
    batch = batch_of(tok)
    ctx.step_batches = [batch]
    torch.manual_seed(2)
    student, teacher, sampled = method._sample([batch], ctx, on_policy=0, model=m)[id(batch)]
    logits, targets = response_logits(m, student)
    want = (logits / method.params["temperature"]).log_softmax(-1).gather(-1, targets[:, None])[:, 0]
    assert torch.allclose(sampled, want, atol=1e-5)
    for logps in (None, sampled):
        method.pending = {id(batch): (student, teacher, logps)}
        value = method.loss(m, batch, ctx).item()
        if logps is None:
            plain = value
    assert value == pytest.approx(plain, rel=1e-5)
    method.pending = {id(batch): (student, teacher, sampled - 5.0)}  # far off-policy: capped
    assert method.loss(m, batch, ctx).item() == pytest.approx(1.5 * plain, rel=1e-5)
