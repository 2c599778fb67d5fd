"""Continual-learning benchmark harness for language-model fine-tuning.

Data flow: suite (config) -> cells and their plans (grid) -> per cell (runner): model +
method -> for each task: train (training) -> evaluate (evaluation, probes) -> one row ->
result.json (results, with metrics) -> statistics across cells (report, statistics).
"""

__version__ = "0.1.0"
