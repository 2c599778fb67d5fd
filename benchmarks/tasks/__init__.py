"""Built-in task generators, one per module; harness.tasks.TASKS names each as
"benchmarks.tasks.<module>:<Class>" and imports it on first use."""
