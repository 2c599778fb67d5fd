"""Built-in offline benchmark: task generators, probes data, suites and streams."""
