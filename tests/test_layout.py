"""The layout the README promises: layers that import only downwards, no import cycle (import
strings and entry points included), every module where the README says, and files of a
readable size.

An edge A -> B is any way A gets B loaded: an `import` at any depth, a string that names a
project module ("pkg.mod" or "pkg.mod:Class", as `importlib.import_module` and the registries
take them), and an entry point in pyproject.toml, which ties its target to the registry it
plugs into (group `harness.tasks`: the target depends on harness.tasks)."""

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Lowest first: a module may import its own layer and those below, never one above. The core
# names no plug-in; the data layer's generators subclass the core's Task; the baselines mix
# in the data layer's instruction set; the paper plug-in uses the core (and its methods);
# tools and tests may use everything.
LAYERS = {
    "harness": 0,           # the core
    "benchmarks": 1,        # data: task generators, the external instruction set, lm-eval folders
    "baselines": 2,         # methods, plugged in through entry points
    "examples": 2,
    "leaderboard": 2,       # the submitted bundles' copies of method files
    "harness_papers": 3,    # the paper suites' plug-in
    "scripts": 4,           # tools: programs, perf, diagnostics
    "tests": 5,
}
# "pkg.mod" or "pkg.mod:Attr": a whole string constant of this shape names a module
MODULE_STRING = re.compile(r"[A-Za-z_]\w*(?:\.\w+)+(?::[\w.]+)?|[A-Za-z_]\w*:[A-Za-z_][\w.]*")


def _modules() -> dict[str, Path]:
    mods = {}
    for package in LAYERS:
        for path in (ROOT / package).rglob("*.py"):
            if "fixtures" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            mods[name.removesuffix(".__init__")] = path
    return mods


def _resolve(name: str, mods) -> str | None:
    """The project module `name` (or a name inside one) belongs to; None outside the project."""
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def _named(node: ast.AST) -> list[str]:
    """What one node of a module's tree names as a module: imports, and module strings."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        return [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_STRING.fullmatch(node.value):
        return [node.value.partition(":")[0]]
    return []


def _programs(tree: ast.AST) -> set[int]:
    """The strings run as programs in a new process (`[python, "-m", "harness.cli", ...]`):
    a worker started so is not a module loaded into this one, so it is no edge."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.List, ast.Tuple)):
            for before, item in zip(node.elts, node.elts[1:]):
                if isinstance(before, ast.Constant) and before.value == "-m":
                    found.add(id(item))
    return found


def _imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it loads, at any depth (function-level too), by import
    or by import string; plus the entry points' ties."""
    graph = {m: set() for m in mods}
    for module, path in mods.items():
        tree = ast.parse(path.read_text())
        programs = _programs(tree)
        for node in ast.walk(tree):
            if id(node) in programs:
                continue
            for name in _named(node):
                target = _resolve(name, mods)
                # a string that resolves only to a top package is a word, not an import
                if target and target != module and (not isinstance(node, ast.Constant) or "." in target):
                    graph[module].add(target)
    for group, target in _entry_points():
        owner, plugin = _resolve(group, mods), _resolve(target.partition(":")[0], mods)
        if owner and plugin and owner != plugin:
            graph[plugin].add(owner)
    return graph


def _entry_points() -> list[tuple[str, str]]:
    """(group, "module:Class") for every plug-in pyproject.toml registers."""
    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("entry-points", {})
    return [(group, target) for group, names in groups.items() for target in names.values()]


def _layer(module: str) -> int:
    return LAYERS[module.split(".")[0]]


def _upward(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets
                  if _layer(b) > _layer(a))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_import_strings_and_entry_points_are_edges():
    """The circle that main had (harness.probes named benchmarks.papers.probe by string, which
    imported harness.probes back) and an upward import are found, through a string alone."""
    probes = ast.parse('def get(n):\n    return importlib.import_module("harness_papers.probe")\n'
                       'TARGETS = {"x": "harness_papers.probe:TaskProbe", "word": "harness_papers"}')
    assert {n for node in ast.walk(probes) for n in _named(node)} == {"harness_papers.probe"}
    graph = {"harness.probes": {"harness_papers.probe"}, "harness_papers.probe": {"harness.probes"}}
    assert _cycles(graph) == [["harness.probes", "harness_papers.probe"]]
    assert _upward(graph) == ["harness.probes -> harness_papers.probe"]
    assert ("harness.tasks", "harness_papers.yang:Gsm8k") in _entry_points()
    worker = ast.parse('cmd = [sys.executable, "-m", "harness.cli", "run"]')
    assert [n.value for n in ast.walk(worker) if id(n) in _programs(worker)] == ["harness.cli"]


def test_no_import_cycle_even_through_import_strings():
    assert _cycles(_imports(_modules())) == []


def test_no_import_runs_up_a_layer():
    """The core names no plug-in (no paper task, no baseline, no benchmark module), by import
    or by string; data, methods, the paper plug-in and the tools each use only what is below."""
    assert _upward(_imports(_modules())) == []


def test_every_entry_point_is_a_class_of_a_plugin_module():
    mods = _modules()
    for group, target in _entry_points():
        module, _, cls = target.partition(":")
        assert module in mods and _layer(module) <= LAYERS["harness_papers"], target
        classes = {n.name for n in ast.walk(ast.parse(mods[module].read_text()))
                   if isinstance(n, ast.ClassDef)}
        assert cls in classes, f"{group}: {target} names no class"


def test_benchmarks_holds_data_and_its_generators_only():
    """benchmarks/ is data: the task generators, the knowledge-v2 probe's generator (its
    questions are written by it and hashed into its version), the external instruction set
    and the lm-eval folders' scorer hooks are its only Python (tools live in scripts/, paper
    code in harness_papers/)."""
    code = {str(p.relative_to(ROOT / "benchmarks")) for p in (ROOT / "benchmarks").rglob("*.py")}
    assert {c for c in code if not re.fullmatch(r"__init__\.py|external\.py|tasks/\w+\.py|"
                                                r"probes/\w+\.py|lm_eval/[\w-]+/utils\.py",
                                                c)} == set()
    assert not list((ROOT / "benchmarks").rglob("*.sh"))


def test_readme_layout_names_every_harness_module():
    text = (ROOT / "README.md").read_text()
    layout = text[text.index("## Layout"):]
    named = set(re.findall(r"\b([a-z_]+\.py)\b", layout))
    files = {p.name for p in (ROOT / "harness").rglob("*.py") if p.name != "__init__.py"}
    assert files - named == set(), "modules missing from the README's layout section"
    placeholders = {"file.py"}  # path/to/file.py:Class
    present = {p.name for p in ROOT.rglob("*.py") if ".venv" not in p.parts}
    assert named - files - present - placeholders == set(), "named but absent"


def test_files_stay_readable():
    sizes = {p: len(p.read_text().splitlines()) for p in _modules().values()
             if "tests" not in p.relative_to(ROOT).parts[:1]}
    assert {str(p.relative_to(ROOT)): n for p, n in sizes.items() if n > 450} == {}
