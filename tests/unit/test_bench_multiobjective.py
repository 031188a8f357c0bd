"""The multi-objective benchmark's scoring: exact hypervolume, Pareto filtering, the known fronts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from bench.multiobjective import (
    PROBLEMS,
    ZDT_REFERENCE,
    dtlz2_front,
    front_hypervolume,
    hypervolume,
    pareto_mask,
    report,
    run_one,
    zdt1,
    zdt_front,
)


def monte_carlo_hypervolume(points: np.ndarray, reference: np.ndarray, samples: int = 400_000) -> float:
    """The share of uniform samples in [0, r] that some point dominates, times the box's volume."""
    rng = np.random.default_rng(0)
    u = rng.uniform(0.0, 1.0, size=(samples, reference.size)) * reference
    dominated = np.zeros(samples, dtype=bool)
    for p in points:
        dominated |= np.all(u >= p, axis=1)
    return float(dominated.mean() * np.prod(reference))


def test_2d_hypervolume_of_a_staircase_by_hand() -> None:
    # (1, 3), (2, 2), (3, 1) against (4, 4): slabs 1·1 + 1·2 + 1·3; the dominated (3, 3) adds nothing
    points = [[1, 3], [2, 2], [3, 1], [3, 3]]
    assert hypervolume(points, (4, 4)) == 6.0


@pytest.mark.parametrize(("points", "reference", "expected"), [
    ([[5, 0]], (4, 4), 0.0),  # outside the box on one axis
    ([[4, 1]], (4, 4), 0.0),  # on the box's edge: no volume
    ([[1, 1], [1, 1]], (2, 2), 1.0),  # a repeated point counts once
    ([[math.nan, 0]], (1, 1), 0.0),  # a failed evaluation
    ([[0.5, 0.5, 0.5]], (1, 1, 1), 0.125),
    ([[0, 0, 0.5], [0.5, 0.5, 0]], (1, 1, 1), 0.5 + 0.5 * 0.25),
])
def test_hypervolume_edge_cases(points: list[list[float]], reference: tuple[float, ...], expected: float) -> None:
    assert hypervolume(points, reference) == pytest.approx(expected)


def test_3d_hypervolume_matches_monte_carlo() -> None:
    rng = np.random.default_rng(1)
    points = rng.uniform(0.0, 1.0, size=(25, 3)) ** 0.5  # a mix of front and dominated points
    reference = np.array([1.1, 1.2, 1.0])  # some points lie beyond r3
    exact = hypervolume(points, reference)
    # 400,000 samples: standard error about 0.0011 of the box (1.32)
    assert exact == pytest.approx(monte_carlo_hypervolume(points, reference), abs=0.006)


def test_pareto_mask_keeps_exactly_the_non_dominated_points() -> None:
    points = np.array([[1, 3], [2, 2], [3, 1], [2, 3], [3, 3], [2, 2]])
    assert pareto_mask(points).tolist() == [True, True, True, False, False, True]


def test_a_point_on_zdt1_front_is_non_dominated_by_random_points() -> None:
    on_front = zdt1({"x0": 0.25, **{f"x{i}": 0.0 for i in range(1, 6)}})
    assert on_front == pytest.approx((0.25, 0.5))  # g = 1: f2 = 1 − √0.25
    rng = np.random.default_rng(2)
    others = [zdt1({f"x{i}": float(v) for i, v in enumerate(row)}) for row in rng.uniform(size=(200, 6))]
    assert pareto_mask(np.array([on_front, *others]))[0]


@pytest.mark.parametrize(("name", "closed_form"), [
    ("zdt1", 1.1 * 11 - 1 / 3),  # the box minus the area under f2 = 1 − √f1
    ("zdt2", 1.1 * 11 - 2 / 3),  # ... under f2 = 1 − f1²
    ("dtlz2", 1.1**3 - math.pi / 6),  # the box minus the unit ball's octant
])
def test_front_hypervolume_matches_its_closed_form(name: str, closed_form: float) -> None:
    assert front_hypervolume(name) == pytest.approx(closed_form, abs=1e-5)


def test_the_ml_task_has_no_known_front() -> None:
    assert front_hypervolume("digits-cost") is None  # scored against the best run instead


def test_a_sample_of_a_front_falls_just_short_of_the_front() -> None:
    assert hypervolume(zdt_front(lambda f: 1 - np.sqrt(f), n=101), ZDT_REFERENCE) < front_hypervolume("zdt1")
    sample = dtlz2_front(12)
    assert np.allclose(np.linalg.norm(sample, axis=1), 1.0)
    assert pareto_mask(sample).all()
    assert hypervolume(sample, PROBLEMS["dtlz2"].reference) < front_hypervolume("dtlz2")


def test_a_tiny_random_run_gives_a_complete_record() -> None:
    record = run_one("zdt1", "random", seed=0, rounds=2, batch=2)
    assert {"problem", "optimizer", "seed", "rounds", "batch", "reference", "values", "hypervolume", "hv_trace",
            "suggest_s"} <= record.keys()
    assert (record["problem"], record["optimizer"], record["seed"]) == ("zdt1", "random", 0)
    assert len(record["values"]) == 4 and all(len(v) == 2 for v in record["values"])
    assert record["hv_trace"][-1] == record["hypervolume"] == hypervolume(record["values"], ZDT_REFERENCE)
    assert record["hv_trace"][0] <= record["hv_trace"][1]
    assert 0 < record["hypervolume"] <= front_hypervolume("zdt1")


def test_report_scores_the_true_front_at_one() -> None:
    front = zdt_front(lambda f: 1 - np.sqrt(f), n=2001).tolist()
    best = {"problem": "zdt1", "optimizer": "bayes", "seed": 0, "rounds": 1, "batch": len(front),
            "values": front, "hypervolume": hypervolume(front, ZDT_REFERENCE), "suggest_s": 0.0}
    half = {**best, "optimizer": "random", "hypervolume": best["hypervolume"] / 2}
    text = report([best, half], single_objective=["bayes"])
    row = next(line for line in text.splitlines() if line.startswith("| zdt1 | 1 |"))
    assert row == "| zdt1 | 1 | 1.000 (1.000) | 0.500 (0.500) |"
    assert "| bayes* | random |" in text
    assert "| zdt1 | (1.1, 1.1) | 1.000 (1.000) | 1.000 (1.000) |" in text  # the same points near the front
