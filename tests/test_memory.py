"""harness/memory.py and harness/memory_fit.py: the peak-memory estimate against hand
computations (SmolLM2-135M and a Llama-2-7B config), the tiny model's measured parameter
bytes and the activations torch saves for backward; the fit verdict, the advice, and an
out-of-memory cell's failure."""

import dataclasses
import json

import pytest
import torch

from harness.errors import HarnessError
from harness.memory import GIB, Setup, arch_from_config, architecture, components
from harness.memory_fit import advice, estimate, parse_gpu, report
from harness.models import EMBEDDED_CONFIGS

LLAMA2_7B = {"model_type": "llama", "vocab_size": 32000, "hidden_size": 4096,
             "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
             "num_key_value_heads": 32, "tie_word_embeddings": False}


def setup(method="sft", precision="fp32", checkpointing=False, optimizer="adamw", batch=8,
          max_len=192, params=None, probes=()):
    return Setup(method, params or {}, precision, checkpointing, optimizer, batch, 1, max_len,
                 32, 48, tuple(probes))


def test_parameter_counts_by_hand():
    small = arch_from_config(EMBEDDED_CONFIGS["smollm2-135m-instruct"])
    # embeddings (tied: once) + 30 blocks (q, k, v, o, gate, up, down, 2 norms) + final norm
    block = 576 * 576 * 2 + 576 * 192 * 2 + 3 * 576 * 1536 + 2 * 576
    assert small.block_params == block == 3_540_096
    assert small.params == 49152 * 576 + 30 * block + 576 == 134_515_008
    big = arch_from_config(LLAMA2_7B)
    block = 4 * 4096 * 4096 + 3 * 4096 * 11008 + 2 * 4096
    assert big.params == 2 * 32000 * 4096 + 32 * block + 4096 == 6_738_415_616
    assert (big.kv_width, big.layers, big.vocab) == (4096, 32, 32000)


def test_135m_full_fine_tuning_by_hand():
    arch, p = arch_from_config(EMBEDDED_CONFIGS["smollm2-135m-instruct"]), 134_515_008
    h, kv, inter, layers, tokens = 576, 192, 1536, 30, 8 * 192
    logits = 8 * 192 * 49152 * 12
    train, _ = components(arch, setup())  # float32 weights, fused AdamW
    assert train == {"weights": 4 * p, "autocast copies": 0, "gradients": 4 * p,
                     "optimizer": 8 * p, "method copies": 0,
                     "activations": tokens * layers * (32 * h + 8 * kv + 16 * inter) + tokens * 9 * h,
                     "logits": logits}
    assert sum(train.values()) == 5_118_759_936  # 4.77 GiB
    train, _ = components(arch, setup(precision="bf16-weights", checkpointing=True,
                                      optimizer="adamw-8bit"))
    assert train == {"weights": 2 * p, "autocast copies": 0, "gradients": 2 * p,
                     "optimizer": 2 * p, "method copies": 0,
                     "activations": tokens * (layers * h * 2 + 20 * h + 4 * kv + 8 * inter)
                     + tokens * 6 * h, "logits": logits}  # bf16 embeddings: 6h a token
    assert sum(train.values()) == 1_809_201_024  # 1.68 GiB


def test_7b_full_fine_tuning_by_hand_and_what_fits_an_h100():
    arch, p = arch_from_config(LLAMA2_7B), 6_738_415_616
    h, inter, layers, tokens = 4096, 11008, 32, 4 * 512
    fp32 = setup(batch=4, max_len=512)
    train, _ = components(arch, fp32)
    assert train["weights"] + train["gradients"] + train["optimizer"] == 16 * p  # 100.4 GiB
    assert train["activations"] == tokens * layers * (32 * h + 8 * h + 16 * inter) + tokens * 9 * h
    assert sum(train.values()) == 130_956_722_176  # 122.0 GiB
    small = dataclasses.replace(fp32, precision="bf16-weights", checkpointing=True,
                                optimizer="adamw-8bit")
    train, _ = components(arch, small)
    assert train["weights"] + train["gradients"] + train["optimizer"] == 6 * p
    assert train["activations"] == tokens * (layers * h * 2 + 20 * h + 4 * h + 8 * inter) + tokens * 6 * h
    assert sum(train.values()) == 42_185_809_920  # 39.3 GiB
    # one setting is enough on an H100: bf16 weights halve weights, gradients and moments
    assert advice(arch, fp32, 79.1) == "fits with precision: bf16-weights (62.4 GiB)"
    auto = dataclasses.replace(fp32, precision="auto")  # CUDA's default: + bf16 copies
    assert components(arch, auto)[0]["autocast copies"] == 2 * p
    assert advice(arch, auto, 79.1) == "fits with precision: bf16-weights (62.4 GiB)"
    assert advice(arch, auto, 48) == ("fits with train.gradient_checkpointing: true, "
                                      "train.optimizer: adamw-8bit, precision: bf16-weights "
                                      "(39.3 GiB)")  # LoRA only where nothing else does
    assert advice(arch, auto, 24) == ("fits with train.gradient_checkpointing: true, "
                                      "precision: bf16-weights, LoRA (21.5 GiB)")
    assert advice(arch, auto, 16).endswith(
        "LoRA, train.batch_size 1 and eval.batch_size 4 (13.8 GiB)")
    assert advice(arch, auto, 8).startswith("does not fit even with")  # 12.5 GiB of weights


def test_method_copies_and_lora():
    arch = arch_from_config(EMBEDDED_CONFIGS["smollm2-135m-instruct"])
    p = arch.params
    copies = {m: components(arch, setup(m))[0]["method copies"]
              for m in ("sft", "sdft", "lwf", "selfaug", "ewc", "l2sp", "replay")}
    assert copies == {"sft": 0, "sdft": 4 * p, "lwf": 4 * p, "selfaug": 4 * p, "ewc": 8 * p,
                      "l2sp": 4 * p, "replay": 0}
    lora = components(arch, setup("lora", params={"lora": {"r": 16}}))[0]
    adapters = 30 * 16 * ((576 + 576) * 2 + (576 + 192) * 2 + (576 + 1536) * 3)
    assert lora["gradients"] == 4 * adapters and lora["optimizer"] == 8 * adapters
    assert lora["weights"] == 4 * p + 4 * adapters
    under_lora = components(arch, setup("selfaug", params={"lora": True}))[0]
    assert under_lora["method copies"] == 0  # the base is the same network, adapters off
    frozen = components(arch, setup("freeze", params={"top_k": 6}))[0]
    assert frozen["gradients"] == 4 * 6 * arch.block_params


def test_weights_equal_the_tiny_models_measured_bytes(tiny_model_dir):
    from harness.models import load_model
    from harness.precision import using

    arch = arch_from_config(json.loads((tiny_model_dir / "config.json").read_text()))
    for precision, dtype in (("fp32", torch.float32), ("bf16-weights", torch.bfloat16)):
        with using(precision):
            model = load_model(str(tiny_model_dir), "cpu")[0]
        measured = sum(p.numel() * p.element_size() for p in model.parameters())
        assert {p.dtype for p in model.parameters()} == {dtype}
        assert components(arch, setup(precision=precision))[0]["weights"] == measured


@pytest.mark.parametrize("precision", ["fp32", "bf16", "bf16-weights"])
@pytest.mark.parametrize("checkpointing", [False, True])
def test_activations_match_what_torch_saves_for_backward(precision, checkpointing):
    """The estimate's activations (+ autocast copies) against the bytes of every tensor
    saved for backward in a Llama backbone's forward (parameters left out), within 10%."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = {"model_type": "llama", "vocab_size": 512, "hidden_size": 256,
              "intermediate_size": 704, "num_hidden_layers": 3, "num_attention_heads": 4,
              "num_key_value_heads": 2, "tie_word_embeddings": True}
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**{k: v for k, v in config.items() if k != "model_type"}))
    if precision == "bf16-weights":
        model.to(torch.bfloat16)
    if checkpointing:
        model.activation_checkpointing_enable({"use_reentrant": False})
    model.train()
    params, saved = {p.data_ptr() for p in model.parameters()}, {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision != "fp32"):
            model.model(input_ids=torch.randint(0, 512, (2, 64)))
    train, _ = components(arch_from_config(config), setup(precision=precision, batch=2,
                                                          max_len=64, checkpointing=checkpointing))
    want = train["activations"] + (train["autocast copies"] if not checkpointing else 0)
    if checkpointing:  # the forward keeps block inputs; one block is recomputed in backward
        a = arch_from_config(config)
        want -= 128 * {"fp32": 32 * 256 + 8 * 128 + 16 * 704,
                       "bf16": 28 * 256 + 4 * 128 + 8 * 704}.get(precision, 20 * 256 + 4 * 128 + 8 * 704)
        assert a.layers == 3
    assert sum(saved.values()) == pytest.approx(want, rel=0.1)


def test_parse_gpu():
    assert parse_gpu("H100") == ("H100", 79.1) and parse_gpu("h200")[0] == "H200"
    assert parse_gpu("A100")[0] == "A100-80" and parse_gpu("a100-40gb")[0] == "A100-40"
    assert parse_gpu("24") == ("24 GiB", 24.0) and parse_gpu("48GiB")[1] == 48.0
    with pytest.raises(HarnessError, match="unknown GPU 'TPU'"):
        parse_gpu("TPU")


def test_estimate_and_report_on_the_leaderboard_grid():
    from harness.config import load_suite
    from harness.grid import expand

    suite = load_suite("leaderboard")
    cell = next(c for c in expand(suite) if c.method.name == "sdft")
    e = estimate(cell, suite, "H100")
    assert e["fits"] and e["advice"] is None and e["gpu"] == "H100"
    assert 1 < e["peak_gib"] < 10 and e["components"]["method copies"] > 0
    tight = estimate(cell, suite, 3)
    assert not tight["fits"] and tight["advice"] == (
        "fits with train.gradient_checkpointing: true, precision: bf16-weights (2.5 GiB)")
    lines = report(suite, "H100")
    assert len(lines) == 84 + 2 and lines[-1] == "every cell fits on H100"
    assert "DOES NOT FIT" in "\n".join(report(suite, 1))


def test_jobs_on_one_gpu_sum_the_largest_peaks():
    """`--jobs N` on one GPU: the N largest peaks together must fit; where they do not, the
    most that do is the advice (N over --devices: that many a GPU)."""
    from harness.config import load_suite
    from harness.grid import expand
    from harness.memory_fit import USABLE, shared_fit, sharing, sharing_line

    assert (sharing(None, None), sharing(8, None), sharing(8, ["0", "1"]),
            sharing(3, ["0", "1"]), sharing(None, ["0", "1"])) == (1, 8, 4, 2, 1)
    suite = load_suite("leaderboard")
    peaks = sorted((estimate(c, suite)["peak_gib"] for c in expand(suite)), reverse=True)
    gib = (peaks[0] + peaks[1] + peaks[2] / 2) / USABLE  # room for two of the largest
    f = shared_fit(suite, gib, 3)
    assert f["worst_gib"] == pytest.approx(sum(peaks[:3]), abs=0.02)
    assert not f["fits"] and f["most"] == 2
    assert shared_fit(suite, gib, 2)["fits"]
    line = sharing_line(suite, gib, "GPU", 3, None)
    assert "DOES NOT FIT" in line and "use --jobs 2;" in line
    assert "use --jobs 4;" in sharing_line(suite, gib, "GPU", 6, ["0", "1"])
    assert sharing_line(suite, gib, "GPU", 2, None).endswith(": fits")
    assert sharing_line(suite, gib, "GPU", 2, ["0", "1"]) is None  # a cell a GPU
    lines = report(suite, gib, jobs=3)
    assert lines[-1] == line.replace("(GPU)", f"({gib:g} GiB)")
    assert lines[-2] == f"every cell fits on {gib:g} GiB"


def test_embedded_model_config_before_provisioning(tmp_path, monkeypatch):
    from harness.models import model_config

    monkeypatch.setenv("HARNESS_MODEL_CACHE", str(tmp_path / "empty"))
    assert model_config("smollm2-135m-instruct") == EMBEDDED_CONFIGS["smollm2-135m-instruct"]
    architecture.cache_clear()
    assert architecture("smollm2-135m-instruct").params == 134_515_008


def test_known_hub_configs_stand_in_offline(monkeypatch):
    import harness.models

    def unreachable(name):
        raise HarnessError(f"model '{name}' is not reachable", "offline")

    monkeypatch.setattr(harness.models, "model_config", unreachable)
    architecture.cache_clear()
    try:
        assert 7.6e9 < architecture("Qwen/Qwen2.5-7B-Instruct").params < 7.7e9
        assert architecture("meta-llama/Llama-2-7b-chat-hf").params == 6_738_415_616
        with pytest.raises(HarnessError, match="not reachable"):
            architecture("someone/unknown-model")
    finally:
        architecture.cache_clear()


@pytest.mark.parametrize("error", [torch.cuda.OutOfMemoryError("CUDA out of memory. Tried"),
                                   RuntimeError("CUDA error: out of memory")])
def test_out_of_memory_fails_only_its_cell_with_advice(tmp_path, tiny_model_dir, monkeypatch,
                                                       error):
    import harness.runner
    from harness.cli import main
    from helpers import tiny_suite

    real = harness.runner.load_model

    def load(name, device, log=print):
        if load.calls == 0:
            load.calls += 1
            raise error
        return real(name, device, log=log)

    load.calls = 0
    monkeypatch.setattr(harness.runner, "load_model", load)
    out = tmp_path / "out"
    assert main(["run", "--suite", str(tiny_suite(tmp_path, str(tiny_model_dir))),
                 "--out", str(out), "--quiet"]) == 1
    failures = [json.loads(p.read_text()) for p in out.glob("cells/*/failure.json")]
    assert len(failures) == 1 and len(list(out.glob("cells/*/result.json"))) == 1
    text = json.dumps(failures[0])
    assert "out of GPU memory" in text and "estimated peak" in text and "Fix:" in text


def test_other_errors_pass_through_the_oom_guard():
    from harness.oom import advise_on_oom, is_oom

    assert not is_oom(RuntimeError("shape mismatch")) and is_oom(RuntimeError("out of memory"))

    @advise_on_oom
    def run_cell(runner, cell):
        raise ValueError("not memory")

    with pytest.raises(ValueError, match="not memory"):
        run_cell(None, None)
    assert GIB == 1 << 30


def test_sdft_teacher_in_cpu_memory_is_offered_before_lossy_settings():
    """7B full fine-tuning with SDFT on an H100: the EMA teacher in CPU memory (the same
    numbers) is what makes it fit, before 8-bit AdamW or LoRA."""
    arch = arch_from_config(LLAMA2_7B)
    s = setup("sdft", precision="bf16-weights", checkpointing=True, batch=4, max_len=2048,
              params={"max_new_tokens": 1024})
    on_gpu = components(arch, s)[0]["method copies"]
    assert on_gpu == pytest.approx(arch.params * 2)  # bf16 EMA of every weight
    off = dataclasses.replace(s, params={**s.params, "teacher_device": "cpu"})
    assert components(arch, off)[0]["method copies"] == 0
    gpu = (sum(components(arch, off)[0].values()) / GIB + 1) / 0.92  # fits only without it
    assert advice(arch, s, gpu).startswith("fits with sdft.teacher_device: cpu (")


def test_sdft_rollouts_per_prompt_multiply_the_sequences():
    """`rollouts: 4` scores 4 completions a prompt: activations, logits and the sampling
    KV cache are those of a 4x larger batch; weights and optimiser do not change."""
    arch = architecture("smollm2-135m-instruct")
    one = setup("sdft", params={"max_new_tokens": 64}, batch=8)
    four = dataclasses.replace(one, params={"max_new_tokens": 64, "rollouts": 4})
    wide = dataclasses.replace(one, batch=32)
    (a, _), (b, _), (c, _) = (components(arch, x)[:2] for x in (one, four, wide))
    assert b == c and b["optimizer"] == a["optimizer"] and b["weights"] == a["weights"]
    assert sum(b.values()) > sum(a.values())
    big = arch_from_config(LLAMA2_7B)  # `sample_steps: N`: N steps' rollouts in one call
    kv = [components(big, setup("sdft", checkpointing=True, batch=4, max_len=2048, params={
        "max_new_tokens": 1024, "sample_steps": n}))[0].get("rollout kv cache") for n in (8, 16)]
    assert kv[0] and kv[1] == pytest.approx(2 * kv[0])
