"""Side-by-side performance measurements against TRL and the lm_eval command line."""
