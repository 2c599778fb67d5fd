"""The paper suites' plug-in: the four papers' data loaders, prompt templates, scorers and
aggregates (../shared/PAPERS.md §6; the task list is docs/paper-tasks.md), and method presets.

It plugs in as a third party would: pyproject.toml registers every task in the entry-point
group `harness.tasks` ("harness_papers.<module>:<Class>") and the presets in
`harness.methods`; the harness itself names none of them. `HARNESS_PAPER_FIXTURES=<folder>`
reads small local files of the same shape instead of the hub (harness_papers.sources)."""
