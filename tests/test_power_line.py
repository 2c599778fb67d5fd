"""The dry run's power line (issue 28 item 6): the minimum detectable difference of the
design after the board-wide correction, from OUT's measured spread or a stated one."""

import statistics
from types import SimpleNamespace

from harness.dryrun import STATED_SPREAD, measured_spread, power_line
from harness.power import design_mdd
from tests.synthetic_cells import write_cell


def suite(seeds, streams, methods):
    return SimpleNamespace(seeds=list(range(seeds)), streams={f"s{i}": ["t"] for i in range(streams)},
                           methods=[f"m{i}" for i in range(methods)])


def test_without_cells_the_stated_spread_is_used_and_said(tmp_path):
    line = power_line(suite(3, 2, 14), tmp_path)
    mdd = design_mdd({"acc": STATED_SPREAD}, 3, 2, 14)["acc"]
    assert "91 pairs" in line and f"acc {mdd:.3f} (sd assumed {STATED_SPREAD:.3f})" in line
    assert "no test" in power_line(suite(1, 1, 2), tmp_path)
    # one method: nothing to compare (was "after Holm over all 0 pairs")
    assert power_line(suite(3, 1, 1), tmp_path) == \
        "power: one method, no comparisons between methods to size"


def test_more_seeds_detect_smaller_differences(tmp_path):
    mdds = [design_mdd({"acc": 0.05}, n, 2, 14)["acc"] for n in (3, 6, 12)]
    assert mdds[0] > mdds[1] > mdds[2] > 0


def test_measured_spread_is_the_median_pair_sd_of_paired_differences(tmp_path):
    accs = {"a": [0.5, 0.6, 0.7], "b": [0.5, 0.5, 0.9], "c": [0.4, 0.6, 0.6]}
    for method, values in accs.items():
        for seed, acc in enumerate(values):
            write_cell(tmp_path, "m", "s", method, seed, [[0.0, 0.0], [acc, 0.0], [acc, acc]],
                       metrics={"acc": acc})
    pairs = [("a", "b"), ("a", "c"), ("b", "c")]
    by_hand = statistics.median(statistics.stdev(x - y for x, y in zip(accs[p], accs[q]))
                                for p, q in pairs)
    assert abs(measured_spread(tmp_path, "acc") - by_hand) < 1e-12
    assert "sd measured in OUT" in power_line(suite(3, 1, 3), tmp_path)


def test_observed_spread_centres_each_stream_and_takes_the_median_pair():
    # a stream that favours one method is not spread: a - b is +0.1 +- 0.01 on s1 and
    # -0.1 +- 0.01 on s2, so the centred sd is 0.01 * sqrt(4 / 4) (residuals +-0.01, df 4)
    from harness.power import observed_spread

    a = {("m", "s1", 0): 0.6, ("m", "s1", 1): 0.6, ("m", "s1", 2): 0.6,
         ("m", "s2", 0): 0.4, ("m", "s2", 1): 0.4, ("m", "s2", 2): 0.4}
    b = {k: v - (0.1 if k[1] == "s1" else -0.1) + e
         for (k, v), e in zip(a.items(), [0.01, -0.01, 0.0, 0.01, -0.01, 0.0])}
    assert abs(observed_spread({"a": a, "b": b}) - (4 * 0.01 ** 2 / 4) ** 0.5) < 1e-12
    same = dict(a)
    # three pairs: sd(a - b) = 0.01, sd(a - same) = 0, sd(b - same) = 0.01: the median 0.01
    assert abs(observed_spread({"a": a, "b": b, "c": same}) - 0.01) < 1e-12
    assert observed_spread({"a": {("m", "s1", 0): 1.0}, "b": {("m", "s1", 0): 0.5}}) is None
