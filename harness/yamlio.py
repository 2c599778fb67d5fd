"""YAML 1.2 for every file and value the harness reads (suites, streams.yaml, `--set`,
paper numbers): one loader, ruamel.yaml's safe and pure one, with the readings YAML 1.1
would give refused in one line (docs/errors.md). A module of its own so that config and
the method settings both use it without importing each other."""

from __future__ import annotations

import re
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.constructor import (ConstructorError, DuplicateKeyError,
                                     SafeConstructor)
from ruamel.yaml.error import YAMLError

from harness.errors import HarnessError
from harness.storage import read_regular


class _NotCore(ConstructorError):
    """A scalar YAML 1.1 reads differently (see _Constructor)."""


class _Constructor(SafeConstructor):
    """ruamel.yaml's safe constructor, held to YAML 1.2's core schema: a number is digits
    (`1_000` is refused, not read as 1000) and a document marked `%YAML 1.1` (where `010`
    is 8 and `no` is false) is refused rather than read differently."""

    def _core(self, node):
        if self.resolver.processing_version != (1, 2):
            raise _NotCore(None, None, "the document asks for YAML "
                                   f"{'.'.join(map(str, self.resolver.processing_version))}; "
                                   "suites are YAML 1.2", node.start_mark)
        if "_" in str(node.value):
            raise _NotCore(None, None, f"'{node.value}' is not a YAML 1.2 number (no "
                                   "'_' digit separators)", node.start_mark)

    def construct_yaml_int(self, node):
        self._core(node)
        return super().construct_yaml_int(node)

    def construct_yaml_float(self, node):
        self._core(node)
        return super().construct_yaml_float(node)

    def construct_yaml_bool(self, node):
        self._core(node)
        return super().construct_yaml_bool(node)


for _tag in ("int", "float", "bool"):
    _Constructor.add_constructor(f"tag:yaml.org,2002:{_tag}",
                                 getattr(_Constructor, f"construct_yaml_{_tag}"))


def _tree_problem(value) -> str | None:
    """What no YAML input may hold, or None: a node that contains itself (a recursive
    alias, `a: &x [*x]`), or text with a NUL byte (no file name, model or method can hold
    one). Shared, non-recursive aliases are visited once each (an alias bomb stays cheap)."""
    done, path = set(), set()

    def walk(node) -> str | None:
        if isinstance(node, str):
            return f"text {node[:40]!r} holds a NUL byte" if "\0" in node else None
        if not isinstance(node, (dict, list)) or id(node) in done:
            return None
        if id(node) in path:
            return "a YAML alias refers to the node that contains it (a recursive alias)"
        path.add(id(node))
        items = [*node, *node.values()] if isinstance(node, dict) else node
        found = next((p for p in map(walk, items) if p), None)
        path.discard(id(node))
        done.add(id(node))
        return found

    return walk(value)


def parse_yaml(text: str, where: str):
    """The one YAML reader of the harness (suites, streams.yaml, `--set` values, paper
    numbers): YAML 1.2 through ruamel.yaml's safe, pure-Python loader, so `1e-3` is a
    number, `no` and `yes` are words, `010` is 10 and `1:30` is text (YAML 1.1 reads
    False, True, 8 and 90). A repeated key, a recursive alias and bad syntax are one line
    naming `where`."""
    loader = YAML(typ="safe", pure=True)
    loader.Constructor = _Constructor
    try:
        value = loader.load(text)
        problem = _tree_problem(value)
    except DuplicateKeyError as exc:
        key = re.search(r'duplicate key "(.*?)"', str(exc.problem))
        fail(where, f"duplicate key '{key.group(1) if key else '?'}'{_line(exc)}",
             "keep one of the two (YAML would silently use the last)")
    except _NotCore as exc:
        fail(where, f"{exc.problem}{_line(exc)}", "write YAML 1.2: digits without '_' (1000), "
             "no %YAML 1.1 line")
    except YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        fail(where, f"malformed YAML{_line(exc)} ({problem})",
             "fix the YAML syntax (indentation, colons, quotes)")
    except RecursionError:
        fail(where, "malformed YAML (nested too deeply)", "flatten the document")
    if problem:
        fail(where, problem, "remove the NUL byte (\\0)" if "NUL" in problem else
             "repeat the values instead of the alias, or anchor a node outside it")
    return value


def _line(exc) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f" at line {mark.line + 1}" if mark else ""


def fail(where: str, problem: str, fix: str):
    raise HarnessError(f"{where}: {problem}", fix)


def read_yaml(path: Path, where: str):
    """Parse a YAML file (parse_yaml), turning every way it can be unreadable into one line."""
    try:
        text = read_regular(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        fail(where, f"is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
             f"{exc.start})", "save the file as UTF-8")
    except OSError as exc:
        fail(where, f"cannot be read ({exc.strerror or exc})", "check the file's permissions")
    return parse_yaml(text, where)
