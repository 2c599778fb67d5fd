"""Side-by-side performance measurements against TRL and the lm_eval command line
(`python -m scripts.perf` from the repository root; docs/performance.md)."""
