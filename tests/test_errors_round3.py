"""Round 3 of bad inputs and faults (issue 29, items 2-4): bundles that would run code from
outside themselves, YAML 1.2, special files, names that make impossible paths, unreadable
files, and the silent cases. Each test names its case in docs/errors.md."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
from pathlib import Path

import pytest
import torch

from harness import bundle as B
from harness.cli import main
from harness.config import load_suite
from harness.overrides import narrow
from harness.ui import UI
from tests.helpers import reseal, tiny_suite

CPU = torch.device("cpu")

# A file plugin that records every import of it: the bundle tests assert when it runs.
PLUGIN = '''
import os
from pathlib import Path

from harness.methods import Method, response_token_loss

if os.environ.get("ROUND3_IMPORTS"):
    with open(os.environ["ROUND3_IMPORTS"], "a") as f:
        f.write(__file__ + "\\n")


class HalfSFT(Method):
    name = "half-sft"
    description = "SFT with the loss halved"
    defaults = {"scale": 0.5}

    def loss(self, model, batch, ctx):
        return self.params["scale"] * response_token_loss(model, batch)
'''


@pytest.fixture(scope="module")
def plugin_bundle(tiny_model_dir, tmp_path_factory):
    """(suite path, bundle folder) of a file plugin on a one-cell leaderboard grid."""
    root = tmp_path_factory.mktemp("r3")
    mp = pytest.MonkeyPatch()
    mp.setenv("HARNESS_CACHE", str(root / "cache"))
    plugin = root / "src" / "half.py"
    plugin.parent.mkdir()
    plugin.write_text(PLUGIN)
    path = tiny_suite(root, str(tiny_model_dir), probes=[], streams={"one": ["arith"]},
                      train={"steps": 1, "lr": 1e-3, "batch_size": 4, "max_len": 96})
    narrowed = narrow(load_suite(str(path)), [f"{plugin}:HalfSFT"], None)
    _, dest = B.submit(None, narrowed, root / "run", root, CPU, UI(quiet=True))
    plugin.unlink()
    yield path, dest
    mp.undo()


@pytest.fixture
def imports(tmp_path, monkeypatch):
    """The file the plugin appends to whenever it is imported."""
    log = tmp_path / "imports.log"
    monkeypatch.setenv("ROUND3_IMPORTS", str(log))
    return lambda: log.read_text().splitlines() if log.exists() else []


def copy_bundle(plugin_bundle, tmp_path) -> tuple[str, Path]:
    suite, dest = plugin_bundle
    target = tmp_path / "leaderboard" / "submissions" / dest.name
    shutil.copytree(dest, target)
    return str(suite), target


def test_static_checks_and_leaderboard_never_import_the_method(plugin_bundle, tmp_path,
                                                               imports, capsys):
    """`bundle-static-no-import`: verify --cells 0 and the leaderboard read the manifest and
    cells only; the plugin runs when a re-run is asked for, from the bundle's own copy."""
    suite, bundle = copy_bundle(plugin_bundle, tmp_path)
    assert main(["verify", str(bundle), "--suite", suite, "--cells", "0"]) == 0
    assert capsys.readouterr().out.startswith(f"ACCEPTED {bundle}")
    assert main(["leaderboard", "--root", str(tmp_path), "--suite", suite]) == 0
    assert imports() == []
    assert main(["verify", str(bundle), "--suite", suite, "--cells", "1"]) == 0
    assert imports() and all(Path(p).resolve() == (bundle / "method" / "half.py").resolve()
                             for p in imports())


def _escape(bundle: Path, outside: Path, how: str) -> None:
    manifest = json.loads((bundle / B.MANIFEST).read_text())
    method = manifest["method"]
    if how == "class-dotdot":
        method["class"] = f"{os.path.relpath(outside, bundle)}:HalfSFT"
    elif how == "class-absolute":
        method["class"] = f"{outside}:HalfSFT"
    elif how == "source-dotdot":
        method["source"] = f"method/../../{os.path.relpath(outside, bundle.parent)}"
        method["class"] = f"{method['source']}:HalfSFT"
    elif how == "source-symlink":
        (bundle / "method" / "half.py").unlink()
        (bundle / "method" / "half.py").symlink_to(outside)
    elif how == "builtin-file":
        method.update(builtin=True, name=f"{outside}:HalfSFT")
    (bundle / B.MANIFEST).write_text(json.dumps(manifest))
    reseal(bundle)


@pytest.mark.parametrize("how", ["class-dotdot", "class-absolute", "source-dotdot",
                                 "source-symlink", "builtin-file"])
def test_bundle_pointing_outside_itself_is_rejected(plugin_bundle, tmp_path, imports, capsys,
                                                    how):
    """`bundle-class-outside` (and `bundle-builtin-file`): a manifest whose class or source leaves the bundle (e.g.
    ../../outside/twin.py:HalfSFT, the same code with the same hash) is refused, one line,
    exit 2, and nothing outside is imported; the leaderboard rejects it too."""
    suite, bundle = copy_bundle(plugin_bundle, tmp_path)
    outside = tmp_path / "outside" / "twin.py"
    outside.parent.mkdir()
    shutil.copyfile(bundle / "method" / "half.py", outside)
    _escape(bundle, outside, how)
    code = main(["verify", str(bundle), "--suite", suite])
    out, err = capsys.readouterr()
    if how == "builtin-file":  # a registered name is looked up, never imported as a file
        assert code == 1 and "REJECTED" in out and "is unknown here" in out, out
    else:
        assert code == 2 and out == "" and len(err.splitlines()) == 1, out + err
        assert err.startswith("harness: error: bundle ") and ". Fix: " in err
        assert "Traceback" not in err
    assert main(["leaderboard", "--root", str(tmp_path), "--suite", suite]) == 2
    assert bundle.name in capsys.readouterr().err
    assert imports() == [] and not (bundle / B.VERIFICATION).exists()


# -- bad input refused up front: one line, exit 2 -----------------------------------------

from tests.test_errors import FAST, SUITE_OK, Env  # noqa: E402


@pytest.fixture
def env(tmp_path, tiny_model_dir, monkeypatch):
    return Env(tmp_path, tiny_model_dir, monkeypatch)


def newer_result(e):
    suite = e.suite(methods=["sft"], **FAST)
    folder = e.out / "cells" / "someone-elses-cell"
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps({"schema_version": 2, "status": "complete"}))
    return e.run(suite)


def no_home(e):
    import pwd

    e.monkeypatch.delenv("HARNESS_CACHE")
    e.monkeypatch.delenv("HOME", raising=False)
    e.monkeypatch.setattr(pwd, "getpwuid", lambda uid: (_ for _ in ()).throw(KeyError(uid)))
    return e.run(e.suite(methods=["sft"], **FAST))


def unreadable_weights(e):
    import builtins

    real = builtins.open

    def refuse(file, *args, **kwargs):  # a 0600 file of another user (we may be root)
        if str(file).endswith("model.safetensors"):
            raise PermissionError(13, "Permission denied", str(file))
        return real(file, *args, **kwargs)

    e.monkeypatch.setattr(builtins, "open", refuse)
    return e.run(e.suite(models=[str(e.model)]))


def tilde_without_home(e):
    from pathlib import PosixPath

    def no_home(self):
        if str(self).startswith("~"):
            raise RuntimeError("Could not determine home directory.")
        return self

    e.monkeypatch.setattr(PosixPath, "expanduser", no_home)
    return ["run", "--suite", e.suite(methods=["sft"], **FAST), "--out", "~/runs/x"]


def foreign_tokenizer(e):
    """A model folder whose tokenizer.json has more tokens than its embedding has rows."""
    folder = e.tmp / "foreign"
    shutil.copytree(e.model, folder)
    tok = json.loads((folder / "tokenizer.json").read_text())
    tok["added_tokens"].append({**tok["added_tokens"][-1], "id": 4096, "content": "<|x|>"})
    (folder / "tokenizer.json").write_text(json.dumps(tok))
    return e.run(e.suite(models=[str(folder)]))


def _with_special(e, name: str, how: str) -> str:
    """A copy of the tiny model whose file `name` is a named pipe (a reader would block on
    it) or a symbolic link to itself."""
    folder = Path(e.model_dir())
    (folder / name).unlink()
    if how == "fifo":
        os.mkfifo(folder / name)
    else:
        (folder / name).symlink_to(folder / name)
    return str(folder)


ROUND3_ERRORS = [
    # -- YAML 1.2 --------------------------------------------------------------------------
    ("yaml-recursive-alias", ["recursive alias"], lambda e: e.run(e.text(
        SUITE_OK.replace("[M]", f"[{e.model}]") + "data: &d {n_train: *d}\n"))),
    ("yaml-nul-in-name", ["holds a NUL byte"], lambda e: e.run(e.suite(name="a\0b"))),
    ("yaml-digit-separator", ["'1_000' is not a YAML 1.2 number"],
     lambda e: e.run(e.text(SUITE_OK.replace("seeds: [0]", "seeds: [1_000]")))),
    ("yaml-1.1-document", ["asks for YAML 1.1"], lambda e: e.run(e.text("%YAML 1.1\n---\n" + SUITE_OK))),
    ("set-not-yaml", ["--set lora.r=[1", "malformed YAML"],
     lambda e: e.run(e.suite(), "--set", "lora.r=[1")),
    # -- names that make impossible paths ----------------------------------------------------
    ("stream-name-too-long", ["stream 'sss", "is 300 bytes long", "shorten it"],
     lambda e: e.run(e.suite(streams={"s" * 300: ["arith"]}))),
    ("cell-folder-name-too-long", ["would need a folder name of", "shorten the model"],
     lambda e: e.run(e.suite(models=[e.model_dir("m" * 120)], streams={"s" * 90: ["arith"]}))),
    # -- wrong types that were dropped without a word -------------------------------------
    ("stream-train-a-list", ["stream 's', train: expected a mapping, got list"],
     lambda e: e.run(e.suite(streams={"s": {"tasks": ["arith"], "train": [1]}}))),
    ("stream-train-zero", ["stream 's', train: expected a mapping, got int"],
     lambda e: e.run(e.suite(streams={"s": {"tasks": ["arith"], "train": 0}}))),
    ("stream-train-false", ["stream 's', train: expected a mapping, got bool"],
     lambda e: e.run(e.suite(streams={"s": {"tasks": ["arith"], "train": False}}))),
    ("stream-methods-false", ["stream 's', methods must map method names"],
     lambda e: e.run(e.suite(streams={"s": {"tasks": ["arith"], "methods": False}}))),
    ("weight-decay-overflows", ["train: weight_decay 1e+30 with lr 0.001 scales every weight to zero",
                                "use a weight_decay such as 0.01"], lambda e: e.run(e.train(weight_decay=1e30))),
    ("out-name-too-long", ["cannot write to the output folder", "is longer than 255 bytes", "--out"],
     lambda e: ["run", "--suite", e.suite(), "--out", str(e.tmp / ("o" * 300))]),
    ("suite-file-is-a-pipe", ["suite file", "is not a regular file (a named pipe or device)"],
     lambda e: os.mkfifo(e.tmp / "pipe.yaml") or e.run(str(e.tmp / "pipe.yaml"))),
    ("probes-false", ["'probes' must be a non-empty list"], lambda e: e.run(e.suite(probes=False))),
    # -- the command line ------------------------------------------------------------------
    ("set-twice", ["--set lora.r=4: lora.r is set twice"],
     lambda e: e.run(e.suite(), "--set", "lora.r=2", "--set", "lora.r=4")),
    ("option-twice", ["--methods is given twice"], lambda e: e.run(e.suite(), "--methods", "sft", "--methods", "lora")),
    ("seeds-digit-separator", ["--seeds expects whole numbers, got '1_0'"], lambda e: e.run(e.suite(), "--seeds", "1_0")),
    ("seeds-other-digits", ["--seeds expects whole numbers"], lambda e: e.run(e.suite(), "--seeds", "\u0661")),
    *[(f"gpu-nan[{size}]", [f"unknown GPU '{size}'"],
       lambda e, size=size: e.run(e.suite(), "--dry-run", "--gpu", size))
      for size in ("nan", "inf", "-8", "0", "0GiB", "lots", "")],
    ("gpu-without-dry-run", ["--gpu goes with --dry-run"], lambda e: e.run(e.suite(), "--gpu", "H100")),
    # -- round 3b: numbers beyond any float, names, special files ----------------------------
    ("yaml-whole-number-beyond-float", ["train: steps must be a finite number, got 99999"],
     lambda e: e.run(e.text(SUITE_OK.replace("[M]", f"[{e.model}]").replace(
         "{steps: 1}", "{steps: " + "9" * 400 + "}")))),
    ("set-whole-number-beyond-float", ["--set lora: alpha must be a whole number, got 99999"],
     lambda e: e.run(e.suite(), "--set", "lora.alpha=" + "9" * 400)),
    ("stream-name-empty", ["stream '' is empty", "give the stream a name"],
     lambda e: e.run(e.suite(streams={"": ["arith"]}))),
    ("method-name-control-char", ["the name of method class 'P' in", "'a\\nb' holds a control "
                                  "character"],
     lambda e: e.run(e.suite(**FAST), "--methods", e.plugin(
         "class P(Method):\n    name = 'a\\nb'\n") + ":P")),
    ("method-name-too-long", ["is 300 bytes long; it names folders", "shorten it"],
     lambda e: e.run(e.suite(**FAST), "--methods", e.plugin(
         "class P(Method):\n    name = 'm' * 300\n") + ":P")),
    ("plugin-file-special", ["method file", "is a named pipe, not a regular file"],
     lambda e: os.mkfifo(e.tmp / "p.py") or e.run(e.suite(**FAST), "--methods", f"{e.tmp}/p.py:P")),
    ("model-file-special", ["has a tokenizer.json that is a named pipe, not a regular file"],
     lambda e: e.run(e.suite(models=[_with_special(e, "tokenizer.json", "fifo")]))),
    ("model-file-dangling-link", ["has a config.json that is a symbolic link that leads nowhere"],
     lambda e: e.run(e.suite(models=[_with_special(e, "config.json", "loop")]))),
    ("out-special-dry-run", ["cannot write to the output folder", "is a named pipe, not a folder"],
     lambda e: os.mkfifo(e.tmp / "fifo") or ["run", "--suite", e.suite(), "--out",
                                              str(e.tmp / "fifo"), "--dry-run"]),
    ("threads-beyond-cores", ["--threads 100000 is more than the", "CPU cores this process may use"],
     lambda e: e.run(e.suite(**FAST), "--threads", "100000")),
    # -- files, homes and results ------------------------------------------------------------
    ("result-newer-schema", ["written by a newer harness (schema_version 2", "another --out"], newer_result),
    ("home-unset-no-passwd", ["no folder for the cache", "set HARNESS_CACHE"], no_home),
    ("model-file-unreadable", ["has a file this user cannot read: model.safetensors", "chmod a+r"],
     unreadable_weights),
    ("tilde-without-home", ["'~/runs/x' starts with ~ but this user has no home folder",
                            "without ~"], tilde_without_home),
    ("tokenizer-of-another-model", ["token ids reach 4096 but a config.json with vocab_size",
                                    "the model's own tokenizer"], foreign_tokenizer),
]


@pytest.mark.parametrize("needles, build", [pytest.param(*c[1:3], id=c[0]) for c in ROUND3_ERRORS])
def test_round3_user_error(env, capsys, needles, build):
    argv = build(env)
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, out + err
    assert out == "", out  # refused before anything prints (a plan's table included)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness: error:") and ". Fix: " in lines[0], err
    assert "Traceback" not in out + err
    for needle in needles:
        assert needle in lines[0], lines[0]
    written = [p for p in env.out.rglob("result.json") if "someone-elses-cell" not in str(p)]
    assert not written


def test_yaml_12_reads_what_yaml_11_misread(env):
    """`yaml-1.2`: 1:30 is text (not 90), 010 is 10 (not 8), a stream named `no` stays the
    word "no" (not False), and --set values are read the same way."""
    from harness.config import load_suite
    from harness.yamlio import parse_yaml
    from harness.methods.settings import parse_sets

    assert parse_yaml("steps: 1:30\nseeds: [010]\nno: yes\n", "t") == {
        "steps": "1:30", "seeds": [10], "no": "yes"}
    suite = load_suite(env.text(SUITE_OK.replace("[M]", f"[{env.model}]").replace(
        "streams: [arith-json]", "streams: {no: [arith]}").replace("seeds: [0]", "seeds: [010]")))
    assert suite.seeds == [10] and list(suite.streams) == ["no"]
    with pytest.raises(Exception, match="steps must be a number, got '1:30'"):
        load_suite(env.text(SUITE_OK.replace("{steps: 1}", "{steps: 1:30}")))
    assert parse_sets(["sft"], ["sft.x=no", "sft.train.lr=1e-3"]) == {"sft": ({"x": "no"}, {"lr": 1e-3})}


def test_every_yaml_reader_is_the_one_loader():
    """No module of the harness reads YAML but through harness.yamlio.parse_yaml."""
    root = Path(__file__).resolve().parent.parent
    readers = [p for p in [*root.glob("harness/**/*.py"), *root.glob("scripts/*.py")]
               if "yaml.safe_load" in p.read_text() or "yaml.load(" in p.read_text()]
    assert readers == []


# -- faults: nothing hangs, one cell's fault fails that cell ------------------------------

@contextlib.contextmanager
def deadline(seconds: int):
    """Fail (instead of hanging the test run) if the block takes longer than `seconds`."""
    def timeout(*_):
        raise TimeoutError(f"still running after {seconds} s: it hangs")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_result_json_named_pipe_never_blocks(env, capsys):
    """`result-json-fifo`: a result.json (or progress.json, claim.json) that is a named pipe
    is a damaged cell: --dry-run and `harness report` say so at once, and a run replaces it
    with the cell's real result."""
    from harness.grid import expand

    suite = env.suite(methods=["sft"], **FAST)
    (cell,) = expand(load_suite(suite))
    folder = env.out / "cells" / cell.id
    folder.mkdir(parents=True)
    for name in ("result.json", "progress.json", "claim.json"):
        os.mkfifo(folder / name)
    with deadline(60):
        assert main(env.run(suite, "--dry-run")) == 0
        assert "corrupt" in capsys.readouterr().out
        main(["report", str(env.out), "--no-plots"])
        out, err = capsys.readouterr()
        assert "not a regular file (a named pipe)" in out + err and "Traceback" not in out + err
        assert main(env.run(suite, "--quiet")) == 0
    assert json.loads((folder / "result.json").read_text())["status"] == "complete"


def test_damaged_or_future_claims_do_not_block_a_cell(tmp_path):
    """`claim-stale`: an empty claim.json (a disk that filled while it was written) is dead
    once WRITE_S has passed, and a heartbeat dated in the future beyond STALE_S is dead:
    neither holds its cell; a fresh, whole claim still does."""
    import time

    from harness import claims

    def claim(name, text, age):
        folder = tmp_path / name
        folder.mkdir()
        (folder / claims.CLAIM).write_text(text)
        stamp = time.time() - age
        os.utime(folder / claims.CLAIM, (stamp, stamp))
        return folder

    whole = json.dumps({"token": "t", "host": "elsewhere", "pid": 1})
    assert claims.holder(claim("empty-new", "", 1)) == {}  # being written: held
    assert claims.holder(claim("empty-old", "", claims.WRITE_S + 5)) is None
    assert claims.holder(claim("not-json", "{", claims.WRITE_S + 5)) is None
    assert claims.holder(claim("future", whole, -86400)) is None
    assert claims.holder(claim("live", whole, 5))["token"] == "t"
    taken = claims.acquire(tmp_path / "future")
    assert taken is not None
    taken.release()


def test_plugin_sys_exit_fails_its_cell_only(env, capsys):
    """`plugin-sys-exit`: a plugin whose hook calls sys.exit(0) fails its own cell with a
    failure.json naming the hook and SystemExit; the grid goes on (exit 1)."""
    plugin = env.plugin("import sys\n\nclass Quits(Method):\n    name = 'quits'\n\n"
                        "    def loss(self, model, batch, ctx):\n        sys.exit(0)\n")
    code = main(env.run(env.suite(**FAST), "--quiet", "--methods", f"quits,{plugin}:Quits,sft"
                        .replace("quits,", "")))
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in out + err
    (failure,) = env.out.glob("cells/*/failure.json")
    error = json.loads(failure.read_text())["error"]
    assert "'quits' failed in its loss hook: SystemExit: 0" in error
    assert len(list(env.out.glob("cells/*/result.json"))) == 1  # sft ran after it


class _Hooks:
    name = "bad"

    def __init__(self, **returns):
        self.returns = returns

    def __getattr__(self, hook):
        return lambda *args: self.returns[hook]


@pytest.mark.parametrize("hook, value, got", [
    ("loss", 0.5, "got float 0.5"),
    ("loss", torch.tensor(1.0), "got a tensor without grad"),
    ("loss", torch.ones(3, requires_grad=True), "got a tensor of shape (3,)"),
    ("loss", torch.tensor(1), "got a torch.int64 tensor"),
    ("plan_steps", 0, "got 0"),
    ("plan_steps", None, "got None"),
    ("plan_steps", 2.5, "got 2.5"),
    ("wrap_model", None, "got NoneType"),
    ("wrap_model", torch.nn.Linear(2, 2), "got a Linear, which is not a transformers model"),
    ("train_data", ["a"], "item 0 is a str"),
    ("state_dict", 5, "got int"),
    ("state_dict", {"ema": [torch.ones(1), object()]}, "['ema'][1] is a object"),
    ("state_dict", {"buffer": {1.5: 2}}, "key ['buffer'][1.5] is a float"),
    ("train_data", None, "got NoneType"),
])
def test_hook_returning_what_breaks_its_rule_names_the_hook_and_rule(hook, value, got):
    """`hook-rule`: a hook's return value the harness cannot use fails the cell with one
    line naming the method, the hook, its rule and what it returned."""
    from harness.errors import HarnessError
    from harness.methods import call_hook
    from harness.methods.api import HOOK_RULES
    from harness.tasks import Example

    with pytest.raises(HarnessError) as caught:
        call_hook(_Hooks(**{hook: value}), hook)
    assert caught.value.problem.startswith(f"method 'bad': its {hook} hook {HOOK_RULES[hook][0]}; {got}")
    model = torch.nn.Linear(1, 1)
    model.config = object()  # what a transformers model has
    good = {"loss": torch.ones((), requires_grad=True), "plan_steps": 3, "wrap_model": model,
            "train_data": [Example("q", "a", "a")],
            "state_dict": {"ema": {"w": torch.ones(1)}, "buffer": [Example("q", "a", "a")],
                           "n": 3, "seen": (1, "x", None)}}[hook]
    assert call_hook(_Hooks(**{hook: good}), hook) is good


def test_cell_folder_that_cannot_be_written_fails_that_cell_only(env, capsys):
    """`cell-folder-unwritable`: a cell folder linking to itself (or without write
    permission) fails that cell; the other cells run (exit 1)."""
    from harness.grid import expand

    suite = env.suite(methods=["sft", "lora"], **FAST)
    first, second = expand(load_suite(suite))
    (env.out / "cells").mkdir(parents=True)
    (env.out / "cells" / first.id).symlink_to(env.out / "cells" / first.id)
    code = main(env.run(suite, "--quiet"))
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in out + err and "stopping" not in out
    assert (env.out / "cells" / second.id / "result.json").is_file()


def test_a_failed_write_names_its_file(tmp_path, monkeypatch):
    """`disk-full-names-path`: a write that fails (a full disk) names the file it wrote."""
    import errno

    from harness.storage import atomic_write_json

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(OSError) as caught:
        atomic_write_json(tmp_path / "cache" / "entry.json", {"value": 1})
    assert caught.value.errno == errno.ENOSPC
    assert str(tmp_path / "cache" / "entry.json") in str(caught.value)
    assert not list(tmp_path.rglob("*.tmp-*"))


def _full_under(monkeypatch, root: Path) -> None:
    """Every atomic write under `root` fails as on a full disk."""
    import errno

    real = Path.write_text

    def full(self, data, *args, **kwargs):
        if ".tmp-" in self.name and root in self.parents:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full)


def test_a_full_cache_disk_fails_each_cell_with_the_file_and_the_fix(env, capsys, monkeypatch):
    """`disk-full-names-path`: a full cache disk fails each cell with one line naming the
    cache file it could not write and the fix; the output disk takes failure.json, so the
    grid goes on to the next cell (exit 1, every cell failed, nothing stray)."""
    from harness.storage import cache_dir

    suite = env.suite(methods=["sft", "lora"], **FAST)
    _full_under(monkeypatch, cache_dir())
    assert main(env.run(suite, "--quiet")) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    failures = sorted(env.out.glob("cells/*/failure.json"))
    assert len(failures) == 2
    for failure in failures:
        error = json.loads(failure.read_text())["error"]
        assert error.startswith(f"cannot write '{cache_dir()}/") and (
            "': No space left on device. Fix: free space on its disk (or set HARNESS_CACHE "
            "to a folder on another disk), then re-run the same command") in error, error
    assert out.count("FAILED: cannot write '") == 2  # the log says it too
    assert not list(cache_dir().rglob("*.tmp-*"))


def test_a_full_disk_under_a_checkpoint_or_a_library_names_the_file(env, capsys, monkeypatch):
    """`disk-full-names-path`: torch's writer (whose own error is a bare RuntimeError
    without errno) and safetensors (whose error only says "os error 28" in its text) fail
    the cell with the checkpoint's path and the fix; no temp file is left."""
    import errno

    from harness import checkpoint
    from harness.results import failure_message
    from harness.storage import writing

    def full(obj, f, **kwargs):
        f.write(b"PK")  # torch writes through the file object: the OSError has no path
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", full)
    suite = env.suite(methods=["sft"], **FAST)
    assert main(env.run(suite, "--quiet", "--keep-checkpoints")) == 1
    (failure,) = env.out.glob("cells/*/failure.json")
    error = json.loads(failure.read_text())["error"]
    assert error.startswith(f"cannot write '{failure.parent / checkpoint.FILE}': No space "
                            "left on device. Fix: free space on its disk (or give --out"), error
    assert not list(env.out.rglob("*.tmp-*")) and "Traceback" not in "".join(capsys.readouterr())

    class SafetensorError(Exception):
        pass

    with pytest.raises(OSError) as caught:
        with writing(env.tmp / "model"):
            raise SafetensorError("Error while serializing: I/O error: No space left on device "
                                  "(os error 28)")
    assert failure_message(caught.value, env.out).startswith(
        f"cannot write '{env.tmp / 'model'}': No space left on device. Fix: ")
    with pytest.raises(ValueError):  # anything else passes through unchanged
        with writing(env.tmp / "model"):
            raise ValueError("not a disk")


ROUND3_FAULTS = ["bundle-static-no-import", "bundle-class-outside", "bundle-builtin-file",
                 "yaml-1.2", "result-json-fifo", "claim-stale", "plugin-sys-exit", "hook-rule",
                 "cell-folder-unwritable", "disk-full-names-path", "beyond-the-model"]


def test_catalogue_lists_every_round3_case():
    """docs/errors.md lists every case of this file (the `yaml-1.2` reading is its prose)."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "errors.md").read_text()
    ids = [c[0].partition("[")[0] for c in ROUND3_ERRORS] + [f for f in ROUND3_FAULTS if f != "yaml-1.2"]
    assert [i for i in ids if f"`{i}`" not in doc] == []
    assert "steps: 1:30" in doc and "[010]" in doc


BEYOND = "beyond model '{}''s context of 512 tokens"


@pytest.mark.parametrize("change, needles", [
    ({"eval": {"batch_size": 8, "max_new_tokens": 512}},
     ["eval: eval.max_new_tokens 512 after a prompt of up to train.max_len 96", "is 608 tokens",
      BEYOND, "set eval: {max_new_tokens: 416} or less"]),
    ({"eval": {"batch_size": 8, "max_new_tokens": 417}}, ["is 513 tokens", BEYOND]),
    ({"eval": {"batch_size": 8, "max_new_tokens": None}, "probes": ["task:gsm8k"]},
     ["task 'gsm8k''s own max_new_tokens 512 (eval.max_new_tokens unset)", BEYOND]),
    ({"methods": {"sdft-rewrite": {"max_new_tokens": 4096}}},
     ["methods.sdft-rewrite: max_new_tokens 4096 after a prompt of up to train.max_len 96",
      "is 4192 tokens", BEYOND, "--set sdft-rewrite.max_new_tokens=N with N at most 416"]),
    ({"methods": {"sdft": {}}},  # its default budget, 1024, cannot run on a 512 context
     ["methods.sdft: max_new_tokens 1024 (its default)", "is 1120 tokens", BEYOND,
      "--set sdft.max_new_tokens=N with N at most 416"]),
    ({"methods": {"sdft-rewrite": {}}}, ["max_new_tokens 512 (its default)", "is 608 tokens"]),
    ({"methods": {"sa-sft": {"turns": 2}}},
     ["methods.sa-sft: a self-dialogue of turns 2 x (user_tokens 64 + answer_tokens 256, its "
      "default) is 640 tokens", BEYOND, "--set sa-sft.answer_tokens=N with N at most 192"]),
    ({"train": {"steps": 1, "max_len": 1024}}, ["train.max_len 1024 (stream 'two') is beyond"]),
    ({"methods": {"lora": {"r": 65}}}, ["methods.lora: LoRA r 65 is beyond model", "hidden size 64"]),
    ({"methods": {"sdft": {"lora": {"r": 100}, "max_new_tokens": 8}}},
     ["methods.sdft: LoRA r 100 is beyond"]),
])
def test_settings_the_model_cannot_run_are_refused_up_front(env, capsys, change, needles):
    """`beyond-the-model`: a training sequence beyond the model's context (512 for the tiny
    model), a generation that would run past it (a method's budget in force, its default
    included, or the evaluation's, after a prompt of up to train.max_len), a LoRA rank
    beyond the hidden size (64): one line, exit 2, also under --dry-run, nothing run."""
    for extra in ((), ("--dry-run",)):
        assert main(env.run(env.suite(**change), *extra)) == 2
        out, err = capsys.readouterr()
        needed = [n.replace("{}", str(env.model)) for n in needles]
        assert out == "" and len(err.splitlines()) == 1 and all(n in err for n in needed), err
    assert not env.out.exists()


def test_tune_refuses_what_the_model_cannot_run(env, capsys):
    """`beyond-the-model`: `harness tune` runs cells too: the same check, before anything."""
    assert main(["tune", "--suite", env.suite(methods={"sdft": {}}), "--out", str(env.out),
                 "--dry-run"]) == 2
    assert "methods.sdft: max_new_tokens 1024 (its default)" in capsys.readouterr().err
    assert not env.out.exists()


@pytest.mark.parametrize("change, sets", [
    ({"methods": {"lora": {"r": 64}}}, []),
    ({"eval": {"batch_size": 8, "max_new_tokens": 416}}, []),
    ({"methods": {"sdft": {}, "sdft-rewrite": {}, "sa-sft": {"turns": 2}}},
     ["--set", "sdft.max_new_tokens=416", "--set", "sdft-rewrite.max_new_tokens=416",
      "--set", "sa-sft.answer_tokens=192"]),  # the largest values the messages offer
])
def test_settings_at_the_models_limits_are_accepted(env, capsys, change, sets):
    """`beyond-the-model`: what fits exactly (prompt + budget = context) is accepted, and
    the value each refusal offers as its fix is."""
    assert main(env.run(env.suite(**change), "--dry-run", *sets)) == 0, capsys.readouterr().err


def test_plugin_sys_exit_at_import_or_in_its_constructor(env, capsys):
    """`plugin-sys-exit`: sys.exit() while a plugin is imported fails its cells (exit 1,
    failure.json says SystemExit); in its constructor, the settings check refuses it (2)."""
    exits = env.tmp / "exits.py"
    exits.write_text("import sys\nsys.exit(0)\n")
    code = main(env.run(env.suite(**FAST), "--quiet", "--methods", f"{exits}:X"))
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in out + err
    (failure,) = env.out.glob("cells/*/failure.json")
    assert "failed to import: SystemExit: 0" in json.loads(failure.read_text())["error"]
    plugin = env.plugin("import sys\n\nclass Init(Method):\n    name = 'init'\n\n"
                        "    def __init__(self, **p):\n        sys.exit(3)\n", "init.py")
    assert main(env.run(env.suite(**FAST), "--methods", f"{plugin}:Init")) == 2
    assert "rejected its settings (its defaults): SystemExit: 3" in capsys.readouterr().err
