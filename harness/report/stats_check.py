"""`harness stats-check`: simulate a design and print what the statistics deliver there.

    harness stats-check --seeds 3 --streams 2 --methods 14 --items 32 [--reps 2000]
                        [--effect 0.5] [--json]

Every number comes from harness.power.simulate_design (null boards: all methods drawn
from one distribution; --effect plants a difference on one method, on the logit scale):
the coverage of the 95% intervals of the difference from the reference, the family-wise
error of one Holm family over all pairs (and of the old per-method families, for
comparison), and with --effect the power to find the planted difference.
"""

from __future__ import annotations

import json

from harness.errors import HarnessError


def add_parser(sub) -> None:
    p = sub.add_parser("stats-check", help="simulate a design (seeds x streams x methods x "
                       "items) and print the coverage and family-wise error of the statistics")
    p.add_argument("--seeds", type=int, default=3, help="seeds per stream (default 3)")
    p.add_argument("--streams", type=int, default=2, help="streams (default 2)")
    p.add_argument("--methods", type=int, default=14, help="methods on the board (default 14)")
    p.add_argument("--items", type=int, default=32, help="test items per stream (default 32)")
    p.add_argument("--reps", type=int, default=2000, help="simulated boards (default 2000)")
    p.add_argument("--effect", type=float, default=0.0,
                   help="planted logit difference of one method (default 0: a null board)")
    p.add_argument("--seed-sd", type=float, default=0.4,
                   help="sd of a run's logit shift between seeds (default 0.4)")
    p.add_argument("--alpha", type=float, default=0.05, help="default 0.05")
    p.add_argument("--rng-seed", type=int, default=0, help="default 0")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args) -> int:
    from harness.power import simulate_design

    if args.seeds < 2:
        raise HarnessError(f"--seeds {args.seeds}: an interval needs at least 2 seeds",
                           "pass --seeds 2 or more")
    for name in ("streams", "methods", "items", "reps"):
        if getattr(args, name) < (2 if name == "methods" else 1):
            raise HarnessError(f"--{name} must be at least {2 if name == 'methods' else 1}, "
                               f"got {getattr(args, name)}", f"e.g. --{name} 2")
    if not 0 < args.alpha < 1:
        raise HarnessError(f"--alpha must be between 0 and 1, got {args.alpha}", "e.g. 0.05")
    r = simulate_design(seeds=args.seeds, streams=args.streams, methods=args.methods,
                        items=args.items, reps=args.reps, effect=args.effect,
                        seed_sd=args.seed_sd, alpha=args.alpha, rng_seed=args.rng_seed)
    if args.json:
        print(json.dumps(r, indent=1))
        return 0
    pairs = args.methods * (args.methods - 1) // 2
    print(f"design: {args.seeds} seeds x {args.streams} stream(s) x {args.methods} methods x "
          f"{args.items} items, {args.reps} simulated boards (RNG seed {args.rng_seed})")
    print(f"coverage of the 95% t intervals (difference from the reference, true 0): "
          f"{r['coverage']:.3f} (Monte Carlo se {r['coverage_se']:.3f}); the percentile "
          f"bootstrap over seeds (the old interval): {r['coverage_bootstrap']:.3f}")
    print(f"family-wise error, Holm over all {pairs} pairs: {r['fwe']:.3f} "
          f"(se {r['fwe_se']:.3f}; alpha {args.alpha})")
    print(f"family-wise error, Holm within each method's {args.methods - 1} comparisons "
          f"(the old rule): {r['fwe_per_method']:.3f}")
    if r["power"] is not None:
        print(f"power: planted effect {args.effect:+g} (logit) found in {r['power']:.3f} "
              "of boards")
    return 0
