"""Multitask (joint) training: a reference for intransigence, not a continual method.

At the first task it trains once on the union of every task of the stream, with the
stream's whole step budget (steps per task x number of tasks); later tasks train on
nothing, so their rows show the jointly trained model again.
No state of its own: it reads `ctx.history`, which a resumed cell gets back from the
checkpoint.
"""

from harness.methods import Method


class Multitask(Method):
    name = "multitask"
    version = "1"  # bump when a change moves its numbers (docs/writing-a-method.md)
    description = "joint training on the whole stream at once (reference, not continual)"
    continual = False

    def train_data(self, task, examples, ctx):
        if ctx.history:  # everything was learned jointly at the first task
            return []
        return [example for _, train in ctx.stream for example in train]

    def plan_steps(self, task, steps, ctx):
        # a fixed step budget is per task: spend the whole stream's; an epoch budget
        # already grows with the union of the data
        return steps * len(ctx.stream) if ctx.train_settings.steps else steps
