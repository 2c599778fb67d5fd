"""`task:<name>[:<n>]`: a probe that scores a dataset task's test set on every checkpoint,
for the papers' evaluation-only sets (MultiArith, AdvBench, AlpacaEval, ChatRAG-Bench,
MedText) and for a trained task's test set measured beside other streams. The first `n`
items of the task's seeded selection (data seed 0), all of them by default; the value is
the mean of the task's own per-item score, through the row's lm-eval call."""

from __future__ import annotations

from harness.errors import HarnessError
from harness.lmeval_tasks import write_task
from harness.probes import Probe
from harness.tasks import get_task


class TaskProbe(Probe):
    max_new_tokens: int | None = None  # None: the task's own budget

    def __init__(self, spec: str):
        parts = spec.split(":")
        if parts[0] != "task" or len(parts) not in (2, 3) or not parts[1]:
            raise HarnessError(f"bad task probe '{spec}'", "write task:<name> or task:<name>:<n>")
        if len(parts) == 3 and not (parts[2].isdigit() and int(parts[2]) > 0):
            raise HarnessError(f"bad item count in task probe '{spec}'",
                               "give a positive whole number, e.g. task:advbench:100")
        self.name, self.task = spec, get_task(parts[1])
        self.n = int(parts[2]) if len(parts) == 3 else None
        self.chat_template = self.task.chat_template
        self.lm_name = "cl_probe_task_" + parts[1].replace("-", "_")
        self.description = f"test set of task {parts[1]}: {self.task.description}"

    def lmeval_task(self, workdir):
        split = self.task.split(0, self.n if self.n is not None else 10**9, 0)
        return write_task(self.task, split, workdir / self.lm_name, self.max_new_tokens,
                          name=self.lm_name)

    def measure(self, row):
        return float(row.lmeval["results"][self.lm_name]["score,none"])
