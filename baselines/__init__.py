"""Baseline methods, written only against the public method API (harness.methods)."""
