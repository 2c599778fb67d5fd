"""Command line: `harness run`, `list`, `report`, `submit`, `verify`, `leaderboard`.
User errors print one line and exit 2."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # our own progress bars replace the libraries'
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from harness.errors import HarnessError  # noqa: E402
from harness.arguments import Parser  # noqa: E402
from harness.launch import csv  # noqa: E402
from harness.listing import cmd_list  # noqa: E402
from harness.storage import user_path  # noqa: E402

EXIT_USER_ERROR = 2


def _seeds(text: str) -> list[int]:
    """ASCII digits only: int() would also read '1_000' and other scripts' digits."""
    seeds = csv(text)
    if not all(re.fullmatch(r"[-+]?[0-9]+", x) for x in seeds):
        raise HarnessError(f"--seeds expects whole numbers, got '{text}'", "e.g. --seeds 0,1,2")
    return [int(x) for x in seeds]  # ranges, repeats, none at all: narrow() checks


def cmd_run(args) -> int:
    from harness import launch

    if not args.dry_run:
        return _run(args, None)
    with launch.offline_unless_reachable() as note:  # a plan never waits on an absent hub
        return _run(args, note)


def _run(args, note: str | None) -> int:
    """`harness run`, or its plan with `note` (planned offline) to print."""
    from harness import dryrun, executors, fetch, launch, plans
    from harness.limits import check_model_limits
    from harness.grid import expand
    from harness.models import check_model
    from harness.runner import pick_device

    short = {k: getattr(args, k) for k in ("steps", "n_train", "n_test")
             if getattr(args, k) is not None}
    request = plans.Request(args.suite, csv(args.methods) if args.methods is not None else None,
                            _seeds(args.seeds) if args.seeds is not None else None,
                            args.precision, list(args.set or []), short, args.settings)
    # one process a cell (a Slurm array): the first resolves, the others read its plan
    per_cell = args.out and not args.dry_run and (args.cell or args.cell_index is not None)
    suite = per_cell and plans.stored(request, user_path(args.out))
    fresh = not suite
    suite = suite or request.resolve()  # settings resolved once; workers get the result
    launch.check_options(args)
    device = None if args.executor == "ray" else pick_device(args.device)
    cells = executors.select_cells(expand(suite), args.cell, args.cell_index)  # expand stops
    # on two cells in a folder; a short look's cells go beside the suite's, never over them
    out = user_path(args.out or Path("runs") / (suite.name + ("-short" if short else "")))
    if not args.dry_run:
        fetch.check_offline(suite)  # offline: one line naming everything the caches lack
    checked = [m for m in suite.models  # local folders and hub ids; embedded ones when
               if not (args.dry_run and fetch.is_hub_id(m))]  # provisioned; a dry run lists hub downloads
    for model in checked:
        check_model(model)
    check_model_limits(suite, checked)  # a budget beyond the context, a LoRA rank beyond the width
    if args.dry_run:  # planning needs neither hub models nor the data: it lists them
        check_out(out)
        return dryrun.dry_run(suite, out, cells, as_json=args.json, gpu=args.gpu,
                              jobs=args.jobs, devices=csv(args.devices or "") or None,
                              note=note, device=device)
    from harness.training import check_optimizers
    check_optimizers([m.train for m in suite.methods])  # a missing bitsandbytes: stop now
    check_writable(out)
    if per_cell and fresh:
        plans.store(request, out, suite)
    if args.threads:
        executors.set_threads(args.threads)
    return launch.run(args, suite, cells, out, device)


def cmd_tune(args) -> int:
    from harness.executors import quiet_libraries, set_threads
    from harness.plans import Request
    from harness.runner import pick_device
    from harness.tune import tune
    from harness.ui import UI

    suite = Request(args.suite, csv(args.methods) if args.methods else None).resolve()
    from harness.fetch import is_hub_id
    from harness.limits import check_model_limits

    check_model_limits(suite, [m for m in suite.models if not is_hub_id(m)])  # as a run does
    from harness.launch import check_counts

    check_counts(args)
    out = user_path(args.out or Path("runs") / f"{suite.name}-tune")
    if args.dry_run:
        from harness.tune import dry_run
        print("\n".join(dry_run(suite, out, args.jobs)))
        return 0
    check_writable(out)
    if args.threads:
        set_threads(args.threads)
    quiet_libraries()
    from harness.tune import edge_note

    table = tune(suite, out, pick_device(args.device), UI(quiet=args.quiet), args.jobs,
                 args.threads)
    for name, entry in table["methods"].items():
        chosen = entry["chosen"]
        setting = entry["settings"][chosen]["setting"] if chosen is not None else "none complete"
        notes = [n for n in ("item-identical to sft" if entry["identical_to_sft"] else "",
                             edge_note(entry)) if n]
        print(f"{name}: {setting}" + (f"  ({'; '.join(notes)})" if notes else ""))
    print(f"wrote {out / 'tuning.md'}, {out / 'tuning.json'}, {out / 'tuned.json'}")
    return 0


def check_out(out: Path, problem: str | None = None) -> None:
    """An output folder that can never be one (a file in its place, a name too long) is
    refused, by a dry run too (which writes nothing to find out)."""
    from harness.storage import folder_problem

    problem = problem or folder_problem(out / "cells")
    if problem:
        raise HarnessError(f"cannot write to the output folder '{out}' ({problem})",
                           "choose a writable folder with --out")


def check_writable(out: Path) -> None:
    """The output folder and the cache must take files before anything runs: finding out
    after the first cell has trained loses its work."""
    from harness.results import check_not_newer
    from harness.storage import cache_dir, writable_problem

    check_out(out, writable_problem(out / "cells"))
    check_not_newer(out)  # a newer harness's results are never overwritten
    problem = writable_problem(cache_dir())
    if problem:
        raise HarnessError(f"cannot write to the cache '{cache_dir()}' ({problem})",
                           "set HARNESS_CACHE to a writable folder")


def cmd_report(args) -> int:
    from harness.report import run_report

    if args.paper:
        from harness.report.paper import run_paper_report
        return run_paper_report(Path(args.out), suite=args.suite, judge=args.judge)

    return run_report(Path(args.out), reference=args.reference, alpha=args.alpha,
                      plots=not args.no_plots)


def cmd_fetch(args) -> int:
    from harness import fetch
    from harness.config import load_suite

    suite = load_suite(args.suite)
    items = fetch.downloads(suite, judge=args.judge)
    if args.dry_run:
        print("\n".join(fetch.download_lines(items)))
        return 0
    found = fetch.fetch(suite, judge=args.judge)
    failed = [f for f in found if not f.get("ok")]
    for f in failed:
        print(f"FAILED {fetch.label(f)}: {f.get('error')}", file=sys.stderr)
    print(f"fetched {len(found) - len(failed)} of {len(found)}")
    return 1 if failed else 0


def cmd_submit(args) -> int:
    from harness.launch import offline_unless_reachable

    if not args.dry_run:
        return _submit(args, None)
    with offline_unless_reachable() as note:  # a plan never waits on an absent hub
        return _submit(args, note)


def _submit(args, note: str | None) -> int:
    """`harness submit`, or its plan with `note` (planned offline) to print."""
    from harness import bundle, bundle_tuning
    from harness.config import load_suite
    from harness.limits import check_model_limits
    from harness.overrides import apply_sets, narrow
    from harness.executors import quiet_libraries
    from harness.methods import METHODS
    from harness.methods.settings import build_methods, is_file
    from harness.runner import pick_device
    from harness.ui import UI

    suite = narrow(load_suite(args.suite or bundle.LIVE_SUITE, build=False), [args.method], None,
                   where="submit METHOD", build=False)
    if is_file(suite.methods[0].name):  # a plugin that failed to import: say why, run nothing
        METHODS.locate(suite.methods[0].name)
    name = bundle.check_name(args.name or suite.methods[0].name)
    root = user_path(args.root)
    out = user_path(args.out) if args.out else root / "runs" / "submit" / name
    table = bundle_tuning.table_path(args.tuning, out)  # its chosen setting, then --set
    tuning = table and bundle_tuning.method_part(table, suite, suite.methods[0].name)
    suite = apply_sets(suite, bundle_tuning.with_chosen(tuning, args.set or []), build=False)
    suite = dataclasses.replace(suite, methods=build_methods(suite.methods))  # built once
    bundle_tuning.check_settings(bundle.method_entry(suite.methods[0])[0], tuning)  # dry run too
    check_model_limits(suite, suite.models)
    if args.dry_run:  # what would run, what it costs, what is cached; nothing written
        from harness import dryrun
        from harness.grid import expand
        from harness.storage import cache_line

        print(cache_line())
        dryrun.dry_run(suite, out, expand(suite), note=note)
        print(f"tuning: {f'the chosen setting of {table}' if tuning else 'none (untuned)'}")
        print(f"bundle: {root / bundle.SUBMISSIONS / name} once every cell is complete "
              "(nothing was written: run without --dry-run)")
        return 0
    device = pick_device(args.device)
    check_writable(out)
    ui = UI(quiet=args.quiet)
    quiet_libraries()
    from harness.storage import cache_line
    ui.log(cache_line())
    ui.log(f"submit {suite.methods[0].name} as '{name}': the {suite.name} grid "
           f"({len(suite.streams) * len(suite.seeds)} cells) on {device} -> {out}")
    was_verified = (root / bundle.SUBMISSIONS / name / bundle.VERIFICATION).exists()
    with ui.session():
        manifest, dest = bundle.submit(name, suite, out, root, device, ui, tuning)
    ui.log(f"bundle: {dest} ({len(manifest['cells'])} cells, {manifest['device_hours']} "
           f"device-hours); check it with `harness verify {dest}`")
    if was_verified:
        print(f"note: this replaced a verified bundle of '{name}'; it is self-reported until "
              f"`harness verify {dest}` accepts it again", file=sys.stderr)
    return 0


def cmd_verify(args) -> int:
    from harness import verify
    from harness.config import load_suite
    from harness.executors import quiet_libraries
    from harness.results import read_json
    from harness.runner import pick_device
    from harness.ui import UI

    path = Path(args.bundle)
    if not path.is_dir():
        raise HarnessError(f"no bundle folder at {path}",
                           "name a folder written by `harness submit` (leaderboard/submissions/NAME)")
    verify.check_contained(path)
    suite = load_suite(args.suite or verify.suite_named(path))
    problems, records = verify.static_problems(path, suite), []
    if not problems and (args.cells > 0 or args.cell):
        listed = read_json(path / "manifest.json")[0]["cells"]
        unknown = [c for c in args.cell or [] if c not in listed]
        if unknown:
            raise HarnessError(f"--cell {unknown[0]}: not a cell of this bundle",
                               f"name one of: {', '.join(listed)}")
        device, ui = pick_device(args.device), UI(quiet=True)
        quiet_libraries()
        picked = verify.draw(path, listed, args.cells, args.cell, args.work, device)
        problems, records = verify.rerun_problems(path, suite, picked, device, ui, args.work)
        if not problems:
            verify.write_verification(path, records, device)
    for problem in problems:
        print(f"REJECTED {path}: {problem}")
    if problems:
        return 1
    reran = ", ".join(f"{r['cell']} ({r['comparison']})" for r in records) or "none (--cells 0)"
    print(f"ACCEPTED {path}: every check passed; re-run: {reran}")
    return 0


def cmd_leaderboard(args) -> int:
    from harness.config import load_suite
    from harness.leaderboard import build, rejection_lines

    from harness.bundle import LIVE_SUITE

    found = build(Path(args.root), load_suite(args.suite or LIVE_SUITE),
                  skip_invalid=args.skip_invalid)
    for line in rejection_lines(found["rejected"]):
        print(line, file=sys.stderr)
    if not found["written"]:
        raise HarnessError(f"{len(found['rejected'])} bundle(s) rejected: nothing written",
                           "fix or remove them, or pass --skip-invalid to rank the others")
    for path in found["written"]:
        print(f"wrote {path}")
    print(f"ranked {len(found['ranked'])} method(s): {', '.join(found['ranked'])}")
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The arguments; the ones no parser knows are named with the subcommand's help."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        raise HarnessError(f"unrecognized arguments: {' '.join(unknown)}",
                           f"see `harness {args.command} --help`")
    return args


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="harness", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a suite: train on each stream, evaluate after every task")
    run.add_argument("--suite", required=True, help="built-in suite name or path to a suite .yaml")
    run.add_argument("--out", help="output directory (default: runs/<suite>)")
    run.add_argument("--methods", "--method", dest="methods",
                     help="comma-separated methods to run (suite names, registry names, or file.py:Class)")
    run.add_argument("--seeds", help="comma-separated seeds to run instead of the suite's")
    run.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    run.add_argument("--precision", help="auto (the suite's default: bf16 autocast on CUDA, "
                     "float32 on a CPU), fp32 or bf16 (autocast on any device)")
    run.add_argument("--quiet", action="store_true", help="plain log lines instead of progress bars")
    for option, what in (("--steps", "optimiser steps a task for every method (the suite's "
                           "budgets, epochs included, are replaced)"),
                          ("--n-train", "training examples a task"),
                          ("--n-test", "test items a task")):
        run.add_argument(option, type=int, metavar="N", help=f"a short first look: {what}; "
                         "shown in the run's header and recorded in the cells (their grid id "
                         "and hashes differ from the suite's budget; default OUT: "
                         "runs/<suite>-short)")
    run.add_argument("--set", action="append", metavar="METHOD.KEY=VALUE",
                     help="a method's setting (VALUE as YAML), or METHOD.train.KEY=VALUE for "
                     "its training settings; repeatable; checked before anything runs")
    run.add_argument("--gpu", help="with --dry-run: peak GPU memory per cell and whether it "
                     "fits on H100, H200, A100-40, A100-80 or a size in GiB")
    run.add_argument("--dry-run", action="store_true",
                     help="list the cells, their state in OUT and a cost estimate; run nothing")
    run.add_argument("--save-model", action="store_true",
                     help="save each cell's final model (adapters merged) to cells/<id>/model/")
    run.add_argument("--keep-checkpoints", action="store_true",
                     help="keep each cell's checkpoint (cells/<id>/checkpoint.pt, written after "
                     "every task so a killed cell resumes) when the cell completes")
    run.add_argument("--cell", action="append", metavar="ID", help="run only this cell "
                     "(repeatable, or a comma list; ids as --dry-run lists them)")
    run.add_argument("--cell-index", type=int, metavar="I", help="run only the I-th cell "
                     "(0-based, the order of --dry-run --json): one cell per array task")
    run.add_argument("--json", action="store_true", help="with --dry-run: the cells as JSON")
    run.add_argument("--jobs", type=int, metavar="N", help="run N cells at once as N worker "
                     "processes (on one GPU, or round-robin over --devices)")
    run.add_argument("--devices", metavar="0,1,...", help="CUDA GPUs: one worker per GPU")
    run.add_argument("--threads", type=int, metavar="N", help="torch threads per cell "
                     "(default: all cores; with --jobs, the cores shared out; Ray: 1)")
    run.add_argument("--executor", choices=["local", "ray"], default="local",
                     help="local (default), or ray: each cell a Ray task (pip install -e \".[ray]\")")
    run.add_argument("--address", help="with --executor ray: auto (the running cluster) or "
                     "HOST:PORT; default: a new local Ray instance")
    run.add_argument("--gpus-per-cell", type=float, metavar="G",
                     help="with --executor ray on CUDA: GPUs per cell (default 1; 0.25: four a GPU)")
    run.add_argument("--settings", metavar="TUNED.json", help="the settings `harness tune` "
                     "chose (its OUT/tuned.json), applied as --set before any --set given")
    run.set_defaults(func=cmd_run, run_parser=run)
    from harness.tune import add_parser as add_tune
    add_tune(sub, cmd_tune)
    lst = sub.add_parser("list", help="list suites, methods, tasks, probes or streams")
    lst.add_argument("what", choices=["suites", "methods", "tasks", "probes", "streams"])
    lst.add_argument("name", nargs="?", help="with methods: one method in full, by name or "
                     "as path/to/file.py:Class (its name, description and defaults)")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(func=cmd_list)  # harness/listing.py
    rep = sub.add_parser("report", help="statistics across the cells of a run: terminal "
                         "tables, OUT/report.md, OUT/summary.json, OUT/plots/*.png")
    rep.add_argument("out", help="the folder given to `harness run --out` (it holds cells/)")
    rep.add_argument("--reference", default="sft",
                     help="method every other method is compared with (default: sft)")
    rep.add_argument("--alpha", type=float, default=0.05,
                     help="significance level after Holm correction (default: 0.05)")
    rep.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    rep.add_argument("--paper", action="store_true", help="the paper suite's numbers beside "
                     "ours per metric (OUT/paper.md, OUT/paper.json)")
    rep.add_argument("--suite", help="with --paper: the paper suite (default: the cells' own)")
    rep.add_argument("--judge", help="with --paper: a local chat model id or path that scores "
                     "the judge-scored metrics (without one they read 'needs a judge')")
    rep.set_defaults(func=cmd_report)
    fet = sub.add_parser("fetch", help="download a suite's models and datasets into the "
                         "Hugging Face cache (for machines without internet)")
    fet.add_argument("--suite", required=True, help="built-in suite name or path")
    fet.add_argument("--judge", help="also fetch this judge model (for report --paper)")
    fet.add_argument("--dry-run", action="store_true", help="list the downloads only")
    fet.set_defaults(func=cmd_fetch)
    sub_ = sub.add_parser("submit", help="run the leaderboard grid for one method and write "
                          "its bundle to leaderboard/submissions/NAME/")
    sub_.add_argument("method", help="a method's name or path/to/file.py:Class")
    sub_.add_argument("--name", help="the bundle's name (default: the method's name)")
    sub_.add_argument("--suite", help="the grid (default: the live board's suite)")
    sub_.add_argument("--out", help="run folder, resumable (default: ROOT/runs/submit/NAME)")
    sub_.add_argument("--root", default=".", help="folder holding leaderboard/ and, unless "
                      "--out says otherwise, the run folder runs/submit/NAME (default: .)")
    sub_.add_argument("--dry-run", action="store_true", help="the cells, their state in the "
                      "run folder, the cost estimate and what the cache holds; run and write "
                      "nothing")
    sub_.add_argument("--set", action="append", metavar="METHOD.KEY=VALUE",
                      help="a setting of the method, as for `harness run`; repeatable")
    sub_.add_argument("--tuning", metavar="PATH", help="the `harness tune` table to bundle "
                      "(its tuning.json or OUT folder; default: OUT/tuning.json where the run "
                      "folder has one; `none`: untuned); its chosen setting is applied")
    sub_.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    sub_.add_argument("--quiet", action="store_true", help="plain log lines")
    sub_.set_defaults(func=cmd_submit)
    ver = sub.add_parser("verify", help="check a bundle (checksums, source, grid, metrics) "
                         "and re-run sampled cells")
    ver.add_argument("bundle", help="the bundle folder (leaderboard/submissions/NAME)")
    ver.add_argument("--cells", type=int, default=1,
                     help="cells to re-run, drawn at random (default 1; 0: static checks only)")
    ver.add_argument("--cell", action="append", help="re-run this cell (repeatable)")
    ver.add_argument("--suite", help="the grid (default: the one the bundle's manifest names, "
                     "e.g. an archived board's)")
    ver.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    ver.add_argument("--work", metavar="DIR", type=Path, help="keep the re-runs and the "
                     "cells drawn in DIR: run again, a stopped verification resumes mid-cell")
    ver.set_defaults(func=cmd_verify)
    lb = sub.add_parser("leaderboard", help="build leaderboard/index.html, README.md and "
                        "leaderboard.json from the bundles")
    lb.add_argument("--root", default=".", help="folder holding leaderboard/ (default: .)")
    lb.add_argument("--suite", help="the grid (default: the live board's suite)")
    lb.add_argument("--skip-invalid", action="store_true",
                    help="rank the valid bundles and list the rejected ones on the page")
    lb.set_defaults(func=cmd_leaderboard)
    from harness.report.stats_check import add_parser as add_stats_check
    add_stats_check(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse(argv)
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe fails here, inside the try, not at exit
        return code
    except HarnessError as exc:
        one_line = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        print(f"harness: error: {one_line}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("harness: interrupted; completed cells are kept, the interrupted cell left no "
              "result.json (re-run the same command to resume)", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`harness ... | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 141  # 128 + SIGPIPE, what a shell reports for a command a pipe cut short


if __name__ == "__main__":
    sys.exit(main())
