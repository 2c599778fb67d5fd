"""The CUDA path (marker `gpu`): each test is skipped, with the reason, where no CUDA device
is visible, so CI on CPUs stays green. On a GPU machine: `python -m pytest -m gpu -rs
tests/test_gpu.py`, or `python scripts/gpu_check.py`, which also writes the measured figures
(set GPU_CHECK_OUT=DIR to keep them: DIR/measured.json) into a summary.

Tolerances stated here (bf16 keeps 8 bits of mantissa, about 2 to 3 significant digits):
a method's loss under bf16 autocast within 3e-2 + 3e-2 x |fp32 loss| of its float32
value; the same cell run twice: training losses within 1e-3 relative and scores within
one test item per task (CUDA kernels with atomics, e.g. the embedding's backward, are not
bit-reproducible); the merged LoRA checkpoint's logits within 1e-4 of the adapter model's
(float32); the chunked divergence's peak memory under half the whole computation's.
"""

import json
import os
import time
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.gpu
CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def needs_cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: the gpu tests run where torch.cuda.is_available() "
                    "(python scripts/gpu_check.py on a GPU machine)")
    torch.cuda.reset_peak_memory_stats()


def record(key: str, value) -> None:
    """Keep a measured figure in $GPU_CHECK_OUT/measured.json (scripts/gpu_check.py)."""
    folder = os.environ.get("GPU_CHECK_OUT")
    if not folder:
        return
    path = Path(folder) / "measured.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True))


def run_suite(tmp_path, model, name, *extra, **overrides):
    from harness.cli import main
    from helpers import tiny_suite

    folder = tmp_path / name
    folder.mkdir()
    out = folder / "out"
    started = time.perf_counter()
    code = main(["run", "--suite", str(tiny_suite(folder, model, **overrides)), "--out",
                 str(out), "--device", "cuda", "--quiet", *extra])
    results = {json.loads(p.read_text())["cell"]["method"]: json.loads(p.read_text())
               for p in out.glob("cells/*/result.json")}
    return code, results, out, time.perf_counter() - started


@pytest.mark.parametrize("precision", ["auto", "bf16-weights"])
def test_tiny_cell_end_to_end_on_cuda(tmp_path, tiny_model_dir, precision):
    """auto on CUDA is bf16 autocast over float32 weights; bf16-weights loads them in bf16."""
    code, results, _, seconds = run_suite(tmp_path, str(tiny_model_dir), "run", "--precision",
                                          precision)
    assert code == 0 and set(results) == {"sft", "lora"}
    for r in results.values():
        assert r["hardware"]["device"].startswith("cuda") and r["hardware"]["gpu"]
        # this cell's own peak (the runner resets it at each cell): what gpu_run reports
        hw = r["hardware"]
        assert 0 < hw["gpu_peak_allocated_gib"] <= hw["gpu_peak_reserved_gib"]
        assert len(r["R"]) == 3 and all(0 <= x <= 1 for row in r["R"] for x in row)
        assert all(torch.isfinite(torch.tensor(t["losses"])).all() for t in r["training"])
    record(f"tiny_cell_{precision}", {"seconds": round(seconds, 1),
                                      "max_memory_allocated_gib":
                                      round(torch.cuda.max_memory_allocated() / 2**30, 3)})


def cuda_ctx(model, tok):
    from harness.config import TrainSettings
    from harness.methods import Context
    from harness.storage import Cache

    ctx = Context(tokenizer=tok, device=CUDA, seed=0, model_id="tiny", model_path="",
                  train_settings=TrainSettings(steps=4, lr=1e-3, batch_size=4, max_len=96),
                  cache=Cache(), log=lambda m: None)
    ctx._bind(model)
    return ctx


def same_answers(generate):
    """ctx.generate that answers the same prompts with the same sampling the same way (the
    float32 and the bf16 loss then see the same rollouts)."""
    seen = {}

    def again(prompts, *args, **kwargs):
        key = (tuple(prompts), args, tuple(sorted((k, repr(v)) for k, v in kwargs.items())))
        if key not in seen:
            seen[key] = generate(prompts, *args, **kwargs)
        return seen[key]

    return again


def test_every_method_loss_under_bf16_autocast_equals_fp32(tiny_model_dir):
    """One micro-batch of the stream's first task, for every registered method: the loss
    in float32 and under bf16 autocast (the same rollouts for on-policy methods)."""
    from harness.data import collate
    from harness.methods import METHODS, call_hook, make_method
    from harness.models import load_model
    from harness.tasks import get_task

    gaps = {}
    budgets = {"sdft": {"max_new_tokens": 16}, "sdft-rewrite": {"max_new_tokens": 16},
               "sa-sft": {"user_tokens": 16, "answer_tokens": 16, "cap": 8},
               "freeze": {"top_k": 1},  # the tiny model has 2 blocks
               "sdft-trl": {"max_new_tokens": 16, "rollouts": 2}}  # top-k JSD, 2 rollouts a prompt
    cases = [(name, name, budgets.get(name, {})) for name, _ in METHODS.items()]
    for label, name, params in cases:
        model, tok, path = load_model(str(tiny_model_dir), "cuda")
        with torch.no_grad():  # sharper logits than the random init's near-uniform ones
            model.get_input_embeddings().weight.mul_(10)
        ctx = cuda_ctx(model, tok)
        ctx.model_path = path
        ctx.stream = [(get_task(t), list(get_task(t).split(8, 2, 0).train))
                      for t in ("arith", "json-extract")]
        ctx.generate = same_answers(ctx.generate)
        method = make_method(name, params)
        torch.manual_seed(0)
        call_hook(method, "setup", ctx)
        model = call_hook(method, "wrap_model", model, ctx).to(CUDA)
        ctx._bind(model)
        data = call_hook(method, "train_data", *ctx.stream[0], ctx)
        batch = collate(tok, list(data[:4]), 96).to(CUDA)
        model.train()
        losses = []
        for enabled in (False, True):
            torch.manual_seed(0)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=enabled):
                losses.append(float(call_hook(method, "loss", model, batch, ctx).detach()))
        fp32, bf16 = losses
        gaps[label] = {"fp32": fp32, "bf16": bf16, "abs": abs(bf16 - fp32)}
        assert abs(bf16 - fp32) <= 3e-2 + 3e-2 * abs(fp32), (label, fp32, bf16)
    record("loss_bf16_vs_fp32", gaps)


@pytest.mark.parametrize("teacher_device", ["model", "cpu"])
def test_sdft_teacher_is_the_ema_model_on_cuda(tiny, teacher_device):
    """tests/test_sdft.py's autocast regression on CUDA: the teacher runs on the EMA
    weights (not the student's cached bf16 copies) and the student gets its own back, with
    the EMA beside the model or in CPU memory (copied in and out)."""
    import copy

    from harness.methods import response_logits
    from helpers import batch_of, setup_method

    model, tok = tiny
    method, ctx, model = setup_method("sdft", model.to(CUDA), tok,
                                      {"teacher_device": teacher_device})
    method.train_data(*ctx.stream[0], ctx)
    assert {e.device.type for e in method.ema.values()} == {
        "cpu" if teacher_device == "cpu" else "cuda"}
    with torch.no_grad():
        for e in method.ema.values():
            e.add_(0.5 * torch.randn_like(e))
    reference = copy.deepcopy(model)
    reference.load_state_dict({**reference.state_dict(), **method.ema})
    batch = batch_of(tok).to(CUDA)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        student = response_logits(model, batch)[0]
        with method.teacher(model) as teacher:
            got = response_logits(teacher, batch)[0]
        again = response_logits(model, batch)[0]
    with torch.autocast("cuda", dtype=torch.bfloat16):
        want = response_logits(reference, batch)[0]
    assert (student.float() - want.float()).abs().max() > 0.5
    assert torch.equal(got.float(), want.float())
    assert torch.equal(again.float(), student.float())


def test_lora_merge_and_checkpoint_load_as_lm_eval_does(tmp_path, tiny):
    """Adapters trained on CUDA, merged and saved by the runner's save_checkpoint, load
    with AutoModelForCausalLM (what `lm_eval --model hf` does) and with lm_eval's HFLM,
    and compute what the adapter model computed."""
    from transformers import AutoModelForCausalLM

    from harness.runner import save_checkpoint
    from harness.tasks import get_task
    from harness.training import train_task
    from helpers import batch_of, setup_method

    model, tok = tiny
    method, ctx, model = setup_method("lora", model.to(CUDA), tok, {"r": 4, "alpha": 8})
    ctx.device = CUDA
    task = get_task("arith")
    train_task(model, method, ctx, task, list(task.split(16, 2, 0).train),
               ctx.train_settings, 0)
    batch = batch_of(tok).to(CUDA)
    with torch.no_grad():
        want = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    save_checkpoint(model, tok, tmp_path / "model")
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "model").to(CUDA).eval()
    assert not any("lora" in n for n, _ in loaded.named_parameters())
    with torch.no_grad():
        got = loaded(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    assert torch.allclose(got, want, atol=1e-4)
    record("lora_merge_max_abs_logit_diff", float((got - want).abs().max()))
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=str(tmp_path / "model"), device="cuda", batch_size=4)
    assert sum(p.numel() for p in lm.model.parameters()) == sum(
        p.numel() for p in loaded.parameters())


def test_save_model_of_a_cell_loads_with_automodel(tmp_path, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    code, results, out, _ = run_suite(tmp_path, str(tiny_model_dir), "save", "--save-model")
    assert code == 0
    for folder in out.glob("cells/*/model"):
        model = AutoModelForCausalLM.from_pretrained(folder).to(CUDA)
        assert not any("lora" in n for n, _ in model.named_parameters())


def test_same_cell_twice_on_cuda(tmp_path, tiny_model_dir):
    """Two runs of the same cells: training losses within 1e-3 relative, each score within
    one test item (4 items a task here), the probes within 1e-2."""
    _, first, _, _ = run_suite(tmp_path, str(tiny_model_dir), "one")
    _, second, _, _ = run_suite(tmp_path, str(tiny_model_dir), "two")
    worst = {"loss_rel": 0.0, "score": 0.0, "probe": 0.0}
    for method in first:
        a, b = first[method], second[method]
        for ta, tb in zip(a["training"], b["training"]):
            for x, y in zip(ta["losses"], tb["losses"]):
                worst["loss_rel"] = max(worst["loss_rel"], abs(x - y) / max(abs(x), 1e-8))
        for ra, rb in zip(a["R"], b["R"]):
            worst["score"] = max([worst["score"]] + [abs(x - y) for x, y in zip(ra, rb)])
        for name in a["probes"]:
            worst["probe"] = max([worst["probe"]] + [abs(x - y) for x, y in
                                                     zip(a["probes"][name], b["probes"][name])])
    record("determinism_max_differences", worst)
    assert worst["loss_rel"] <= 1e-3 and worst["score"] <= 0.25 and worst["probe"] <= 1e-2


def test_chunked_divergence_lowers_the_cuda_peak(monkeypatch):
    from harness.methods import nn

    n, v = 4160, 65536  # 2^28 + a little: the chunked path by default
    student = torch.randn(n, v, device=CUDA).requires_grad_()
    teacher = torch.randn(n, v, device=CUDA)

    def peak():
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        value = nn.token_divergence(student, teacher).mean()
        value.backward()
        student.grad = None
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base, float(value)

    chunked, a = peak()
    monkeypatch.setattr(nn, "CHUNK_ABOVE", 1 << 40)
    whole, b = peak()
    record("divergence_peak_gib", {"whole": whole / 2**30, "chunked": chunked / 2**30,
                                   "n_x_v": n * v})
    assert chunked < 0.5 * whole and abs(a - b) <= 1e-5 * abs(b)


def test_memory_settings_train_on_cuda(tiny_model_dir):
    """Gradient checkpointing, bf16 weights and (where bitsandbytes is installed) 8-bit
    AdamW train on CUDA; checkpointing lowers a deeper model's peak."""
    import importlib.util

    from harness.config import TrainSettings
    from harness.methods import make_method
    from harness.models import load_model
    from harness.precision import using
    from harness.tasks import get_task
    from harness.training import train_task

    task = get_task("arith")
    examples = list(task.split(16, 2, 0).train)
    optimizers = ["adamw"] + (["adamw-8bit", "paged-adamw-8bit"]
                              if importlib.util.find_spec("bitsandbytes") else [])
    for precision in ("auto", "bf16-weights"):
        for optimizer in optimizers:
            for checkpointing in (False, True):
                with using(precision):
                    model, tok, _ = load_model(str(tiny_model_dir), "cuda")
                    settings = TrainSettings(steps=3, lr=1e-3, batch_size=4, max_len=96,
                                             optimizer=optimizer,
                                             gradient_checkpointing=checkpointing)
                    ctx = cuda_ctx(model, tok)
                    stats = train_task(model, make_method("sft"), ctx, task, examples,
                                       settings, 0)
                assert all(torch.isfinite(torch.tensor(stats["losses"])))
    record("optimizers_tried", optimizers)


def test_an_out_of_memory_cell_fails_alone_with_advice(tmp_path, tiny_model_dir, monkeypatch):
    import harness.runner

    real, calls = harness.runner.load_model, []

    def load(name, device, log=print):
        calls.append(1)
        if len(calls) == 1:
            torch.empty(1 << 50, dtype=torch.uint8, device=CUDA)  # a real CUDA OOM
        return real(name, device, log=log)

    monkeypatch.setattr(harness.runner, "load_model", load)
    before = torch.cuda.memory_allocated()
    code, results, out, _ = run_suite(tmp_path, str(tiny_model_dir), "oom")
    assert code == 1 and len(results) == 1
    (failure,) = [json.loads(p.read_text()) for p in out.glob("cells/*/failure.json")]
    text = json.dumps(failure)
    assert "out of GPU memory on" in text and "estimated peak" in text and "Fix:" in text
    assert torch.cuda.memory_allocated() <= before + (64 << 20)


@pytest.mark.slow
def test_embedded_model_cell_on_cuda_and_the_estimate(tmp_path, monkeypatch):
    """A reduced quickstart SFT cell on the embedded model on CUDA: its time, and its peak
    (torch.cuda.max_memory_allocated) beside harness.memory_fit's estimate."""
    from conftest import USER_CACHE
    from harness.config import load_suite
    from harness.errors import HarnessError
    from harness.grid import expand
    from harness.memory_fit import estimate
    from harness.models import provision_embedded

    if USER_CACHE:
        monkeypatch.setenv("HARNESS_CACHE", USER_CACHE)
    else:
        monkeypatch.delenv("HARNESS_CACHE", raising=False)
    try:
        provision_embedded("smollm2-135m-instruct", log=lambda m: None)
    except HarnessError as exc:
        pytest.skip(f"the embedded model is not available here ({exc.problem})")
    import yaml

    quickstart = Path(__file__).resolve().parent.parent / "benchmarks" / "suites" / "quickstart.yaml"
    suite = yaml.safe_load(quickstart.read_text())
    suite["methods"] = {"sft": {}}
    path = tmp_path / "quick.yaml"
    path.write_text(yaml.safe_dump(suite))
    from harness.cli import main

    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    assert main(["run", "--suite", str(path), "--out", str(tmp_path / "out"), "--device",
                 "cuda", "--quiet"]) == 0
    seconds = time.perf_counter() - started
    measured = torch.cuda.max_memory_allocated() / 2**30
    loaded = load_suite(str(path))
    e = estimate(expand(loaded)[0], loaded, "H100")
    (result,) = [json.loads(p.read_text()) for p in (tmp_path / "out").glob("cells/*/result.json")]
    record("embedded_quickstart_sft", {
        "seconds": round(seconds, 1), "train_s": round(result["timings"]["train_s"], 1),
        "eval_s": round(result["timings"]["eval_s"], 1), "R": result["R"],
        "peak_measured_gib": round(measured, 2), "peak_estimated_gib": e["peak_gib"],
        "estimate_components_gib": e["components"], "gpu": torch.cuda.get_device_name()})
    assert measured < 2 * e["peak_gib"]
