"""Round 3 of bad inputs and faults (issue 29, items 2-4): bundles that would run code from
outside themselves, YAML 1.2, special files, names that make impossible paths, unreadable
files, and the silent cases. Each test names its case in docs/errors.md."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from harness import bundle as B
from harness.cli import main
from harness.config import load_suite
from harness.overrides import narrow
from harness.ui import UI
from tests.helpers import tiny_suite

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


def reseal(path: Path) -> None:
    (path / B.CHECKSUMS).write_text(B.format_checksums(B.file_checksums(path)))


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
    """`bundle-class-outside`: a manifest whose class or source leaves the bundle (e.g.
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
