"""Method presets for the paper suites: a registered method under another name with other
defaults, so that two settings of one method run side by side in one grid (a suite lists a
method once per name). Each preset changes only settings the method already has; none
changes what the method's code does. Both are registered by name (entry-point group
`harness.methods`): list `sdft-trl: {}` in a suite or `--methods sft,sdft,sdft-trl`.

What TRL or a paper sets that no method setting can express yet is listed as "not yet" in
docs/paper-suites.md (vLLM sampling with its importance-weight correction, SelfAug's
padding in the KL mask, ...).
"""

from __future__ import annotations

from harness.methods.sdft import SDFT
from harness.methods.selfaug import SelfAug

# TRL's SDFT trainer prompts the teacher with "{prompt}\n\n{privileged_context}" (its
# `teacher_prompt_template` default, trl.experimental.sdft at f2cd577).
TRL_TEACHER_TEMPLATE = "{query}\n\n{demonstration}"


class SDFTTRL(SDFT):
    """`sdft` with the defaults of TRL's `trl.experimental.sdft` (../shared/PAPERS.md §0.2
    item 12; checked against trl 1.16.0's SDFTConfig and loss_utils):

    - teacher_model_kind "base": a frozen teacher (the model before the first task), i.e.
      an EMA rate of 0 (TRL's teacher_update_rate applies to its EMA teacher only);
    - distillation_alpha 0.5 over distillation_topk 100: the generalised JSD with beta 0.5
      on the student's 100 most likely tokens, renormalised (distillation_add_tail off);
    - num_generations 8: eight completions per prompt. TRL's batch size counts completions
      (8 a device: one prompt), ours counts prompts: at the same batch_size this preset
      distills 8x the sequences of `sdft` a step;
    - max_completion_length 256 (the released code: 1024);
    - its teacher template, and num_loss_tokens_to_skip 0.
    Its steps_per_generation defaults to one optimiser step (our sample_steps 1), and its
    importance-ratio cap distillation_is_clip 2.0 is our is_clip."""

    name = "sdft-trl"
    version = "1"
    description = ("sdft with TRL's defaults: frozen base teacher, JSD 0.5 over the student's "
                   "top 100 tokens, 8 rollouts a prompt, TRL's teacher template, no skipped tokens")
    defaults = {**SDFT.defaults, "ema_rate": 0.0, "kl": "jsd", "beta": 0.5, "topk": 100,
                "rollouts": 8, "max_new_tokens": 256, "skip_tokens": 0,
                "template": TRL_TEACHER_TEMPLATE}


class SelfAugPaper(SelfAug):
    """`selfaug` with the paper's direction of the KL, KL(tuned || base) as written in its
    Eq. (L_KL = D_KL(p_ft || p_o)); the released code (and `selfaug`'s default) computes
    KL(base || tuned)."""

    name = "selfaug-paper"
    version = "1"
    description = "selfaug with the paper's KL direction, KL(tuned || base) (code: base || tuned)"
    defaults = {**SelfAug.defaults, "direction": "tuned-base"}
