"""Continual-learning benchmark harness for language-model fine-tuning.

Data flow: suite (config) -> grid of cells (runner) -> per cell: model + method ->
for each task: train (training) -> evaluate (evaluation, probes) -> score row ->
cell result -> metrics -> report.
"""

__version__ = "0.1.0"
