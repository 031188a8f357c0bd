"""Metric constraints: which trials are feasible, what the status keeps, and how the suggesters use them."""

from __future__ import annotations

from typing import Any

import pytest

from kubetune.api import Constraint, MetricsSource, Objective, TrialPhase
from kubetune.lifecycle import plan
from kubetune.metrics import harvest
from kubetune.space import Space
from kubetune.suggest import Observation, SuggestRequest, get_suggester
from kubetune.suggest.tpe import infeasible_last
from tests.unit.factories import experiment, trial

NOW = "2026-01-01T00:00:00Z"
CONSTRAINED = {"metric": "accuracy", "goal": "maximize", "constraints": [{"metric": "model_mb", "max": 50}]}


@pytest.mark.parametrize(("bounds", "value", "violation"), [
    ({"max": 50}, 49.0, None), ({"max": 50}, 50.0, None), ({"max": 50}, 61.2, "model_mb=61.2 above max 50"),
    ({"min": 1, "max": 2}, 0.5, "model_mb=0.5 below min 1"), ({"min": 1}, 7.0, None),
])
def test_a_constraint_names_how_a_value_breaks_it(bounds: dict[str, float], value: float,
                                                   violation: str | None) -> None:
    assert Constraint(metric="model_mb", **bounds).violation(value) == violation


@pytest.mark.parametrize(("objective", "words"), [
    ({**CONSTRAINED, "constraints": [{"metric": "model_mb"}]}, "a constraint needs min or max"),
    ({**CONSTRAINED, "constraints": [{"metric": "model_mb", "min": 3, "max": 2}]}, "min must not exceed its max"),
    ({**CONSTRAINED, "constraints": [{"metric": "accuracy", "max": 2}]}, "must not be on an objective metric"),
    ({**CONSTRAINED, "constraints": [{"metric": "m", "max": 2}, {"metric": "m", "min": 0}]}, "each metric once"),
])
def test_bad_constraints_are_refused(objective: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        Objective.model_validate(objective)


def test_a_trial_that_breaks_a_constraint_succeeds_and_says_it_is_infeasible() -> None:
    objective = Objective.model_validate(CONSTRAINED)
    outcome = harvest(objective=objective, source=MetricsSource.TERMINATION_MESSAGE, exit_code=0,
                      report='{"accuracy": 0.93, "model_mb": 61.2}', output="")
    assert outcome.succeeded and outcome.message == "accuracy=0.93; infeasible: model_mb=61.2 above max 50"
    assert objective.violations({"accuracy": 0.9}) == ["model_mb not reported"]


def with_metrics(index: int, accuracy: float, model_mb: float | None, phase: TrialPhase = TrialPhase.SUCCEEDED) -> Any:
    t = trial(index, phase, value=accuracy if phase is TrialPhase.SUCCEEDED else None)
    metrics = {"accuracy": accuracy} | ({} if model_mb is None else {"model_mb": model_mb})
    return t.model_copy(update={"status": t.status.model_copy(update={"metrics": metrics})})


def test_the_best_trial_and_the_front_are_feasible_and_the_infeasible_are_counted() -> None:
    trials = [with_metrics(0, 0.80, 10), with_metrics(1, 0.95, 80), with_metrics(2, 0.85, 49),
              with_metrics(3, 0.99, None)]
    status = plan(experiment(objective=CONSTRAINED, maxTrials=4), trials, now=NOW).status
    assert status.best_trial is not None and status.best_trial.name == "exp-2"
    assert status.trials.infeasible == 2 and status.trials.succeeded == 4
    two = {**CONSTRAINED, "additionalObjectives": [{"metric": "latency", "goal": "minimize"}]}
    for t, latency in zip(trials, (1.0, 0.1, 2.0, 0.1), strict=True):
        t.status.metrics["latency"] = latency
    front = plan(experiment(objective=two, maxTrials=4), trials, now=NOW).status.pareto_front
    assert [p.name for p in front] == ["exp-0", "exp-2"]  # exp-1 and exp-3 would dominate, but break the limit


def test_an_experiment_whose_every_trial_breaks_a_constraint_has_no_best_and_fails() -> None:
    status = plan(experiment(objective=CONSTRAINED, maxTrials=2), [with_metrics(0, 0.9, 70), with_metrics(1, 0.8, 90)],
                  now=NOW).status
    assert status.best_trial is None and status.phase.value == "Failed"
    failed = next(c for c in status.conditions if c.type == "Failed")
    assert "none succeeded (or kept the constraints)" in failed.message


def disk_request(observations: list[Observation], start: int) -> SuggestRequest:
    space = Space(experiment(parameters=[{"name": "x", "type": "double", "min": 0.0, "max": 1.0},
                                         {"name": "y", "type": "double", "min": 0.0, "max": 1.0}]).spec.parameters)
    return SuggestRequest(space=space, observations=observations, pending=[], n=1, seed=2, start_index=start,
                          constraints=[(None, 0.1)])


def test_bayes_models_the_constraint_and_searches_where_it_holds() -> None:
    """Minimize x + y on the disk (x − ½)² + (y − ½)² ≤ 0.1: the free minimum (0, 0) breaks the constraint;
    the constrained one is 1 − √0.2 ≈ 0.553, on the disk's edge."""
    observations: list[Observation] = []
    bayes = get_suggester("bayes")
    for i in range(24):
        (params,) = bayes.suggest(disk_request(observations, i)).params
        x, y = float(params["x"]), float(params["y"])
        observations.append(Observation(params, x + y, constraints=((x - 0.5) ** 2 + (y - 0.5) ** 2,)))
    request = disk_request(observations, 24)
    late = observations[12:]
    assert sum(request.feasible(o) for o in late) >= 8, [o.constraints for o in late]
    best = min(o.loss for o in observations if request.feasible(o) and o.loss is not None)
    assert best < 0.7, best


def test_tpe_ranks_infeasible_trials_behind_every_feasible_one_by_how_far_they_break_it() -> None:
    observations = [Observation({"x": 0.1, "y": 0.1}, 0.2, constraints=(0.3,)),   # best loss, infeasible
                    Observation({"x": 0.5, "y": 0.5}, 1.0, constraints=(0.0,)),
                    Observation({"x": 0.6, "y": 0.6}, 1.2, constraints=(0.02,)),
                    Observation({"x": 0.0, "y": 0.0}, 0.0, constraints=(0.5,)),   # better still, further out
                    Observation({"x": 0.9, "y": 0.1}, None)]
    moved = infeasible_last(disk_request(observations, 5)).observations
    assert [o.loss for o in moved[1:3]] == [1.0, 1.2] and moved[4].loss is None
    assert moved[0].loss is not None and moved[3].loss is not None
    assert 1.2 < moved[0].loss < moved[3].loss  # 0.2 over the bound ranks before 0.4 over it
