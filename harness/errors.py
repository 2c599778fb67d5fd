"""User-facing errors: one line that names the problem and the fix; the CLI exits 2."""


class HarnessError(Exception):
    """A problem the user can fix (bad suite, unknown name, missing model...)."""

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem}. Fix: {fix}" if fix else problem)
