"""The catalogue of docs/errors.md, one test per case.

A user error prints one line `harness: error: <problem>. Fix: <fix>`, exits 2 and writes
no result; a fault during a run never ends in a traceback, a lost grid or a result that
looks complete. Each case builds its bad input in tmp_path around the tiny model.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from harness.cli import main
from helpers import tiny_suite


class Env:
    """Builds bad inputs in a test's tmp_path: suites, model folders, plugins."""

    def __init__(self, tmp: Path, model: Path, monkeypatch):
        self.tmp, self.model, self.monkeypatch = tmp, model, monkeypatch
        self.out = tmp / "out"

    def suite(self, **overrides) -> str:
        return str(tiny_suite(self.tmp, str(self.model), **overrides))

    def train(self, **changes) -> str:
        train = yaml.safe_load(Path(self.suite()).read_text())["train"]
        return self.suite(train={**train, **changes})

    def text(self, text: str | bytes, name: str = "bad.yaml") -> str:
        path = self.tmp / name
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        return str(path)

    def run(self, suite: str, *extra: str) -> list[str]:
        return ["run", "--suite", suite, "--out", str(self.out), *extra]

    def model_dir(self, name: str = "m", remove=(), write=None) -> str:
        folder = self.tmp / name
        shutil.copytree(self.model, folder)
        for file in remove:
            (folder / file).unlink()
        for file, data in (write or {}).items():
            (folder / file).write_bytes(data)
        return str(folder)

    def with_model(self, *extra: str, **change) -> list[str]:
        return self.run(self.suite(models=[self.model_dir(**change)]), *extra)

    def plugin(self, code: str, name: str = "plugin.py") -> str:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("from harness.methods import Method\n\n" + code)
        return str(path)

    def unwritable(self) -> Path:
        """A folder nobody can write: read-only, or under /proc where permissions do not
        bind (running as root)."""
        folder = self.tmp / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder if not os.access(folder, os.W_OK) else Path("/proc/harness-read-only")

    def a_file(self) -> Path:
        path = self.tmp / "a-file"
        path.write_text("not a folder")
        return path


@pytest.fixture
def env(tmp_path, tiny_model_dir, monkeypatch):
    yield Env(tmp_path, tiny_model_dir, monkeypatch)
    if (tmp_path / "read-only").exists():
        (tmp_path / "read-only").chmod(0o755)  # so that pytest can clean up


def weights(env) -> bytes:
    return (env.model / "model.safetensors").read_bytes()


def other_config(env, kind: str, **change) -> bytes:
    """A config.json of another architecture (or size) than the tiny Llama's weights."""
    from transformers import AutoConfig

    if kind == "llama":
        config = json.loads((env.model / "config.json").read_text()) | change
        return json.dumps(config).encode()
    return AutoConfig.for_model(kind).to_json_string().encode()


def unknown_lmeval_probe(env):
    class TaskManager:  # lm-eval's index takes ~15 s to build: a stand-in with one task
        all_tasks = ["hellaswag"]

    env.monkeypatch.setattr("lm_eval.tasks.TaskManager", TaskManager)
    return env.run(env.suite(probes=["lm-eval:nosuch"]))


def report_on_sft_cell(env, *extra):
    """A run folder holding one complete (minimal) sft cell, kept outside OUT: `harness
    report` must write nothing when it refuses."""
    run = env.tmp / "run"
    (run / "cells" / "c").mkdir(parents=True)
    (run / "cells" / "c" / "result.json").write_text(json.dumps({
        "status": "complete", "cell": {"model": "m", "stream": "s", "method": "sft", "seed": 0},
        "R": [[0.0], [1.0]], "metrics": {}}))
    return ["report", str(run), *extra]


def report_on_empty_cells(env, *extra):
    (env.out / "cells").mkdir(parents=True)
    return ["report", str(env.out), *extra]


SUITE_OK = "models: [M]\nstreams: [arith-json]\nmethods: [sft]\nseeds: [0]\ntrain: {steps: 1}\n"

# (id, what the line must contain, the command line built in tmp_path)
USER_ERRORS = [
    # -- suite file ---------------------------------------------------------------------
    ("unknown-suite", ["unknown suite 'nope'", "quickstart"], lambda e: ["run", "--suite", "nope"]),
    ("missing-suite-file", ["does not exist"], lambda e: e.run(str(e.tmp / "x.yaml"))),
    ("suite-file-is-a-folder", ["x.yaml' is a folder"],
     lambda e: (e.tmp / "x.yaml").mkdir() or e.run(str(e.tmp / "x.yaml"))),
    ("malformed-yaml", ["malformed YAML at line"], lambda e: e.run(e.text("models: [a, b\nseeds: [0\n"))),
    ("not-utf8", ["is not UTF-8 text", "byte 0xe9"],
     lambda e: e.run(e.text(SUITE_OK.encode() + b"description: caf\xe9\n"))),
    ("duplicate-key", ["duplicate key 'train'", "line 6"],
     lambda e: e.run(e.text(SUITE_OK + "train: {steps: 2}\n"))),
    ("duplicate-nested-key", ["duplicate key 'steps'"],
     lambda e: e.run(e.text(SUITE_OK.replace("{steps: 1}", "{steps: 1, steps: 2}")))),
    ("not-a-mapping", ["not a mapping of settings"], lambda e: e.run(e.text("- sft\n- lora\n"))),
    ("empty-file", ["not a mapping of settings"], lambda e: e.run(e.text("# nothing yet\n"))),
    ("unknown-top-key", ["unknown key 'colour'"], lambda e: e.run(e.suite(colour="blue"))),
    ("missing-key", ["missing key 'seeds'"],
     lambda e: e.run(e.text(SUITE_OK.replace("seeds: [0]\n", "")))),
    ("name-not-text", ["name must be a word", "['a', 'b']"], lambda e: e.run(e.suite(name=["a", "b"]))),
    ("name-escapes-runs", ["name must be a word"], lambda e: e.run(e.suite(name="../elsewhere"))),
    ("description-not-text", ["description must be text"], lambda e: e.run(e.suite(description=5))),
    # -- suite values: the grid ---------------------------------------------------------
    ("models-empty", ["'models' must be a non-empty list"], lambda e: e.run(e.suite(models=[]))),
    ("model-not-a-name", ["'models' must list names"], lambda e: e.run(e.suite(models=[{"a": 1}]))),
    ("model-twice", ["models repeat"], lambda e: e.run(e.suite(models=[str(e.model)] * 2))),
    ("unknown-stream", ["unknown stream 'no-such-stream'"], lambda e: e.run(e.suite(streams=["no-such-stream"]))),
    ("stream-twice", ["streams repeat"], lambda e: e.run(e.suite(streams=["arith-json", "arith-json"]))),
    ("unknown-task", ["unknown task 'nope'", "arith"], lambda e: e.run(e.suite(streams={"s": ["arith", "nope"]}))),
    ("task-not-a-name", ["unknown task {'a': 1}"], lambda e: e.run(e.suite(streams={"s": [{"a": 1}]}))),
    ("stream-empty", ["stream 's' is empty"], lambda e: e.run(e.suite(streams={"s": []}))),
    ("stream-not-a-list", ["stream 's' must be a list of tasks"], lambda e: e.run(e.suite(streams={"s": "arith"}))),
    ("stream-repeats-task", ["stream 's' repeats a task"], lambda e: e.run(e.suite(streams={"s": ["arith", "arith"]}))),
    ("seeds-empty", ["'seeds' must be a non-empty list"], lambda e: e.run(e.suite(seeds=[]))),
    ("seeds-repeat", ["seeds repeat"], lambda e: e.run(e.suite(seeds=[0, 0]))),
    ("seed-negative", ["seeds must be whole numbers from 0 to 4294967295, got [-1]"],
     lambda e: e.run(e.suite(seeds=[-1]))),
    ("seed-fraction", ["seeds must be whole numbers from 0", "got [1.5]"], lambda e: e.run(e.suite(seeds=[1.5]))),
    ("seed-huge", ["seeds must be whole numbers from 0", "got [18446744073709551616]"],
     lambda e: e.run(e.suite(seeds=[2**64]))),
    ("unknown-probe", ["unknown probe 'nope'"], lambda e: e.run(e.suite(probes=["nope"]))),
    ("probe-twice", ["probes repeat"], lambda e: e.run(e.suite(probes=["drift", "drift"]))),
    ("unknown-lmeval-task", ["unknown lm-eval task 'nosuch'", "lm_eval ls tasks"],
     unknown_lmeval_probe),
    # -- suite values: settings ---------------------------------------------------------
    ("train-not-a-mapping", ["train: expected a mapping"], lambda e: e.run(e.suite(train=5))),
    ("train-unknown-key", ["unknown key 'lern_rate'"], lambda e: e.run(e.train(lern_rate=1))),
    ("no-budget", ["neither steps nor epochs"], lambda e: e.run(e.suite(train={"lr": 1e-3}))),
    ("train-empty", ["train: neither steps nor epochs"], lambda e: e.run(e.suite(train=None))),
    ("steps-and-epochs", ["both steps and epochs are set"], lambda e: e.run(e.train(epochs=2))),
    ("lr-nan", ["lr must be a finite number"], lambda e: e.run(e.train(lr=float("nan")))),
    ("steps-inf", ["steps must be a finite number"], lambda e: e.run(e.train(steps=float("inf")))),
    ("lr-absurd", ["lr must be <= 1, got 1e+30"], lambda e: e.run(e.train(lr=1e30))),
    ("lr-negative", ["lr must be > 0, got -1"], lambda e: e.run(e.train(lr=-1))),
    ("lr-text", ["lr must be a number, got 'a lot'"], lambda e: e.run(e.train(lr="a lot"))),
    ("lr-null", ["lr must be a number, got None"], lambda e: e.run(e.train(lr=None))),
    ("steps-zero", ["steps must be > 0, got 0"], lambda e: e.run(e.train(steps=0))),
    ("batch-size-fraction", ["batch_size must be a whole number"], lambda e: e.run(e.train(batch_size=2.5))),
    ("max-len-tiny", ["max_len must be at least 16 tokens", "max_len: 256"], lambda e: e.run(e.train(max_len=4))),
    ("warmup-ratio-one", ["warmup_ratio must be < 1"], lambda e: e.run(e.train(warmup_ratio=1))),
    ("flag-not-bool", ["mix_within_batches must be true or false"], lambda e: e.run(e.train(mix_within_batches=3))),
    ("n-test-zero", ["data: n_test must be > 0"], lambda e: e.run(e.suite(data={"n_test": 0}))),
    ("data-seed-negative", ["data: seed must be >= 0"], lambda e: e.run(e.suite(data={"seed": -1}))),
    ("data-unknown-key", ["unknown key 'n_tests'"], lambda e: e.run(e.suite(data={"n_tests": 4}))),
    ("eval-batch-size-negative", ["eval: batch_size must be > 0"], lambda e: e.run(e.suite(eval={"batch_size": -1}))),
    # -- command line -------------------------------------------------------------------
    ("no-command", ["required: command"], lambda e: []),
    ("no-suite", ["required: --suite"], lambda e: ["run"]),
    ("unknown-option", ["unrecognized arguments: --sedes"], lambda e: e.run(e.suite(), "--sedes", "1")),
    ("list-unknown", ["invalid choice: 'nothing'"], lambda e: ["list", "nothing"]),
    ("seeds-not-numbers", ["--seeds expects whole numbers"], lambda e: e.run(e.suite(), "--seeds", "a")),
    ("seeds-empty-flag", ["--seeds: names no seed"], lambda e: e.run(e.suite(), "--seeds", "")),
    ("seeds-negative-flag", ["--seeds: seeds must be whole numbers from 0", "Fix: e.g. --seeds 0,1,2"], lambda e: e.run(e.suite(), "--seeds", "-1")),
    ("seeds-twice-flag", ["--seeds: seeds repeat"], lambda e: e.run(e.suite(), "--seeds", "0,0")),
    ("methods-empty-flag", ["--methods: names no method"], lambda e: e.run(e.suite(), "--methods", "")),
    ("methods-twice-flag", ["--methods: methods repeat: 'sft'"], lambda e: e.run(e.suite(), "--methods", "sft,sft")),
    ("train-optimizer-unknown", ["train: optimizer must be one of adamw, adamw-8bit, "
                                 "paged-adamw-8bit, got 'sgd'"], lambda e: e.run(e.train(optimizer="sgd"))),
    ("eval-rows-unknown", ["eval: rows must be one of all, own-and-final, got 'diagonal'",
                           "Fix: e.g. rows: own-and-final"],
     lambda e: e.run(e.suite(eval={"batch_size": 8, "rows": "diagonal"}))),
    ("eval-probe-rows-unknown", ["eval: probe_rows must be one of all, final, got 'last'",
                                 "Fix: e.g. probe_rows: final"],
     lambda e: e.run(e.suite(eval={"batch_size": 8, "probe_rows": "last"}))),
    ("device-unknown", ["unknown device 'tpu'"], lambda e: e.run(e.suite(), "--device", "tpu")),
    ("precision-unknown", ["precision must be one of auto, fp32, bf16, bf16-weights, got 'fp16'", "e.g. precision: bf16"],
     lambda e: e.run(e.suite(precision="fp16"))),
    ("precision-flag-unknown", ["--precision: precision must be one of auto, fp32, bf16", "e.g. --precision bf16"],
     lambda e: e.run(e.suite(), "--precision", "half")),
    ("device-cuda-missing", ["no CUDA device is visible"], lambda e: e.run(e.suite(), "--device", "cuda"),
     pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is here")),
    ("report-missing-folder", ["does not exist"], lambda e: ["report", str(e.tmp / "nosuch")]),
    ("report-no-cells", ["has no cells/ folder"], lambda e: ["report", str(e.tmp)]),
    ("report-empty-cells", ["holds no cell folders"], report_on_empty_cells),
    ("report-alpha", ["--alpha must be between 0 and 1, got 2.0"],
     lambda e: report_on_empty_cells(e, "--alpha", "2")),
    ("report-alpha-text", ["invalid float value: 'abc'"], lambda e: ["report", str(e.out), "--alpha", "abc"]),
    ("report-unknown-reference", ["reference method 'nosuch' has no complete cell"],
     lambda e: report_on_sft_cell(e, "--reference", "nosuch")),
    # -- models -------------------------------------------------------------------------
    ("unknown-model", ["unknown model 'no-such-model'"], lambda e: e.run(e.suite(models=["no-such-model"]))),
    ("model-folder-missing", ["model directory './no/such/folder' does not exist"],
     lambda e: e.run(e.suite(models=["./no/such/folder"]))),
    ("model-is-a-file", ["is not a folder"], lambda e: e.run(e.suite(models=[str(e.model / "config.json")]))),
    ("model-no-config", ["has no config.json"], lambda e: e.with_model(remove=["config.json"])),
    ("model-empty-folder", ["has no config.json"],
     lambda e: (e.tmp / "empty").mkdir() or e.run(e.suite(models=[str(e.tmp / "empty")]))),
    ("model-no-config-dry-run", ["has no config.json"], lambda e: e.with_model("--dry-run", remove=["config.json"])),
    ("model-config-corrupt", ["unusable config.json"], lambda e: e.with_model(write={"config.json": b"{not json"})),
    ("model-type-unknown", ["unusable config.json", "nosuchmodel"],
     lambda e: e.with_model(write={"config.json": b'{"model_type": "nosuchmodel"}'})),
    ("model-no-tokenizer", ["has no tokenizer files", "tokenizer.save_pretrained"],
     lambda e: e.with_model(remove=["tokenizer.json"])),
    ("model-tokenizer-corrupt", ["corrupt tokenizer.json"], lambda e: e.with_model(write={"tokenizer.json": b"{"})),
    ("model-no-weights", ["has no weights"], lambda e: e.with_model(remove=["model.safetensors"])),
    ("model-weights-truncated", ["model.safetensors is truncated"],
     lambda e: e.with_model(write={"model.safetensors": weights(e)[: len(weights(e)) // 2]})),
    ("model-weights-garbage", ["model.safetensors is truncated or corrupt"],
     lambda e: e.with_model(write={"model.safetensors": b"\xff" * 64})),
    ("model-weights-empty", ["model.safetensors is empty"], lambda e: e.with_model(write={"model.safetensors": b""})),
    ("model-shard-missing", ["lacks weight shard model-00002-of-00002.safetensors"],
     lambda e: e.with_model(remove=["model.safetensors"], write={"model.safetensors.index.json": json.dumps(
         {"weight_map": {"a": "model-00002-of-00002.safetensors"}}).encode()})),
    ("model-config-other-architecture", ["config.json that does not match its weights",
                                         "gpt2 architecture", "use the config.json saved with"],
     lambda e: e.with_model(write={"config.json": other_config(e, "gpt2")})),
    ("model-config-other-size", ["config.json that does not match its weights",
                                 "is [512, 64] in the weights, [512, 96] by the llama config"],
     lambda e: e.with_model(write={"config.json": other_config(e, "llama", hidden_size=96)})),
    ("hub-id-offline", ["not in the local Hugging Face cache", "HF_HUB_OFFLINE"],
     lambda e: e.monkeypatch.setenv("HF_HUB_OFFLINE", "1") or e.run(e.suite(models=["no-org/no-such-model"]))),
    ("model-folders-one-name", ["would share the cell folder cells/tiny__", "different names"],
     lambda e: e.run(e.suite(models=[e.model_dir("a/tiny"), e.model_dir("b/tiny")]))),
    ("streams-one-folder", ["streams 'my stream' and 'my-stream' would share"],
     lambda e: e.run(e.suite(streams={"my stream": ["arith"], "my-stream": ["facts"]}))),
    # -- methods and plugins ------------------------------------------------------------
    ("unknown-method", ["unknown method 'nope'", "sft"], lambda e: e.run(e.suite(methods=["nope"]))),
    ("unknown-method-typo", ["unknown method 'sfft' (did you mean 'sft'?)"],
     lambda e: e.run(e.suite(methods=["sfft"]))),
    ("method-twice", ["methods repeat: 'sft'"], lambda e: e.run(e.suite(methods=["sft", "sft"]))),
    ("method-not-a-name", ["'methods' must list names"], lambda e: e.run(e.suite(methods=[{"sft": {}}]))),
    ("method-settings-not-mapping", ["methods.sft must be a mapping of settings, got 5"],
     lambda e: e.run(e.suite(methods={"sft": 5}))),
    ("method-unknown-setting", ["no setting rank", "r, alpha"], lambda e: e.run(e.suite(methods={"lora": {"rank": 4}}))),
    ("method-constructor-rejects", ["method 'ewc' rejected its settings (fisher: 'exact')", "ValueError"],
     lambda e: e.run(e.suite(methods={"ewc": {"fisher": "exact"}}))),
    ("method-setting-choice", ["methods.sdft", "kl"], lambda e: e.run(e.suite(methods={"sdft": {"kl": "kld"}}))),
    ("method-setting-type", ["ratio must be a finite number, got 'a lot'"],
     lambda e: e.run(e.suite(methods={"mix-external": {"ratio": "a lot"}}))),
    ("method-setting-nan", ["ema_rate must be a finite number"], lambda e: e.run(e.suite(methods={"sdft": {"ema_rate": float("nan")}}))),
    ("method-setting-whole", ["buffer_per_task must be a whole number"],
     lambda e: e.run(e.suite(methods={"replay": {"buffer_per_task": 2.5}}))),
    ("method-flag-not-bool", ["train_embeddings must be true or false"],
     lambda e: e.run(e.suite(methods={"freeze": {"train_embeddings": "yes"}}))),
    ("method-lora-not-bool", ["lora must be true, false or a mapping"], lambda e: e.run(e.suite(methods={"sdft": {"lora": 5}}))),
    ("lora-r-zero", ["LoRA r must be >= 1, got 0"], lambda e: e.run(e.suite(methods={"lora": {"r": 0}}))),
    ("lora-r-negative", ["LoRA r must be >= 1, got -2"], lambda e: e.run(e.suite(methods={"lora": {"r": -2}}))),
    ("lora-r-fraction", ["r must be a whole number, got 2.5"], lambda e: e.run(e.suite(methods={"lora": {"r": 2.5}}))),
    ("lora-r-text", ["r must be a whole number, got 'big'"], lambda e: e.run(e.suite(methods={"lora": {"r": "big"}}))),
    ("lora-dropout", ["LoRA dropout must be in [0, 1)"], lambda e: e.run(e.suite(methods={"lora": {"dropout": 1.5}}))),
    ("lora-mapping-unknown", ["methods.selfaug.lora: unknown LoRA setting rank"],
     lambda e: e.run(e.suite(methods={"selfaug": {"lora": {"rank": 4}}}))),
    ("method-train-override", ["methods.sft.train: lr must be <= 1"],
     lambda e: e.run(e.suite(methods={"sft": {"train": {"lr": 2}}}))),
    ("method-file-missing", ["method file 'x.py' does not exist"], lambda e: e.run(e.suite(), "--methods", "x.py:Y")),
    ("method-class-missing", ["has no class 'Nope'", "name one of its method classes"],
     lambda e: e.run(e.suite(), "--methods", e.plugin("class Yes(Method):\n    pass\n") + ":Nope")),
    ("method-class-not-method", ["'Plain' in", "is not a harness Method subclass"],
     lambda e: e.run(e.suite(), "--methods", e.plugin("class Plain:\n    pass\n") + ":Plain")),
    ("plugin-constructor-raises", ["plugin.py:Bad' rejected its settings", "RuntimeError: no GPU today"],
     lambda e: e.run(e.suite(), "--methods", e.plugin(
         "class Bad(Method):\n    name = 'bad'\n    def __init__(self, **p):\n"
         "        raise RuntimeError('no GPU today')\n") + ":Bad")),
    ("plugin-defaults-not-dict", ["Odd.defaults must be a mapping"],
     lambda e: e.run(e.suite(), "--methods", e.plugin("class Odd(Method):\n    defaults = None\n") + ":Odd")),
    ("plugins-one-name", ["two different methods are named 'm'", "give one of the classes another name"],
     lambda e: e.run(e.suite(), "--methods", ",".join(
         e.plugin("class M(Method):\n    name = 'm'\n", f"{d}/m.py") + ":M" for d in ("a", "b")))),
    ("plugin-no-name", ["has no name", "set one in the class"],
     lambda e: e.run(e.suite(), "--methods", e.plugin("class N(Method):\n    pass\n") + ":N")),
    # -- output and caches --------------------------------------------------------------
    ("out-is-a-file", ["cannot write to the output folder", "is a file", "--out"],
     lambda e: ["run", "--suite", e.suite(), "--out", str(e.a_file())]),
    ("out-read-only", ["cannot write to the output folder", "--out"],
     lambda e: ["run", "--suite", e.suite(), "--out", str(e.unwritable() / "out")]),
    ("cache-unwritable", ["cannot write to the cache", "set HARNESS_CACHE to a writable folder"],
     lambda e: e.monkeypatch.setenv("HARNESS_CACHE", str(e.unwritable() / "cache")) or e.run(e.suite())),
    ("cache-under-a-file", ["cannot write to the cache", "is a file"],
     lambda e: e.monkeypatch.setenv("HARNESS_CACHE", str(e.a_file() / "cache")) or e.run(e.suite())),
    ("model-cache-unwritable", ["cannot write the model cache", "HARNESS_MODEL_CACHE"],
     lambda e: e.monkeypatch.setenv("HARNESS_MODEL_CACHE", str(e.a_file() / "models"))
     or e.run(e.suite(models=["smollm2-135m-instruct"]))),
]


@pytest.mark.parametrize("needles, build", [pytest.param(*c[1:3], id=c[0], marks=c[3:])
                                             for c in USER_ERRORS])
def test_user_error(env, capsys, needles, build):
    code = main(build(env))
    out, err = capsys.readouterr()
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness: error:") and ". Fix: " in lines[0], err
    assert "Traceback" not in out + err
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not list(env.out.rglob("result.json")) and not list(env.tmp.rglob("report.md"))


def test_catalogue_lists_every_case():
    """docs/errors.md and this file describe the same cases."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "errors.md").read_text()
    ids = [c[0] for c in USER_ERRORS] + FAULTS
    missing = [i for i in ids if f"`{i}`" not in doc]
    assert not missing, missing


# -- accepted input that used to be refused or misread -----------------------------------

def test_exponent_numbers_and_merge_keys_are_read(env):
    """1e-3 is a number (YAML 1.2), a whole 1e1 a whole number, and keys merged with `<<`
    may be overridden without counting as duplicates."""
    from harness.config import load_suite

    suite = load_suite(env.text(SUITE_OK.replace("[M]", f"[{env.model}]").replace(
        "methods: [sft]", "methods:\n  lora: &small {r: 4, alpha: 8}\n"
        "  selfaug: {lora: {<<: *small, r: 2}}").replace(
        "train: {steps: 1}", "train: {steps: 1e1, lr: 1e-3}")))
    assert suite.train.lr == 1e-3 and suite.train.steps == 10 and isinstance(suite.train.steps, int)
    assert suite.methods[1].params["lora"] == {"r": 2, "alpha": 8}


# -- faults during a run ------------------------------------------------------------------

FAULTS = ["disk-full-mid-run", "result-not-an-object", "general-answers-corrupt",
          "cache-entry-wrong-shape", "plugin-import-fails"]

FAST = {"streams": {"one": ["arith"]}, "probes": [], "data": {"n_train": 4, "n_test": 2},
        "train": {"steps": 1, "lr": 1e-3, "batch_size": 4, "max_len": 96}}


def test_disk_full_mid_run(env, capsys, monkeypatch):
    """`disk-full-mid-run`: every atomic write fails half-way. The grid stops cleanly at
    the first cell (exit 1, one line why), no temp file or result is left behind."""
    real = Path.write_text

    def full_disk(self, data, *args, **kwargs):
        if ".tmp-" in self.name:
            real(self, data[:10], *args, **kwargs)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full_disk)
    code = main(env.run(env.suite(methods=["sft", "lora"], **FAST), "--quiet"))
    out, err = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in out + err
    flat = " ".join(out.split())  # the log wraps long lines
    assert "the output disk is full ('" in flat and "failure.json': No space left on device): " \
        "stopping with 1 cells not run. Fix: free space on it (or give --out a folder on " \
        "another disk), then re-run the same command to resume" in flat
    assert not list(env.tmp.rglob("result.json")) and not list(env.tmp.rglob("failure.json"))
    assert not list(env.tmp.rglob("*.tmp-*")), "a failed atomic write left its temp file"


@pytest.mark.parametrize("content", ["[]", "3"])
def test_result_not_an_object(env, capsys, content):
    """`result-not-an-object`: a result.json that is JSON but not an object is corrupt:
    --dry-run says so and a run re-runs the cell."""
    from harness.config import load_suite
    from harness.grid import expand

    suite = env.suite(methods=["sft"], **FAST)
    cell = expand(load_suite(suite))[0]
    (env.out / "cells" / cell.id).mkdir(parents=True)
    (env.out / "cells" / cell.id / "result.json").write_text(content)
    assert main(env.run(suite, "--dry-run")) == 0
    out, err = capsys.readouterr()
    assert "corrupt" in out and "Traceback" not in out + err
    if content == "[]":  # one real re-run is enough
        assert main(env.run(suite, "--quiet")) == 0
        result = json.loads((env.out / "cells" / cell.id / "result.json").read_text())
        assert result["status"] == "complete"


def test_general_answers_corrupt(tiny):
    """`general-answers-corrupt`: a damaged entry of the drift probe's cached base answers
    is rebuilt, whatever is wrong with it."""
    from harness.storage import cache_dir
    from harness.probes import base_general_answers

    model, tok = tiny
    first = base_general_answers(model, tok, "tiny")
    (entry,) = (cache_dir() / "general_answers").glob("*.json")
    for damage in ["{not json", "[]", '{"key": 1}', '{"value": 3}', '{"value": [[1, "x"]]}',
                   '{"value": [[1, 2]]}']:
        entry.write_text(damage)
        assert base_general_answers(model, tok, "tiny") == first, damage
        assert json.loads(entry.read_text())["value"] == first


def test_cache_entry_wrong_shape(tmp_path):
    """`cache-entry-wrong-shape`: Cache.get_or_compute treats unreadable, non-object,
    valueless or (by the caller's check) misshapen entries as misses."""
    from harness.storage import Cache

    cache = Cache(tmp_path)
    path = cache.path("ns", "k")
    for damage in [b"\xff\xfe", b"[]", b"3", b'{"key": "k"}', b'{"value": "three"}']:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(damage)
        assert cache.get_or_compute("ns", "k", lambda: [1, 2], valid=lambda v: isinstance(v, list)) == [1, 2]
        assert json.loads(path.read_text())["value"] == [1, 2]
    assert cache.get_or_compute("ns", "k", lambda: pytest.fail("not a hit")) == [1, 2]
    from harness.storage import start_ledger

    for cost in ['"1.5"', "-1", "NaN", "true", "null"]:  # the value is used, its cost unknown
        path.write_text(f'{{"value": [3], "cpu_s": {cost}, "wall_s": 1.0}}')
        ledger = start_ledger()
        assert cache.get_or_compute("ns", "k", lambda: pytest.fail("not a hit")) == [3]
        assert ledger.total() == (None, 1.0), cost


def test_plugin_import_fails(env, capsys):
    """`plugin-import-fails`: a plugin with a syntax error fails its own cells (exit 1,
    failure.json names the error); it is not a traceback and leaves no result."""
    plugin = env.tmp / "broken.py"
    plugin.write_text("def oops(:\n")
    code = main(env.run(env.suite(methods=["sft"], **FAST), "--quiet", "--methods", f"{plugin}:X"))
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in out + err
    (failure,) = env.out.glob("cells/*/failure.json")
    assert "SyntaxError" in json.loads(failure.read_text())["error"]
    assert not list(env.out.rglob("result.json"))


def test_corrupt_cached_base_row_is_recomputed(tmp_path, tiny_model_dir):
    import json

    from harness.storage import Cache
    from harness.cli import main
    from helpers import tiny_suite

    suite = tiny_suite(tmp_path, str(tiny_model_dir), methods=["sft"], probes=["knowledge"],
                       train={"steps": 1, "lr": 1e-3, "batch_size": 4})
    assert main(["run", "--suite", str(suite), "--out", str(tmp_path / "a"), "--quiet"]) == 0
    rows = list((Cache().root / "base_rows").glob("*.json"))
    assert len(rows) == 1
    entry = json.loads(rows[0].read_text())
    entry["value"]["scores"] = {}  # JSON, but not a row for these tasks
    rows[0].write_text(json.dumps(entry))
    assert main(["run", "--suite", str(suite), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    a, b = (json.loads(next((tmp_path / o / "cells").glob("*/result.json")).read_text())
            for o in ("a", "b"))
    assert a["R"] == b["R"]
