"""lm-eval switches an outer autocast off (docs/suites.md, `precision`): its HF model wraps
forward calls in torch.autocast(enabled=mixed_precision_dtype is not None), so the tasks'
evaluation runs in float32 whatever the suite's precision. If lm-eval ever respects the
caller's autocast, this fails and the docs (and the bf16 cost factor for evaluation,
harness/grid.py CPU_BF16_FACTOR) must change with it."""

import torch

from harness.evaluation import _quiet_hflm


def test_lm_evals_forward_runs_without_the_callers_autocast(tiny):
    model, tok = tiny
    seen = []
    hook = model.register_forward_pre_hook(
        lambda module, args: seen.append(torch.is_autocast_enabled("cpu")))
    lm = _quiet_hflm()(pretrained=model, tokenizer=tok, batch_size=2)
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.is_autocast_enabled("cpu")  # ours is on around the call
        logits = lm._model_call(ids)
        model(ids)  # a call of our own, for contrast
    hook.remove()
    assert seen == [False, True]
    assert logits.dtype == torch.float32
