"""Built-in task generators; importing this package registers them (see harness.tasks)."""

from benchmarks.tasks import arith, json_extract  # noqa: F401
