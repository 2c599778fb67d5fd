"""`harness list suites|methods|tasks|probes|streams [NAME] [--json]`: what this install
can run, each with its description (a method with its version and defaults). Apart from
harness/cli.py, which parses and dispatches: listing reads the registries and runs nothing."""

from __future__ import annotations

import json

from harness.errors import HarnessError


def cmd_list(args) -> int:
    from harness.config import available_suites, load_streams
    from harness.yamlio import read_yaml
    from harness.methods import METHODS
    from harness.probes import PROBES
    from harness.tasks import all_tasks

    if args.what == "suites":
        rows = [{"name": n, "path": str(p),
                 "description": " ".join(str((read_yaml(p, p.name) or {}).get("description", "")).split())}
                for n, p in available_suites().items()]
    elif args.what == "methods" and args.name:
        rows = [method_row(args.name)]
    elif args.what == "methods":
        rows = []
        for name, target in METHODS.targets().items():
            try:
                cls = METHODS[name]
            except HarnessError as exc:  # a broken plugin is listed, not fatal to the list
                rows.append({"name": name, "class": target, "description": f"BROKEN: {exc}",
                             "defaults": {}, "continual": None})
                continue
            rows.append({"name": name, "version": _version(name), "class": target,
                         "description": cls.description, "defaults": cls.defaults,
                         "continual": cls.continual})
    elif args.what == "tasks":
        rows = [{"name": n, "version": c.version, "description": c.description,
                 "data": c.dataset or "generated"} for n, c in all_tasks(datasets=True).items()]
    elif args.what == "probes":
        rows = [{"name": n, "description": c.description, "higher_is_better": c.higher_is_better}
                for n, c in PROBES.items()]
    else:
        rows = [{"name": n, "tasks": t} for n, t in load_streams().items()]
    if args.name and args.what != "methods":
        raise HarnessError(f"harness list {args.what} takes no name (got '{args.name}')",
                           "name one method: harness list methods NAME|path/to/file.py:Class")
    if args.json:
        print(json.dumps(rows, indent=1))
    elif args.name:
        for key, value in rows[0].items():
            if isinstance(value, dict):
                value = ", ".join(f"{k}={json.dumps(v)}" for k, v in value.items()) or "(none)"
            print(f"{key:<12} {value}")
    else:
        from rich.markup import escape
        from rich.table import Table

        from harness.ui import make_console

        table = Table(title=args.what)
        keys = [k for k in rows[0] if k not in ("defaults", "path")] if rows else ["name"]
        for k in keys:
            table.add_column(k)
        for row in rows:
            table.add_row(*[escape(", ".join(map(str, v)) if isinstance(v, list) else str(v))
                            for v in (row[k] for k in keys)])
        make_console().print(table)
    return 0


def method_row(spec: str) -> dict:
    """One method in full: its name, where it comes from, description, defaults."""
    from harness.methods import METHODS
    from harness.methods.settings import resolve_method

    name, _, source = resolve_method(spec, {}, "harness list methods")
    cls = METHODS[name]  # a plugin that does not import: its import error
    return {"name": name, "version": _version(name, source), "class": spec, "source": source,
            "description": cls.description, "defaults": cls.defaults, "continual": cls.continual}


def _version(name: str, source: str = "") -> str:
    """A method's version (harness/identity.py): declared, else its source's hash."""
    from harness.bundle import builtin_version
    from harness.config import MethodSpec
    from harness.identity import method_version

    return method_version(MethodSpec(name, source=source)) if source else builtin_version(name)
