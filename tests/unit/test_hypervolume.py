"""Expected hypervolume improvement (kubetune.suggest.bayes.hypervolume) against what it stands for."""

from __future__ import annotations

import numpy as np

from kubetune.suggest.bayes.hypervolume import dominated_by, log_ehvi, region_samples, without_dominated

FRONT = np.array([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]])
LOWER, REFERENCE = np.array([-1.0, -1.0]), np.array([1.5, 1.5])


def hypervolume_2d(points: np.ndarray, reference: np.ndarray) -> float:
    """The exact hypervolume of 2-d points (minimized) below ``reference``: a sweep over f1."""
    volume, ceiling = 0.0, reference[1]
    for f1, f2 in points[np.argsort(points[:, 0])]:
        if f2 < ceiling:
            volume += (reference[0] - f1) * (ceiling - f2)
            ceiling = f2
    return volume


def exact_hvi_2d(front: np.ndarray, y: np.ndarray, reference: np.ndarray) -> float:
    return hypervolume_2d(np.vstack([front, y]), reference) - hypervolume_2d(front, reference)


def test_the_samples_lie_in_the_box_and_outside_what_the_front_dominates() -> None:
    samples = region_samples(FRONT, LOWER, REFERENCE, np.random.default_rng(0))
    assert len(samples) > 1000
    assert np.all(samples >= LOWER) and np.all(samples <= REFERENCE)
    assert not np.any(dominated_by(samples, FRONT))
    # the share kept is the share of the box the front leaves: 1 − HV(front) / box volume = 0.76
    box = float(np.prod(REFERENCE - LOWER))
    assert hypervolume_2d(FRONT, REFERENCE) == 1.5
    assert abs(len(samples) / 2048 - (1 - 1.5 / box)) < 0.03


def test_with_no_uncertainty_it_ranks_outcomes_by_their_exact_improvement() -> None:
    samples = region_samples(FRONT, LOWER, REFERENCE, np.random.default_rng(1), n=20000)
    outcomes = np.array([[0.25, 0.25], [0.4, 0.45], [0.8, 0.8], [-0.5, 1.2], [0.1, 0.6]])
    scores = log_ehvi(outcomes, np.full(outcomes.shape, 1e-10), samples)
    exact = [exact_hvi_2d(FRONT, y, REFERENCE) for y in outcomes]
    assert exact[2] == 0.0 and scores[2] < -20  # dominated by the front: no improvement
    improving = [0, 1, 3, 4]
    assert sorted(improving, key=lambda i: scores[i]) == sorted(improving, key=lambda i: exact[i])
    # and the estimate is the improvement's share of the region, up to the constant of the sampling
    volume_left = len(samples) / 20000 * float(np.prod(REFERENCE - LOWER))
    for i in improving:
        assert abs(np.exp(scores[i]) * volume_left - exact[i]) < 0.03 + 0.1 * exact[i]


def test_uncertainty_gives_a_dominated_mean_a_chance_and_far_candidates_still_rank() -> None:
    samples = region_samples(FRONT, LOWER, REFERENCE, np.random.default_rng(2))
    mean = np.array([[0.8, 0.8], [0.8, 0.8], [5.0, 5.0], [9.0, 9.0]])
    var = np.array([[1e-10, 1e-10], [0.25, 0.25], [0.25, 0.25], [0.25, 0.25]])
    scores = log_ehvi(mean, var, samples)
    assert scores[1] > scores[0]
    assert np.all(np.isfinite(scores[1:])) and scores[2] > scores[3]  # log space: no underflow to a tie


def test_a_believed_outcome_takes_its_part_of_the_region_away() -> None:
    samples = region_samples(FRONT, LOWER, REFERENCE, np.random.default_rng(3))
    y = np.array([0.2, 0.2])
    left = without_dominated(samples, y)
    assert 0 < len(left) < len(samples)
    assert not np.any(np.all(y <= left, axis=1))
    before = log_ehvi(np.array([[0.25, 0.25]]), np.full((1, 2), 1e-10), samples)[0]
    after = log_ehvi(np.array([[0.25, 0.25]]), np.full((1, 2), 1e-10), left)[0]
    assert after < before - 5  # a second point at the same place improves (almost) nothing
