"""Built-in task generators, one per module; pyproject.toml registers each in the entry-point
group `harness.tasks` as "benchmarks.tasks.<module>:<Class>", imported on first use."""
