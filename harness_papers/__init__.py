"""The four papers' data, prompts, scorers and aggregates (../shared/PAPERS.md §6; the task
list is docs/paper-tasks.md). harness.tasks.TASKS names each task as
"benchmarks.papers.<module>:<Class>"; `HARNESS_PAPER_FIXTURES=<folder>` reads small local
files of the same shape instead of the hub (benchmarks.papers.sources)."""
