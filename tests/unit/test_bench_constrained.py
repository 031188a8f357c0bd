"""The constraint benchmark's problems and scoring (no Optuna: only kubetune's `random` is run)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from bench.constrained import PROBLEMS, best_feasible, is_feasible, run_one, summarize

KNOWN = [name for name, p in PROBLEMS.items() if p.optimum is not None]


@pytest.mark.parametrize("name", KNOWN)
def test_the_known_optimum_is_feasible_and_has_the_stated_value(name: str) -> None:
    problem = PROBLEMS[name]
    assert problem.optimum_at is not None and problem.optimum is not None
    # the optima sit on a constraint's boundary; 6-digit coordinates may be a hair outside it
    values = problem.constraints(problem.optimum_at)
    slack = tuple((None if lo is None else lo - 1e-4, None if hi is None else hi + 1e-4) for lo, hi in problem.bounds)
    assert is_feasible(values, slack)
    assert problem.loss(problem.optimum_at) == pytest.approx(problem.optimum, abs=1e-4)


@pytest.mark.parametrize(("name", "point"), [
    ("gramacy", {"x1": 0.0, "x2": 0.0}),  # the first constraint: 1.5 > 0
    ("gramacy", {"x1": 1.0, "x2": 1.0}),  # the second: 1 + 1 > 1.5
    ("branin-c", {"x1": 9.42478, "x2": 2.475}),  # one of Branin's minima, outside the disk
    ("hartmann6-c", {f"x{i}": v for i, v in enumerate([0.20169, 0.150011, 0.476874, 0.275332, 0.311652,
                                                       0.6573])}),  # the unconstrained optimum, ‖x‖₁ = 2.07
    ("digits-size", {"trees": 8, "depth": 8, "max_features": 0.3, "min_leaf": 1}),  # 64 > 60
])
def test_a_point_that_breaks_a_bound_is_infeasible(name: str, point: dict[str, Any]) -> None:
    problem = PROBLEMS[name]
    assert not is_feasible(problem.constraints(point), problem.bounds)


def test_a_missing_value_is_infeasible() -> None:
    assert not is_feasible([None], ((None, 1.0),))
    assert is_feasible([0.5], ((0.0, 1.0),))
    assert not is_feasible([-0.5], ((0.0, None),))


def record(optimizer: str, seed: int, losses: list[float], feasible: list[bool]) -> dict[str, Any]:
    return {"problem": "gramacy", "optimizer": optimizer, "seed": seed, "rounds": 2, "batch": 2, "losses": losses,
            "constraints": [[0.0, 0.0]] * len(losses), "feasible": feasible, "suggest_s": 0.0}


def test_a_run_without_a_feasible_point_has_an_infinite_best_and_the_lowest_score() -> None:
    nothing = record("bayes", 0, [0.5, 0.6, 0.7, 0.8], [False] * 4)
    assert best_feasible(nothing) == math.inf
    results = [nothing, record("bayes", 1, [0.9, 0.6, 0.7, 0.8], [True, False, True, False]),
               record("random", 0, [1.2, 1.0, 1.1, 1.3], [True] * 4),
               record("random", 1, [1.4, 1.2, 1.1, 1.3], [True, True, False, True])]
    rows = {r.optimizer: r for r in summarize(results)}
    bayes, rand = rows["bayes"], rows["random"]
    assert bayes.found_feasible == 0.5 and bayes.feasible_evals == 0.25
    assert bayes.mean_best == math.inf and bayes.worst_best == math.inf
    assert rand.mean_best == pytest.approx(1.1) and rand.worst_best == pytest.approx(1.2)
    # f* = 0.599788 (known), f_rand = median(1.0, 1.2) = 1.1: random's runs score +20 and −20 (mean 0);
    # the seed without a feasible point scores the problem's lowest, −20
    scale = 1.1 - 0.599788
    assert rand.score == pytest.approx(0.0, abs=1e-9)
    expected = (100 * (1 - (0.7 - 0.599788) / scale) + 100 * (1 - (1.2 - 0.599788) / scale)) / 2
    assert bayes.score == pytest.approx(expected)


def test_a_tiny_random_run_makes_a_full_record() -> None:
    r = run_one("gramacy", "random", seed=3, rounds=2, batch=2)
    assert {"problem", "optimizer", "seed", "rounds", "batch", "losses", "constraints", "feasible",
            "suggest_s"} <= r.keys()
    assert (r["problem"], r["optimizer"], r["seed"], r["rounds"], r["batch"]) == ("gramacy", "random", 3, 2, 2)
    assert len(r["losses"]) == len(r["constraints"]) == len(r["feasible"]) == 4
    assert all(len(c) == 2 for c in r["constraints"])
    assert r["feasible"] == [is_feasible(c, PROBLEMS["gramacy"].bounds) for c in r["constraints"]]
    assert r["suggest_s"] >= 0.0
