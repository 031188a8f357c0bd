"""bench/conditional.py: the synthetic optimum, trials get only their active parameters, a run record."""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from bench.conditional import BRANCHES, DIGITS, KubetuneAdapter, branches, report, run, run_one

from kubetune.api import Params
from kubetune.space import Space


def test_the_synthetic_optimum_is_zero_in_the_branin_branch_and_nothing_is_lower() -> None:
    for x1, x2 in [(-math.pi, 12.275), (math.pi, 2.275), (9.42478, 2.475)]:
        assert branches({"model": "branin", "bx1": x1, "bx2": x2}) == pytest.approx(0.0, abs=1e-5)
    assert branches({"model": "quad", "qx": 0.7, "qy": 0.2}) == pytest.approx(1.0)
    assert branches({"model": "flat", "fc": 0.01, "fn": 20}) == pytest.approx(2.4)
    space = Space(BRANCHES.parameters)
    rng = np.random.default_rng(0)
    points = [space.project(p) for p in space.from_unit(rng.random((3000, space.dim)))]
    values = [branches(p) for p in points]
    assert min(values) >= -1e-9
    by_branch = {b: min(v for p, v in zip(points, values, strict=True) if p["model"] == b) for b in BRANCHES.branches}
    assert by_branch["flat"] >= 2.4 - 1e-9 and by_branch["quad"] >= 1.0 and by_branch["branin"] < 0.1


def test_the_harness_evaluates_only_projected_assignments_and_tells_them_back_validated() -> None:
    seen: list[Params] = []

    def spy(p: Params) -> float:
        seen.append(dict(p))
        return branches(p)

    space = Space(BRANCHES.parameters)
    optimizer = KubetuneAdapter(BRANCHES.parameters, 0, "random")
    record = run(replace(BRANCHES, loss=spy), optimizer, rounds=4, batch=3)
    assert len(seen) == 12 and record["params"] == seen
    for p in seen:  # random proposes full vectors; an inactive parameter never reaches the objective
        assert set(p) == space.active(p) and len(p) == 3, p
    assert {p["model"] for p in seen} == {"quad", "branin", "flat"}
    # what the suggester is told is the projection, filled back where inactive (as suggester_view does)
    assert [o.params for o in optimizer.observations] == [space.validate(p) for p in seen]
    assert [o.loss for o in optimizer.observations] == record["losses"] and optimizer.pending == []


def test_a_tiny_random_run_records_losses_branches_and_timing_and_reports_them() -> None:
    record = run_one("branches", "random", 0, 2, 3)
    assert set(record) == {"problem", "optimizer", "seed", "rounds", "batch", "losses", "branches", "params",
                           "suggest_s"}
    assert len(record["losses"]) == len(record["branches"]) == 6 and record["suggest_s"] >= 0
    assert record["branches"] == [p["model"] for p in record["params"]]
    again = run_one("branches", "random", 0, 2, 3)
    assert again["losses"] == record["losses"]  # seeded
    text = report([record, {**run_one("branches", "random", 1, 2, 3)}])
    assert "| random | 2 |" in text and "quad/branin/flat" in text


def test_optuna_is_imported_only_by_its_adapter() -> None:
    code = ("import sys; from bench.conditional import run_one; run_one('branches', 'random', 0, 1, 2); "
            "assert 'optuna' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


def test_the_model_choice_space_is_conditional_on_the_model() -> None:
    space = Space(DIGITS.parameters)
    assert space.active({"model": "svm"}) == {"model", "C", "gamma"}
    assert space.active({"model": "forest"}) == {"model", "n_estimators", "max_depth"}
    assert space.active({"model": "mlp"}) == {"model", "alpha", "hidden"}
