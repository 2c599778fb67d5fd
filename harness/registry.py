"""Names -> classes, one registry per kind (methods, tasks, probes), after lm-eval's.

A name resolves to a built-in ("module:Class", imported on first use, so importing the
harness imports no plugin code), to an entry point of the kind's group in an installed
package, or, where the kind allows files, to `path/to/file.py:Class`. A class's `name`
attribute is the single source of its registry name: a key that disagrees is an error.
A file's class, once loaded, is also found by its `name` for the rest of the process (the
runner makes a file plugin from the name its cells carry).
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.util
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path

from harness.errors import HarnessError


class PluginImportError(HarnessError):
    """A plugin was found but could not be imported: its cells fail, others run."""

    def __init__(self, kind: str, spec: str, exc: BaseException):
        super().__init__(f"{kind} plugin '{spec}' failed to import: {type(exc).__name__}: {exc}",
                         "fix the plugin's code or its dependencies")


@functools.lru_cache(maxsize=64)
def installed(group: str, path: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """The entry points of `group` installed on `path` (sys.path): scanning every installed
    distribution takes about 15 ms, and a grid's estimates look names up thousands of times.
    Keyed by sys.path, so a folder put on it later (a test's site) is scanned afresh."""
    return tuple((ep.name, ep.value) for ep in entry_points(group=group))


class Registry:
    """`kind` names things in messages; `base` is the class every entry subclasses;
    `group` is the entry-point group; `builtins` maps names to "module:Class" or classes;
    `files` allows `file.py:Class`; `hint` names a further way to name one."""

    def __init__(self, kind: str, base: type, group: str, builtins: dict, *,
                 files: bool = False, hint: str | None = None):
        self.kind, self.base, self.group, self.builtins = kind, base, group, builtins
        self.files, self.hint = files, hint
        self.loaded: dict[str, tuple[type, str]] = {}  # file classes by name: (class, source)

    def targets(self) -> dict[str, str | type]:
        """name -> "module:Class" (or class), installed plugins then built-ins, by name."""
        found = dict(installed(self.group, tuple(sys.path)))
        return dict(sorted({**found, **self.builtins}.items()))

    def __contains__(self, name) -> bool:
        return name in self.targets()

    def __iter__(self):
        return iter(self.targets())

    def items(self) -> list[tuple[str, type]]:
        """(name, class) for every entry, each imported."""
        return [(name, self[name]) for name in self.targets()]

    def __getitem__(self, spec: str) -> type:
        """The class named `spec`; HarnessError if there is none."""
        return self.locate(spec)[0]

    def locate(self, spec: str) -> tuple[type, str]:
        """The class named `spec` and where it is defined, `/abs/path/file.py:Class` (the
        same for every spelling of a file's path, and for a class a file imports)."""
        path, _, cls_name = spec.rpartition(":")
        if self.files and path.endswith(".py"):
            module = self._file_module(spec, path)
            cls = self._class_in(module, cls_name, path)
            if cls.__module__ == module.__name__:  # defined in the file, not imported into it
                source = f"{os.path.realpath(path)}:{cls.__qualname__}"
            else:
                source = defined_at(cls)
            if isinstance(getattr(cls, "name", None), str) and cls.name and cls.name not in self:
                self.loaded[cls.name] = (cls, source)
            return cls, source
        target = self.targets().get(spec)
        if target is None:
            if spec in self.loaded:
                return self.loaded[spec]
            raise self.unknown(spec)
        if isinstance(target, str):
            module_name, cls_name = target.split(":")
            try:
                module = importlib.import_module(module_name)
            except (Exception, SystemExit) as exc:
                raise PluginImportError(self.kind, spec, exc) from exc
            target = self._class_in(module, cls_name, module_name)
        if target.name != spec:
            raise HarnessError(f"{self.kind} '{spec}' is registered to {target.__name__}, whose "
                               f"name is '{target.name}'", f"register it as '{target.name}'")
        return target, defined_at(target)

    def unknown(self, name: str) -> HarnessError:
        """The error for a name nothing is registered under: what exists, and the closest."""
        names = list(self.targets())
        close = difflib.get_close_matches(str(name), names, n=1)
        guess = f" (did you mean '{close[0]}'?)" if close else ""
        more = f", or {self.hint}" if self.hint else ""
        return HarnessError(f"unknown {self.kind} '{name}'{guess}",
                            f"use one of: {', '.join(names)} (see `harness list {self.kind}s`){more}")

    def _file_module(self, spec: str, path: str):
        if not Path(path).is_file():
            raise HarnessError(f"{self.kind} file '{path}' does not exist",
                               "give a path to a .py file as path/to/file.py:ClassName")
        module_spec = importlib.util.spec_from_file_location(Path(path).stem, path)
        module = importlib.util.module_from_spec(module_spec)
        try:
            module_spec.loader.exec_module(module)
        except (Exception, SystemExit) as exc:  # sys.exit() at import too
            raise PluginImportError(self.kind, spec, exc) from exc
        return module

    def _class_in(self, module, cls_name: str, where: str) -> type:
        """`module.<cls_name>`, which must subclass `base`."""
        cls = getattr(module, cls_name, None)
        if cls is None:  # not "not a subclass": there is nothing of that name
            classes = sorted(n for n, c in vars(module).items()
                             if isinstance(c, type) and issubclass(c, self.base) and c is not self.base)
            close = difflib.get_close_matches(cls_name, classes, n=1)
            guess = f" (did you mean '{close[0]}'?)" if close else ""
            raise HarnessError(f"{where} has no class '{cls_name}'{guess}",
                               f"name one of its {self.kind} classes: {', '.join(classes) or '(none)'}")
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            raise HarnessError(f"'{cls_name}' in {where} is not a harness {self.base.__name__} "
                               f"subclass", f"subclass {self.base.__name__} (from harness."
                               f"{self.kind}s) and name that class")
        return cls


def defined_at(cls: type) -> str:
    """`/abs/path/file.py:Class` for an imported class (`module:Class` if it has no file)."""
    file = getattr(sys.modules.get(cls.__module__), "__file__", None)
    where = os.path.realpath(file) if file else cls.__module__
    return f"{where}:{cls.__qualname__}"
