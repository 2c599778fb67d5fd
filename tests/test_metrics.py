"""CL metrics on hand-made score matrices (values worked out by hand in the comments)."""

import pytest

from harness import metrics

# T = 3. Row 0 = base; row i = after task i.
R = [
    [0.1, 0.2, 0.0],
    [0.9, 0.3, 0.1],
    [0.6, 0.8, 0.2],
    [0.5, 0.7, 0.9],
]


def test_acc_is_final_row_mean():
    assert metrics.acc(R) == pytest.approx((0.5 + 0.7 + 0.9) / 3)


def test_aia():
    # mean of [0.9], [0.6, 0.8], [0.5, 0.7, 0.9]
    assert metrics.aia(R) == pytest.approx((0.9 + 0.7 + 0.7) / 3)


def test_bwt_is_final_minus_just_trained_over_first_t_minus_1():
    # (0.5 - 0.9) + (0.7 - 0.8) = -0.5, over 2 tasks
    assert metrics.bwt(R) == pytest.approx(-0.25)


def test_fwt_against_base_model():
    # task 2: R[1][1] - b = 0.3 - 0.2 ; task 3: R[2][2] - b = 0.2 - 0.0
    assert metrics.fwt(R) == pytest.approx((0.1 + 0.2) / 2)


def test_forgetting_excludes_base_row():
    # task 1: max(R1, R2) = 0.9 -> 0.9 - 0.5 = 0.4 ; task 2: max(0.3, 0.8) - 0.7 = 0.1
    assert metrics.forgetting(R) == pytest.approx(0.25)
    # a task the base already solved and training never reached: base row does not count
    R2 = [[1.0, 0.0], [0.4, 0.5], [0.4, 0.9]]
    assert metrics.forgetting(R2) == pytest.approx(0.0)


def test_plasticity():
    # (0.9 - 0.1) + (0.8 - 0.2) + (0.9 - 0.0) = 2.3
    assert metrics.plasticity(R) == pytest.approx(2.3 / 3)


def test_single_task_stream_has_no_transfer_metrics():
    R1 = [[0.2], [0.7]]
    m = metrics.cell_metrics(R1)
    assert m["bwt"] is None and m["fwt"] is None and m["forgetting"] is None
    assert m["acc"] == pytest.approx(0.7) and m["plasticity"] == pytest.approx(0.5)


def test_no_forgetting_when_scores_only_rise():
    R3 = [[0, 0], [0.5, 0.1], [0.6, 0.8]]
    assert metrics.bwt(R3) == pytest.approx(0.1)
    assert metrics.forgetting(R3) == pytest.approx(-0.1)


def test_probe_summaries():
    m = metrics.cell_metrics(R, {"drift": [0.0, 0.2, 0.5, 0.4]})
    assert m["drift_final"] == pytest.approx(0.4) and m["drift_delta"] == pytest.approx(0.4)


def test_catalogue_is_cell_metrics_and_states_directions():
    m = metrics.cell_metrics(R)
    assert list(m) == list(metrics.METRICS)
    for name, metric in metrics.METRICS.items():
        assert m[name] == metric.fn(R)
    assert [n for n, x in metrics.METRICS.items() if not x.higher_is_better] == ["forgetting"]


def test_min_tasks_is_where_a_metric_becomes_defined():
    one = [[0.2], [0.7]]
    for name, metric in metrics.METRICS.items():
        assert (metric.fn(one) is None) == (metric.min_tasks > 1), name
        assert metric.fn(R) is not None
