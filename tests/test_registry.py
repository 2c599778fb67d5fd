"""harness.registry: one way to name methods, tasks and probes; lazy built-ins; the
unknown-name error; entry points; file.py:Class; a class's `name` is its registry name."""

import subprocess
import sys

import pytest

from harness.errors import HarnessError
from harness.methods import METHODS, Method
from harness.probes import PROBES, get_probe
from harness.registry import PluginImportError, Registry
from harness.tasks import TASKS, Task


@pytest.mark.parametrize("registry", [METHODS, TASKS, PROBES], ids=lambda r: r.kind)
def test_every_registered_name_loads_under_its_class_name(registry):
    for name in registry.targets():  # built-ins and entry points (the plug-ins of this repository)
        cls = registry[name]
        assert issubclass(cls, registry.base) and cls.name == name


@pytest.mark.parametrize("registry, typo, close", [(METHODS, "sfft", "sft"), (TASKS, "arihtm", "arith"),
                                                    (PROBES, "drfit", "drift")],
                         ids=["method", "task", "probe"])
def test_unknown_name_lists_the_names_and_suggests_the_closest(registry, typo, close):
    with pytest.raises(HarnessError) as info:
        registry[typo]
    assert info.value.problem == f"unknown {registry.kind} '{typo}' (did you mean '{close}'?)"
    assert all(name in info.value.fix for name in registry.targets())
    with pytest.raises(HarnessError) as info:
        registry["zzzzzz"]
    assert info.value.problem == f"unknown {registry.kind} 'zzzzzz'"


def test_the_other_ways_to_name_one_are_in_the_fix():
    assert "path/to/file.py:Class" in METHODS.unknown("x").fix
    assert "lm-eval:<task>" in PROBES.unknown("x").fix
    assert get_probe("lm-eval:hellaswag").task == "hellaswag"


def test_importing_the_harness_imports_no_plugin_code():
    code = ("import sys, harness, harness.tasks, harness.methods, harness.probes, harness.cli\n"
            "harness.tasks.TASKS.targets(), harness.methods.METHODS.targets()\n"
            "print(sorted(m for m in sys.modules\n"
            "             if m.split('.')[0] in ('benchmarks', 'baselines', 'harness_papers')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_builtin_is_imported_on_first_use():
    code = ("import sys\nfrom harness.tasks import get_task\nget_task('arith')\n"
            "print(sorted(m for m in sys.modules if m.startswith('benchmarks.tasks.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['benchmarks.tasks._words', 'benchmarks.tasks.arith']"


def test_the_installed_entry_points_are_the_ones_pyproject_declares():
    """The tasks, baselines and paper presets are entry points: an install older than
    pyproject.toml would lose or misname them."""
    import tomllib
    from importlib.metadata import entry_points
    from pathlib import Path

    declared = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml")
                             .read_text())["project"]["entry-points"]
    for group, names in declared.items():
        installed = {ep.name: ep.value for ep in entry_points(group=group)}
        assert {n: installed.get(n) for n in names} == names, \
            f"{group}: the install is stale; run `pip install -e .`"
    assert {"sft", "sdft-trl"} <= set(METHODS) and {"arith", "gsm8k"} <= set(TASKS)


class Toy(Task):
    name = "toy"


def test_a_key_that_disagrees_with_the_class_name_is_an_error():
    registry = Registry("task", Task, "no.such.group", {"other": Toy, "toy": Toy})
    assert registry["toy"] is Toy
    with pytest.raises(HarnessError, match="'other' is registered to Toy, whose name is 'toy'"):
        registry["other"]


def test_entry_points_of_the_kinds_group(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "toy_tasks-0.1.dist-info").mkdir(parents=True)
    (site / "toy_tasks.py").write_text(
        "from harness.tasks import Task\n\nclass Toy(Task):\n    name = 'toy'\n\n"
        "class NotATask:\n    name = 'plain'\n")
    (site / "toy_tasks-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: toy-tasks\nVersion: 0.1\n")
    (site / "toy_tasks-0.1.dist-info" / "entry_points.txt").write_text(
        "[harness.tasks]\ntoy = toy_tasks:Toy\nplain = toy_tasks:NotATask\n"
        "broken = no_such_module_xyz:Gone\n")
    monkeypatch.syspath_prepend(str(site))
    assert TASKS["toy"].__name__ == "Toy" and "toy" in TASKS and "toy" not in METHODS
    with pytest.raises(HarnessError, match="'NotATask' in toy_tasks is not a harness Task subclass"):
        TASKS["plain"]
    with pytest.raises(PluginImportError, match="task plugin 'broken' failed to import"):
        TASKS["broken"]


def test_file_and_class(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text("from harness.methods import Method\n\nclass Mine(Method):\n    name = 'mine'\n")
    assert issubclass(METHODS[f"{path}:Mine"], Method)
    with pytest.raises(HarnessError, match="has no class 'Nope'. Fix: name one of its method classes: Mine"):
        METHODS[f"{path}:Nope"]
    with pytest.raises(HarnessError, match="method file 'nosuch.py' does not exist"):
        METHODS["nosuch.py:X"]
    with pytest.raises(HarnessError, match="unknown task"):  # files name methods only
        TASKS[f"{path}:Mine"]
