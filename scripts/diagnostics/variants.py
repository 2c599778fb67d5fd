"""Named variants of the methods under study, for the diagnostic suites beside this file.

A suite lists a method once; these aliases let one grid hold several settings of the same
method, each with its own cells and its own rows in `harness report`. They add no code:
the settings that make each variant are written in the suite, next to its name.
"""

from harness.methods.sa_sft import SASFT
from harness.methods.sdft import SDFT


class SASFTSeparateBatches(SASFT):
    name = "sa-sft-separate-batches"


class SASFTUntempered(SASFT):
    name = "sa-sft-t1"


class SASFTPoolPerTask(SASFT):
    name = "sa-sft-pool-per-task"


class SDFTShort(SDFT):
    name = "sdft-short"


class SDFTSkip0Short(SDFT):
    name = "sdft-skip0-short"


class SDFTSkip0(SDFT):
    name = "sdft-skip0"


class SDFTSampleSteps(SDFT):
    name = "sdft-sample-steps"


class SDFTAnswerOnly(SDFT):
    name = "sdft-answer-only"  # its suite sets a teacher template without "the thinking process"
