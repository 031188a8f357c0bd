"""Several objectives: the Pareto front in the status, the metrics a trial must report, random scalarizations."""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import numpy as np
import pytest

from kubetune.api import MAX_PARETO_FRONT, MetricsSource, Objective, Params, TrialPhase
from kubetune.lifecycle import pareto_front, plan
from kubetune.metrics import harvest
from kubetune.pareto import crowding_distance, dominates, non_dominated, spread
from kubetune.space import Space
from kubetune.suggest import Observation, SuggestRequest, get_suggester
from kubetune.suggest.multiobjective import scalarize, weights
from tests.unit.factories import experiment, trial

NOW = "2026-01-01T00:00:00Z"
TWO = {"metric": "accuracy", "goal": "maximize", "additionalObjectives": [{"metric": "latency", "goal": "minimize"}]}


@pytest.mark.parametrize(("points", "front"), [
    ([(1, 2), (2, 1), (2, 2)], [0, 1]),                 # (2, 2) is dominated by both
    ([(1, 1), (1, 1), (0, 2)], [0, 1, 2]),              # equal points: neither beats the other
    ([(3, 3)], [0]),
    ([(1, 2, 3), (2, 1, 3), (3, 3, 0), (3, 3, 3)], [0, 1, 2]),
    ([(0, 0), (1, 1), (0, 1)], [0]),                    # one point better on every axis
    ([], []),
])
def test_non_dominated(points: list[tuple[float, ...]], front: list[int]) -> None:
    assert non_dominated(points) == front
    for i in front:
        assert not any(dominates(points[j], points[i]) for j in range(len(points)))


def test_spread_keeps_the_ends_and_drops_the_most_crowded() -> None:
    line = [(x, 1 - x) for x in (0.0, 0.1, 0.11, 0.12, 0.5, 0.9, 1.0)]
    assert math.isinf(crowding_distance(line)[0]) and math.isinf(crowding_distance(line)[-1])
    kept = spread(line, 5)
    assert kept[0] == 0 and kept[-1] == 6 and 4 in kept and len(kept) == 5
    assert sum(i in kept for i in (1, 2, 3)) == 1  # the crowded cluster is thinned to one


def two_objective_trials(n: int) -> list[Any]:
    trials = []
    for i in range(n):
        accuracy, latency = 0.5 + 0.4 * i / n, 10.0 + 100.0 * (i / n) ** 2
        t = trial(i, TrialPhase.SUCCEEDED, value=accuracy)
        trials.append(t.model_copy(update={"status": t.status.model_copy(
            update={"metrics": {"accuracy": accuracy, "latency": latency}})}))
    return trials


def test_the_status_keeps_the_front_its_size_and_the_best_on_the_first_objective() -> None:
    trials = two_objective_trials(6)
    dominated = trial(6, TrialPhase.SUCCEEDED, value=0.5)  # as accurate as trial 0 and slower
    dominated = dominated.model_copy(update={"status": dominated.status.model_copy(
        update={"metrics": {"accuracy": 0.5, "latency": 50.0}})})
    failed = trial(7, TrialPhase.FAILED)
    decision = plan(experiment(objective=TWO, maxTrials=8), [*trials, dominated, failed], now=NOW)
    status = decision.status
    assert [p.name for p in status.pareto_front] == [f"exp-{i}" for i in range(6)]
    assert status.pareto_size == 6
    assert status.pareto_front[2].values == {"accuracy": trials[2].status.metrics["accuracy"],
                                             "latency": trials[2].status.metrics["latency"]}
    assert status.best_trial is not None and status.best_trial.name == "exp-5"  # the most accurate


def test_a_front_larger_than_the_status_holds_is_thinned_and_counted() -> None:
    trials = two_objective_trials(MAX_PARETO_FRONT + 20)
    front, size = pareto_front(experiment(objective=TWO, maxTrials=1000), trials)
    assert size == MAX_PARETO_FRONT + 20 and len(front) == MAX_PARETO_FRONT
    assert front[0].name == "exp-0" and front[-1].name == f"exp-{MAX_PARETO_FRONT + 19}"  # the ends stay


def test_one_objective_has_no_front() -> None:
    assert pareto_front(experiment(), two_objective_trials(3)) == ([], None)


def test_a_trial_must_report_every_objective() -> None:
    objective = Objective.model_validate(TWO)
    outcome = harvest(objective=objective, source=MetricsSource.TERMINATION_MESSAGE, exit_code=0,
                      report='{"accuracy": 0.9}', output="")
    assert not outcome.succeeded and outcome.reason.value == "ObjectiveMissing"
    assert "objective metric 'latency' was not reported in the final report" in outcome.message
    done = harvest(objective=objective, source=MetricsSource.TERMINATION_MESSAGE, exit_code=0,
                   report='{"accuracy": 0.9, "latency": 12}', output="")
    assert done.succeeded and done.metrics == {"accuracy": 0.9, "latency": 12.0}
    assert objective.losses(done.metrics) == (-0.9, 12.0)


@pytest.mark.parametrize(("objective", "words"), [
    ({**TWO, "additionalObjectives": [{"metric": "accuracy", "goal": "minimize"}]}, "must not repeat"),
    ({**TWO, "additionalMetrics": ["latency"]}, "must not repeat the objective metric or an additionalMetrics"),
    ({**TWO, "additionalObjectives": [{"metric": "a", "goal": "minimize"}] * 2}, "each metric once"),
    ({**TWO, "additionalObjectives": [{"metric": f"m{i}", "goal": "minimize"} for i in range(4)]}, "at most 3"),
])
def test_bad_additional_objectives_are_refused(objective: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        Objective.model_validate(objective)


def request_of(observations: list[Observation], start: int, seed: int = 1) -> SuggestRequest:
    space = Space(experiment(parameters=[{"name": "x", "type": "double", "min": 0.0, "max": 1.0}]).spec.parameters)
    return SuggestRequest(space=space, observations=observations, pending=[], n=1, seed=seed, start_index=start)


def test_scalarization_is_a_fixed_function_of_the_request_and_its_weights_lie_on_the_simplex() -> None:
    observations = [Observation({"x": x}, x, ((1 - x) * 10,)) for x in (0.0, 0.5, 1.0)]
    one, again = scalarize(request_of(observations, 3)), scalarize(request_of(observations, 3))
    assert one.observations == again.observations
    w = weights(request_of(observations, 3), 2)
    assert w.sum() == pytest.approx(1.0) and (w >= 0).all()
    assert not np.allclose(w, weights(request_of(observations, 4), 2))
    assert all(not o.losses for o in one.observations)
    single = [Observation({"x": 0.2}, 0.2)]
    assert scalarize(request_of(single, 0)).observations == single  # one objective: untouched


@pytest.mark.parametrize("algorithm", ["bayes", "tpe"])
def test_with_two_conflicting_objectives_the_suggestions_cover_the_front(algorithm: str) -> None:
    """f1 = x², f2 = (x − 1)²: every x in [0, 1] is on the front. One objective would crowd x near 0."""
    observations: list[Observation] = []
    suggester = get_suggester(algorithm)
    for i in range(30):
        (params,) = suggester.suggest(request_of(observations, i, seed=5)).params
        x = float(params["x"])
        observations.append(Observation(params, x * x, ((x - 1) ** 2,)))
    late = [float(o.params["x"]) for o in observations[10:]]
    assert min(late) < 0.3 and max(late) > 0.7, sorted(late)
    assert sum(0.2 < x < 0.8 for x in late) >= 3, sorted(late)


@pytest.mark.parametrize("method", ["parego", "mixed"])
def test_a_batch_of_bayes_is_suggested_slot_by_slot_as_qparego_does(method: str) -> None:
    """A batch for trials 12..15 is what four one-trial requests (the earlier slots pending) get,
    and it spreads along the front where one weight vector for the batch would pile it up."""
    observations = [Observation({"x": x}, x * x, ((x - 1) ** 2,)) for x in np.linspace(0.0, 1.0, 12)]
    batch = dataclasses.replace(request_of(observations, 12, seed=3), n=4, settings={"multiObjective": method})
    bayes = get_suggester("bayes")
    together = bayes.suggest(batch).params
    alone: list[Params] = []
    for j in range(4):
        one = dataclasses.replace(request_of(observations, 12 + j, seed=3), pending=list(alone),
                                  settings={"multiObjective": method})
        alone.extend(bayes.suggest(one).params)
    assert together == alone

    def spread(params: list[Params]) -> float:
        xs = [float(p["x"]) for p in params]
        return max(xs) - min(xs)

    one_weight = bayes.suggest(scalarize(batch)).params  # the whole batch under one scalarization
    assert spread(together) > 0.2 and spread(together) > 5 * spread(one_weight), (together, one_weight)


def test_ehvi_chooses_a_batch_that_spreads_along_the_front_and_mixed_takes_turns() -> None:
    """f1 = x², f2 = (x − 1)², observed at the two ends and the middle: the improvement lies in
    the gaps, and each point of a batch, once believed, leaves less of it for the next."""
    observations = [Observation({"x": x}, x * x, ((x - 1) ** 2,)) for x in (0.0, 0.02, 0.5, 0.98, 1.0)]
    bayes = get_suggester("bayes")
    request = dataclasses.replace(request_of(observations, 20, seed=2), n=2, settings={"multiObjective": "ehvi"})
    first = bayes.suggest(request)
    assert first.params == bayes.suggest(request).params  # the same request, the same batch
    xs = sorted(float(p["x"]) for p in first.params)
    assert len(xs) == 2 and xs[0] < 0.5 < xs[1], xs  # one in each gap, not both in one
    assert set(first.state) == {"thetas"} and len(first.state["thetas"]) == 2  # one GP per objective
    mixed = bayes.suggest(dataclasses.replace(request, settings={"multiObjective": "mixed"}))
    assert {"thetas", "theta", "gains"} <= set(mixed.state)  # trial 20 by hypervolume, 21 by a scalarization


@pytest.mark.parametrize("method", ["mixed", "ehvi", "parego"])
def test_several_objectives_with_failures_a_constraint_and_partial_reports(method: str) -> None:
    """Failed trials (no loss), early-stopped ones (the first loss only) and a constraint: a full
    batch of new points, none repeated, and no fallback to Sobol' (which warns)."""
    observations: list[Observation] = []
    for i, x in enumerate(np.linspace(0.0, 1.0, 16)):
        if i % 4 == 1:
            observations.append(Observation({"x": float(x)}, None))
        elif i % 4 == 2:
            observations.append(Observation({"x": float(x)}, float(x * x), constraints=(float(x),)))
        else:
            observations.append(Observation({"x": float(x)}, float(x * x), ((float(x) - 1) ** 2,),
                                            constraints=(float(x),)))
    request = dataclasses.replace(request_of(observations, 16, seed=4), n=4, constraints=[(None, 0.8)],
                                  settings={"multiObjective": method})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the model's fallback warns: it must not be needed
        params = get_suggester("bayes").suggest(request).params
    keys = {round(float(p["x"]), 8) for p in params}
    assert len(params) == 4 and len(keys) == 4
    assert not keys & {round(float(o.params["x"]), 8) for o in observations}


def test_tpe_ranks_observations_by_fronts_as_motpe_does() -> None:
    from kubetune.suggest.multiobjective import pareto_order

    observations = [Observation({"x": 0.1}, 3.0, (3.0,)),   # second front
                    Observation({"x": 0.2}, 1.0, (4.0,)),   # first front (an end)
                    Observation({"x": 0.3}, 4.0, (1.0,)),   # first front (an end)
                    Observation({"x": 0.4}, 2.0, (2.0,)),   # first front (the middle)
                    Observation({"x": 0.5}, None)]          # failed: stays failed
    ranked = pareto_order(request_of(observations, 5)).observations
    places = [o.loss for o in ranked]
    assert places[4] is None and all(not o.losses for o in ranked)
    first = {1, 2, 3}
    assert max(places[i] for i in first) < places[0]  # type: ignore[type-var]
    assert places[3] == 2.0  # the middle of the first front is its most crowded point


def test_a_tie_on_the_first_objective_goes_to_the_trial_on_the_front() -> None:
    trials = two_objective_trials(2)
    for t, latency in zip(trials, (50.0, 20.0), strict=True):  # same accuracy; the later one is faster
        t.status.objective_value = 0.9
        t.status.metrics.update({"accuracy": 0.9, "latency": latency})
    status = plan(experiment(objective=TWO, maxTrials=2), trials, now=NOW).status
    assert [p.name for p in status.pareto_front] == ["exp-1"]
    assert status.best_trial is not None and status.best_trial.name == "exp-1"
