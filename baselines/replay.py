"""Experience replay: keep a few examples of every earlier task and train on them again.

After each task, `buffer_per_task` of its training examples (drawn with the cell's seed)
join a buffer; every later task trains on its own data plus the whole buffer. A resumed
cell gets the buffer back through state_dict / load_state_dict.
"""


from harness.methods import Method, generator


class Replay(Method):
    name = "replay"
    version = "1"  # bump when a change moves its numbers (docs/writing-a-method.md)
    tune = {"buffer_per_task": [8, 16, 32, 64]}  # `harness tune`'s grid
    description = "replay a per-task buffer of earlier tasks' examples"
    defaults = {"buffer_per_task": 16}

    def setup(self, ctx):
        self.buffer, self.current = [], []

    def train_data(self, task, examples, ctx):
        self.current = list(examples)
        return self.current + self.buffer

    def after_task(self, task, model, ctx):
        rng = generator(ctx.seed, "replay", task.name)
        k = min(self.params["buffer_per_task"], len(self.current))
        self.buffer += rng.sample(self.current, k)

    def state_dict(self, ctx):
        return {"buffer": list(self.buffer)}

    def load_state_dict(self, state, ctx):
        self.buffer = list(state["buffer"])
