"""Method registry: built-in methods, installed plugins, and method files.

A method is named by
- a built-in name (`harness list methods`),
- a name registered by an installed package in the entry-point group `harness.methods`,
- or a file path and class, `path/to/file.py:ClassName`, for a method not packaged yet.
"""

from __future__ import annotations

import importlib
import importlib.util
from importlib.metadata import entry_points
from pathlib import Path

from harness.errors import HarnessError
from harness.methods.base import Context, Method  # noqa: F401  (public API)

BUILTIN = {
    "sft": "baselines.sft:SFT",
    "lora": "baselines.lora:LoRA",
    "freeze": "baselines.freeze:Freeze",
    "mix-external": "baselines.mix_external:MixExternal",
    "replay": "baselines.replay:Replay",
    "l2sp": "baselines.l2sp:L2SP",
    "ewc": "baselines.ewc:EWC",
    "lwf": "baselines.lwf:LwF",
    "dft": "baselines.dft:DFT",
    "multitask": "baselines.multitask:Multitask",
    # the methods under study
    "sa-sft": "harness.methods.sa_sft:SASFT",
    "sdft": "harness.methods.sdft:SDFT",
    "sdft-rewrite": "harness.methods.sdft_rewrite:SDFTRewrite",
    "selfaug": "harness.methods.selfaug:SelfAug",
}


class PluginImportError(HarnessError):
    """A method plugin was found but could not be imported: its cells fail, others run."""

    def __init__(self, spec: str, exc: BaseException):
        super().__init__(f"method plugin '{spec}' failed to import: {type(exc).__name__}: {exc}",
                         "fix the plugin's code or its dependencies")


def _plugins() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group="harness.methods")}


def available() -> dict[str, str]:
    """name -> 'module:Class' for built-in and installed methods."""
    return {**_plugins(), **BUILTIN}


def load_method_class(spec: str) -> type[Method]:
    """Resolve a method name or `file.py:Class` to its class."""
    if ":" in spec and spec.split(":")[0].endswith(".py"):
        path, cls_name = spec.rsplit(":", 1)
        if not Path(path).is_file():
            raise HarnessError(f"method file '{path}' does not exist",
                               "give a path to a .py file as path/to/file.py:ClassName")
        module_spec = importlib.util.spec_from_file_location(Path(path).stem, path)
        module = importlib.util.module_from_spec(module_spec)
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:
            raise PluginImportError(spec, exc) from exc
        where = path
    else:
        known = available()
        if spec not in known:
            raise HarnessError(f"unknown method '{spec}'",
                               f"use one of: {', '.join(sorted(known))}, or path/to/file.py:Class")
        module_name, cls_name = known[spec].split(":")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise PluginImportError(spec, exc) from exc
        where = module_name
    cls = getattr(module, cls_name, None)
    if cls is None:
        classes = sorted(n for n, c in vars(module).items()
                         if isinstance(c, type) and issubclass(c, Method) and c is not Method)
        raise HarnessError(f"{where} has no class '{cls_name}'",
                           f"name one of its method classes: {', '.join(classes) or '(none)'}")
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise HarnessError(f"'{cls_name}' in {where} is not a harness Method subclass",
                           "subclass harness.methods.Method and name that class")
    return cls


def make_method(spec: str, params: dict | None = None) -> Method:
    return load_method_class(spec)(**(params or {}))
