"""SA-SFT, on-policy SDFT, SDFT by rewriting and SelfAug: each loss and mechanism checked
against hand computations, torch and TRL on the tiny model."""

import copy
import json
import os

import pytest
import torch
import torch.nn.functional as F

from harness.cli import main
from harness.data import Batch, encode_example, render_prompt, user_turn_prefix
from harness.methods import make_method, response_logits
from harness.methods.sa_sft import text_problem
from harness.methods.sdft import completion_positions, sequence_mean
from harness.methods.sdft_rewrite import accepted
from harness.tasks import Dialogue, Example, get_task
from helpers import SETTINGS, batch_of, load_script, setup_method, tiny_suite, train_stream_task

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


# --- SelfAug -------------------------------------------------------------------------------

@pytest.mark.parametrize("lora", [False, True])
def test_selfaug_kl_zero_before_training_then_positive(tiny, tiny_model_dir, lora):
    model, tok = tiny
    method, ctx, model = setup_method("selfaug", model, tok, {"lora": lora})
    ctx.model_path = str(tiny_model_dir)  # where a full fine-tune reloads the base from
    batch = batch_of(tok)
    ce, kl = method.terms(model, batch, ctx)
    assert kl.item() == pytest.approx(0.0, abs=1e-6)
    assert ce.item() == pytest.approx(F.cross_entropy(*response_logits(model, batch)).item(), rel=1e-5)
    train_stream_task(method, ctx, model, 0)
    ce, kl = method.terms(model, batch, ctx)
    assert kl.item() > 1e-4
    assert method.loss(model, batch, ctx).item() == pytest.approx(ce.item() + 0.5 * kl.item(), rel=1e-5)


def test_selfaug_kl_is_base_to_tuned_at_prompt_positions(tiny, tiny_model_dir):
    model, tok = tiny
    base = copy.deepcopy(model)
    method, ctx, model = setup_method("selfaug", model, tok, {"alpha": 1.0})
    ctx.model_path = str(tiny_model_dir)
    train_stream_task(method, ctx, model, 0)
    batch = batch_of(tok)
    _, kl = method.terms(model, batch, ctx)
    mask = batch.prompt_mask
    with torch.no_grad():
        tuned = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[mask]
        ref = base(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[mask]
    by_hand = F.kl_div(F.log_softmax(tuned, -1), F.log_softmax(ref, -1), log_target=True,
                       reduction="batchmean")  # KL(base || tuned), mean over prompt positions
    assert kl.item() == pytest.approx(by_hand.item(), rel=1e-4)
    method.params["direction"] = "tuned-base"
    _, other = method.terms(model, batch, ctx)
    by_hand = F.kl_div(F.log_softmax(ref, -1), F.log_softmax(tuned, -1), log_target=True,
                       reduction="batchmean")
    assert other.item() == pytest.approx(by_hand.item(), rel=1e-4)


def test_selfaug_pulls_towards_base(tiny_model_dir):
    """More alpha, less drift from the base at the prompt positions after the same training."""
    from harness.models import load_model

    kls = []
    for alpha in (0.0, 5.0):
        model, tok, _ = load_model(str(tiny_model_dir), "cpu")
        method, ctx, model = setup_method("selfaug", model, tok, {"alpha": alpha})
        ctx.model_path = str(tiny_model_dir)
        train_stream_task(method, ctx, model, 0)
        kls.append(method.terms(model, batch_of(tok, task="json-extract"), ctx)[1].item())
    assert kls[1] < kls[0]


# --- on-policy SDFT ------------------------------------------------------------------------

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


def test_sdft_teacher_swaps_ema_weights_in_and_back(tiny):
    model, tok = tiny
    method, ctx, model = setup_method("sdft", model, tok)
    method.train_data(*ctx.stream[0], ctx)
    with torch.no_grad():
        for e in method.ema.values():
            e.add_(0.01 * torch.randn_like(e))
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
    model, tok = tiny
    method, ctx, model = setup_method("sdft", model, tok)
    method.train_data(*ctx.stream[0], ctx)
    with torch.no_grad():
        for e in method.ema.values():
            e.add_(0.5 * torch.randn_like(e))
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
                        lambda s, t, kind, beta: seen.append((s, t)) or (s - t).sum(-1) * 0)
    method, ctx, model = setup_method("sdft", model, tok, {"temperature": 2.0,
                                                            "max_new_tokens": 6})
    method.train_data(*ctx.stream[0], ctx)
    batch = batch_of(tok)
    torch.manual_seed(0)
    method.loss(model, batch, ctx)
    torch.manual_seed(0)
    student, _ = method.rollouts(model, batch, ctx)
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
    student, teacher = method.rollouts(model, batch, ctx)
    for row, e in enumerate(batch.examples):
        s_ids = student.input_ids[row][student.labels[row] != -100]
        t_ids = teacher.input_ids[row][teacher.labels[row] != -100]
        assert torch.equal(s_ids, t_ids) and len(s_ids) > 0
        t_prompt = tok.decode(teacher.input_ids[row][teacher.labels[row] == -100])
        assert e.response in t_prompt and "This is an example for a response" in t_prompt
        assert e.response not in tok.decode(student.input_ids[row][student.labels[row] == -100])


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
    student, teacher = method.rollouts(model, batch, ctx)
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


# --- SA-SFT --------------------------------------------------------------------------------

def test_user_turn_prefix_ends_where_the_user_writes(tiny):
    _, tok = tiny
    assert user_turn_prefix(tok) == "<|im_start|>user\n"
    after = user_turn_prefix(tok, [("hi", "hello")])
    assert after == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nhello<|im_end|>\n<|im_start|>user\n"


def test_dialogue_history_is_context_not_loss(tiny):
    _, tok = tiny
    d = Dialogue("second?", "two", "", history=(("first?", "one"),))
    ids, n_prompt = encode_example(tok, d, 200)
    assert tok.decode(ids[:n_prompt]) == render_prompt(tok, "second?", d.history)
    assert "first?" in tok.decode(ids[:n_prompt]) and tok.decode(ids[n_prompt:]).startswith("two")


def test_dialogue_filters():
    assert text_problem("What is a cat?", 8, 100) is None
    assert text_problem(None, 8, 100) == "unfinished"  # hit the token budget
    assert text_problem("", 8, 100) == "too short"  # empty
    assert text_problem("Hi", 8, 100) == "too short"
    assert text_problem("x" * 101, 8, 100) == "too long"


@pytest.fixture
def chatty(tiny):
    """The tiny model with a bias towards end-of-turn, so that its samples finish."""
    model, tok = tiny
    head = model.get_output_embeddings()
    biased = torch.nn.Linear(head.in_features, head.out_features, bias=True)
    with torch.no_grad():
        biased.weight.copy_(head.weight)
        biased.bias.zero_()
        biased.bias[tok.eos_token_id] = 3.0
    model.set_output_embeddings(biased)
    return model, tok


def sa_sft_pool(tiny, seed, **params):
    model, tok = tiny
    params = {"min_chars": 1, "user_tokens": 32, "answer_tokens": 32, **params}
    method, ctx, _ = setup_method("sa-sft", model, tok, params)
    ctx.seed = seed
    return method.dialogues(ctx, seed)


def test_sa_sft_generation_is_identical_for_the_same_seed(chatty):
    a, b, c = sa_sft_pool(chatty, 0), sa_sft_pool(chatty, 0), sa_sft_pool(chatty, 1)
    assert len(a["dialogues"]) >= 4 and a == b and a != c
    assert len({d["prompt"] for d in a["dialogues"]}) == len(a["dialogues"])  # deduplicated


def test_sa_sft_counts_every_candidate_and_tops_up_in_rounds(chatty):
    one = sa_sft_pool(chatty, 0, max_rounds=1, oversample=1.0)
    more = sa_sft_pool(chatty, 0, max_rounds=6, oversample=1.0)
    for found in (one, more):  # every candidate is either kept or dropped for a reason
        assert found["candidates"] == len(found["dialogues"]) + sum(found["dropped"].values())
    assert one["candidates"] == 8  # the stream's largest task has 8 examples, ratio 1
    assert one["dropped"]  # the tiny model's samples do not all pass
    # later rounds ask only for what is missing and extend the first round's pool
    assert more["candidates"] > one["candidates"]
    assert more["dialogues"][:len(one["dialogues"])] == one["dialogues"]
    assert len(one["dialogues"]) < len(more["dialogues"]) <= 8
    strict = sa_sft_pool(chatty, 0, max_rounds=1, oversample=1.0, answer_tokens=1)
    assert strict["dialogues"] == [] and strict["dropped"].get("answer unfinished", 0) > 0


def test_sa_sft_multi_turn_dialogues(chatty):
    pool = sa_sft_pool(chatty, 0, turns=2, oversample=6)["dialogues"]
    assert pool and all(len(d["history"]) == 1 for d in pool)


def test_sa_sft_mixes_at_ratio_and_cap_and_caches(chatty, monkeypatch):
    model, tok = chatty
    lenient = {"min_chars": 1, "user_tokens": 32, "answer_tokens": 32, "oversample": 3, "ratio": 0.5}
    method, ctx, model = setup_method("sa-sft", model, tok, lenient)
    task, examples = ctx.stream[0]
    data = method.train_data(task, examples, ctx)
    assert data[:len(examples)] == examples
    assert len(data) - len(examples) == min(4, len(method.pools[task.name]))
    assert all(isinstance(d, Dialogue) for d in data[len(examples):])
    assert ctx.stats[task.name]["self_examples"] == len(data) - len(examples)
    capped, ctx, _ = setup_method("sa-sft", model, tok, {**lenient, "cap": 1})
    assert len(capped.train_data(task, examples, ctx)) == len(examples) + 1
    # the pool is cached: a second cell with the same model and seed generates nothing
    monkeypatch.setattr(type(method), "dialogues", lambda *a: pytest.fail("regenerated"))
    again, _, _ = setup_method("sa-sft", model, tok, lenient)
    assert again.pools == method.pools


def test_sa_sft_leaves_out_dialogues_longer_than_max_len(chatty):
    model, tok = chatty
    lenient = {"min_chars": 1, "user_tokens": 32, "answer_tokens": 32, "oversample": 3}
    method, ctx, model = setup_method("sa-sft", model, tok, lenient)
    task, examples = ctx.stream[0]
    long = Dialogue("question " * 40, "answer " * 80, "")
    method.pools[task.name] = [long] + method.pools[task.name]
    data = method.train_data(task, examples, ctx)
    assert long not in data
    assert ctx.stats[task.name]["dropped longer than max_len"] >= 1
    for d in data:  # nothing in the mix is cut: each keeps its end-of-turn token
        ids, _ = encode_example(tok, d, 10_000)
        assert len(ids) <= SETTINGS.max_len


def test_sa_sft_fresh_pool_per_task(chatty):
    model, tok = chatty
    lenient = {"min_chars": 1, "user_tokens": 32, "answer_tokens": 32, "oversample": 3}
    shared, _, _ = setup_method("sa-sft", model, tok, lenient)
    fresh, ctx, _ = setup_method("sa-sft", model, tok, {**lenient, "pool": "per-task"})
    assert shared.pools["arith"] is shared.pools["json-extract"]
    assert fresh.pools["arith"] == shared.pools["arith"]  # task 0 reuses the shared pool
    assert fresh.pools["json-extract"] != fresh.pools["arith"]
    assert ctx.stats["json-extract"]["self_candidates"] > 0


def test_sa_sft_per_task_pools_do_not_reuse_other_seeds_pools(chatty, monkeypatch):
    from harness.methods.sa_sft import SASFT

    seeds = []
    monkeypatch.setattr(SASFT, "_base_pool", lambda self, ctx, seed, task=None: seeds.append(seed) or [])
    model, tok = chatty
    setup_method("sa-sft", model, tok, {"pool": "per-task"}, stream=("arith", "json-extract", "facts"))
    assert seeds[0] == 0 and len(set(seeds)) == 3
    assert not set(seeds[1:]) & set(range(100))  # not the shared pool of any small seed


# --- SDFT by rewriting ---------------------------------------------------------------------

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
    assert prompts[0].startswith("Using the reference answer as a guide")
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


# --- the four through the CLI --------------------------------------------------------------

STUDIED = ["sa-sft", "sdft", "sdft-rewrite", "selfaug"]


def test_listed_with_their_defaults(capsys):
    assert main(["list", "methods", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    names = {m["name"] for m in listed} if isinstance(listed, list) else set(listed)
    assert set(STUDIED) <= names


def test_the_four_run_through_the_stream(tmp_path, tiny_model_dir):
    methods = {"sa-sft": {"min_chars": 1, "user_tokens": 16, "answer_tokens": 16}, "sdft": {"max_new_tokens": 8},
               "sdft-rewrite": {"max_new_tokens": 8}, "selfaug": {"lora": {"r": 4, "alpha": 8}}}
    suite = tiny_suite(tmp_path, str(tiny_model_dir), methods=methods, probes=["drift"])
    out = tmp_path / "out"
    assert main(["run", "--suite", str(suite), "--out", str(out), "--quiet"]) == 0
    results = {json.loads(p.read_text())["cell"]["method"]: json.loads(p.read_text())
               for p in (out / "cells").glob("*/result.json")}
    assert set(results) == set(STUDIED)
    for r in results.values():
        assert r["status"] == "complete" and len(r["R"]) == 3
        assert all(s["steps"] == 3 for s in r["training"])
    rates = results["sdft-rewrite"]["method_stats"]
    assert set(rates) == {"arith", "json-extract"}
    assert all(0 <= v["rewrite_acceptance"] <= 1 for v in rates.values())
    assert "self_examples" in results["sa-sft"]["method_stats"]["arith"]


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
