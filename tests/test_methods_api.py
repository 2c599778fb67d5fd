"""harness.methods is the method API: its `__all__` is what docs/writing-a-method.md lists,
the methods, baselines and examples import nothing else of the harness, and only the harness
binds the model a Context hands out."""

import ast
import re
from pathlib import Path

import harness.methods
from harness.methods import Context

ROOT = Path(__file__).resolve().parent.parent


def documented_api() -> set[str]:
    """The names listed under '## The method API' in docs/writing-a-method.md."""
    doc = (ROOT / "docs" / "writing-a-method.md").read_text()
    section = doc.split("## The method API", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^- `([A-Za-z_]\w*)", section, re.M))


def test_all_is_exactly_the_documented_api():
    assert documented_api() and set(harness.methods.__all__) == documented_api()
    assert len(harness.methods.__all__) == len(set(harness.methods.__all__))
    for name in harness.methods.__all__:
        assert hasattr(harness.methods, name), name


def harness_imports(path: Path) -> set[str]:
    """Every harness module a file imports, and the names it takes from harness.methods."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("harness"):
            found |= ({f"harness.methods.{a.name}" for a in node.names}
                      if node.module == "harness.methods" else {node.module})
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("harness")}
    return found


def test_methods_baselines_and_examples_use_only_the_public_api():
    files = [*(ROOT / "baselines").glob("*.py"), *(ROOT / "examples").glob("*.py"),
             *(p for p in (ROOT / "harness" / "methods").glob("*.py")
               if p.stem not in ("__init__", "api", "nn", "lora", "settings"))]
    public = {f"harness.methods.{name}" for name in harness.methods.__all__}
    for path in files:
        assert harness_imports(path) <= public, (path, harness_imports(path) - public)


def test_bind_sets_the_model_the_context_hands_out():
    ctx = Context(tokenizer=None, device="cpu", seed=0, model_id="m", model_path="",
                  train_settings=None, cache=None)
    model = object()
    assert ctx.model is None
    ctx._bind(model)
    assert ctx.model is model
