"""The command line's parser rules, apart from the commands (harness/cli.py): a usage
mistake is one line and exit 2 like every other user error, and a single-valued option
given twice is refused instead of the last silently winning."""

from __future__ import annotations

import argparse

from harness.errors import HarnessError


class _StoreOnce(argparse._StoreAction):
    """An option given twice is refused: argparse would keep the last without a word
    (`--methods a --methods b` runs b only). Repeatable options use action="append"."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = namespace.__dict__.setdefault("_given_options", set())
        if self.dest in given:
            parser.error(f"{option_string} is given twice (the last would win without a "
                         "word); give it once")
        given.add(self.dest)
        super().__call__(parser, namespace, values, option_string)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line and exit 2 like every other user error:
    `harness: error: <argparse's message>. Fix: see `harness SUBCOMMAND --help``, the
    prefix once (argparse's own `PROG: error:` is main()'s); a single-valued option may be
    given once."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register("action", None, _StoreOnce)
        self.register("action", "store", _StoreOnce)

    def error(self, message):
        raise HarnessError(message, f"see `{self.prog} --help`")
