"""Built-in task generators; importing this package registers them (see harness.tasks)."""

from benchmarks.tasks import arith, classify, facts, json_extract, tool_call, transform  # noqa: F401
