"""python -m scripts.perf: our SFT step vs TRL SFTTrainer, our SDFT step vs our SFT
step and TRL's SDFTTrainer, our evaluation vs the lm_eval command line. See
docs/performance.md for what is measured and how."""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")  # before transformers imports tqdm

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402

PARTS = ("sft", "sdft", "breakdown", "eval")


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m scripts.perf", description=__doc__)
    p.add_argument("--model", default="smollm2-135m-instruct",
                   help="embedded model name, local folder or hub id")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--steps", type=int, default=4,
                   help="optimiser steps per round and side; the first is warm-up (default 4)")
    p.add_argument("--only", default=",".join(PARTS), help="comma-separated: sft,sdft,breakdown,eval")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="torch threads, also OMP_NUM_THREADS of the lm_eval subprocess "
                        "(default: all cores)")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                   help="as a suite's precision: auto (bf16 autocast on CUDA, float32 on a "
                        "CPU), fp32, or bf16 autocast on any device; TRL is set alike")
    p.add_argument("--no-trl-sdft", action="store_true", help="skip TRL's SDFTTrainer")
    p.add_argument("--sample-steps", type=int, default=1, metavar="N",
                   help="also time our SDFT sampling N steps in one call (sdft's sample_steps; "
                        "--steps must be a multiple of N)")
    p.add_argument("--json", metavar="OUT.json", help="also write every figure here")
    args = p.parse_args(argv)
    args.only = [x.strip() for x in args.only.split(",") if x.strip()]
    if unknown := set(args.only) - set(PARTS):
        p.error(f"--only: unknown part(s) {', '.join(sorted(unknown))} (use {', '.join(PARTS)})")
    if args.sample_steps < 1 or args.steps % args.sample_steps:
        p.error("--sample-steps must be at least 1 and divide --steps")
    if args.steps < 2 or args.rounds < 1:
        p.error("--steps must be at least 2 (the first is warm-up) and --rounds at least 1")
    return args


def main(argv=None) -> int:
    from harness.precision import using

    args = parse(argv)
    with using(args.precision):
        return measure(args)


def measure(args) -> int:
    warnings.filterwarnings("ignore", category=FutureWarning)
    import torch

    from scripts.perf.common import hardware, quiet
    from harness.models import resolve_model

    quiet()
    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    path = resolve_model(args.model, log=lambda m: None)
    hw = hardware(args.threads)
    say = lambda line: print(line, flush=True)  # noqa: E731
    say(f"hardware: {hw['device']}, {hw['threads']} threads of {hw['cores']} cores, "
        f"torch {hw['torch']}, {hw['dtype']}; model {args.model}")
    say(f"rounds {args.rounds} x {args.steps} steps per side (first step of each round "
        "dropped as warm-up)")
    results = {"hardware": hw, "model": args.model, "rounds": args.rounds, "steps": args.steps}
    if "sft" in args.only:
        from scripts.perf import sft

        say("== SFT step: ours vs TRL SFTTrainer")
        results["sft"] = sft.run(path, args.rounds, args.steps, say=say)
        report_sft(results["sft"], say)
    if "sdft" in args.only:
        from scripts.perf import sdft

        say("== SDFT step: ours vs our SFT step and TRL SDFTTrainer")
        results["sdft"] = sdft.run(path, args.rounds, args.steps, not args.no_trl_sdft, say=say,
                                   sample_steps=args.sample_steps)
        for line in results["sdft"]["lines"]:
            say(line)
    if "breakdown" in args.only:
        from scripts.perf import breakdown

        say("== where an SDFT step's time goes (median over rounds)")
        results["breakdown"] = breakdown.run(path, args.rounds, say=say)
    if "eval" in args.only:
        from scripts.perf import evaluation

        say("== evaluation: ours in process vs the lm_eval command line")
        results["eval"] = evaluation.run(path, args.threads, say=say)
        say(results["eval"]["line"])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=str)
    return 0


def report_sft(r: dict, say) -> None:
    for name, label in (("ours", "ours"), ("trl", "TRL ")):
        s = r[name]
        say(f"  {label}: {s['tokens_per_s']:.0f} tok/s, {s['sec_per_step_median']:.3f} s/step "
            f"(median), {s['tokens_per_step_mean']:.0f} non-padding tokens/step, "
            f"{s['steps']} steps timed")
    say(r["line"])


if __name__ == "__main__":
    sys.exit(main())
