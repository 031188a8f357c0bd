"""The pure plan: which trials start, how the experiment's status is recomputed, when and why it ends."""

from __future__ import annotations

from typing import Any

import pytest

from kubetune.api import ConditionStatus, ExperimentPhase, Trial, TrialPhase, TrialStatus
from kubetune.lifecycle import plan, spec_problems
from kubetune.priors import PriorSource
from tests.unit.factories import experiment, trial

NOW = "2026-01-01T00:00:00Z"
LATER = "2026-01-01T00:05:00Z"

S, F, R, P, K, E = (TrialPhase.SUCCEEDED, TrialPhase.FAILED, TrialPhase.RUNNING, TrialPhase.PENDING,
                    TrialPhase.KILLED, TrialPhase.EARLY_STOPPED)


def trials_of(*phases: TrialPhase, values: list[float] | None = None) -> list[Any]:
    values = values or [0.5 + i / 100 for i in range(len(phases))]
    return [trial(i, phase, value=values[i] if phase is S else None) for i, phase in enumerate(phases)]


# (spec overrides, trial phases, created indexes, phase, ending reason or None)
CASES = [
    ("fresh experiment starts parallelTrials", {}, [], [0, 1], ExperimentPhase.RUNNING, None),
    ("a free slot is filled", {}, [S, R], [2], ExperimentPhase.RUNNING, None),
    ("no slot free", {}, [R, P], [], ExperimentPhase.RUNNING, None),
    ("budget caps the batch", {"maxTrials": 3}, [S, S], [2], ExperimentPhase.RUNNING, None),
    ("budget spent, trials still running", {"maxTrials": 3}, [S, S, R], [], ExperimentPhase.RUNNING, None),
    ("budget spent and all done", {"maxTrials": 3}, [S, F, S], [], ExperimentPhase.SUCCEEDED, "MaxTrialsReached"),
    ("all failed", {"maxTrials": 2}, [F, F], [], ExperimentPhase.FAILED, "NoSuccessfulTrial"),
    ("too many failures", {"maxFailedTrials": 1}, [F, F, R], [], ExperimentPhase.FAILED, "TooManyFailedTrials"),
    ("failures within the limit", {"maxFailedTrials": 2}, [F, F], [2, 3], ExperimentPhase.RUNNING, None),
    ("suspended", {"suspend": True}, [S, R], [], ExperimentPhase.SUSPENDED, None),
    ("raising maxTrials continues a finished experiment", {"maxTrials": 5}, [S, S, S], [3, 4],
     ExperimentPhase.RUNNING, None),
    ("killed trials count toward the budget", {"maxTrials": 2}, [S, K], [], ExperimentPhase.SUCCEEDED,
     "MaxTrialsReached"),
    ("early-stopped trials count toward the budget, not toward the failures", {"maxTrials": 3, "maxFailedTrials": 0},
     [E, E, S], [], ExperimentPhase.SUCCEEDED, "MaxTrialsReached"),
    ("only stopped trials: none succeeded", {"maxTrials": 2}, [E, E], [], ExperimentPhase.FAILED, "NoSuccessfulTrial"),
]


@pytest.mark.parametrize(("spec", "phases", "created", "phase", "reason"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_plan(spec: dict[str, Any], phases: list[TrialPhase], created: list[int], phase: ExperimentPhase,
              reason: str | None) -> None:
    decision = plan(experiment(**spec), trials_of(*phases), now=NOW)
    assert [t.index for t in decision.create] == created
    assert [t.name for t in decision.create] == [f"exp-{i}" for i in created]
    assert decision.status.phase is phase
    if reason:
        condition = next(c for c in decision.status.conditions if c.type == phase.value)
        assert (condition.status, condition.reason) == (ConditionStatus.TRUE, reason)
        assert decision.status.completion_time == NOW
    else:
        assert decision.status.completion_time is None


def test_counts_progress_and_best_are_recomputed_from_the_trials() -> None:
    trials = trials_of(S, S, F, R, K, values=[0.7, 0.9, 0, 0, 0])
    status = plan(experiment(maxTrials=10), trials, now=NOW).status
    counts = status.trials
    assert (counts.created, counts.succeeded, counts.failed, counts.running, counts.killed) == (5, 2, 1, 1, 1)
    assert status.progress == "4/10"  # finished: succeeded, failed and killed alike
    assert status.best_trial is not None
    assert (status.best_trial.name, status.best_trial.objective_value) == ("exp-1", 0.9)


def test_best_of_a_minimized_objective_is_the_lowest() -> None:
    exp = experiment(objective={"metric": "loss", "goal": "minimize"})
    status = plan(exp, trials_of(S, S, S, values=[0.3, 0.1, 0.2]), now=NOW).status
    assert status.best_trial is not None and status.best_trial.name == "exp-1"


def test_reaching_the_target_ends_the_experiment_and_stops_running_trials() -> None:
    exp = experiment(objective={"metric": "accuracy", "goal": "maximize", "target": 0.95}, maxTrials=10)
    decision = plan(exp, trials_of(S, R, P, values=[0.97, 0, 0]), now=NOW)
    assert decision.status.phase is ExperimentPhase.SUCCEEDED
    assert decision.kill == ["exp-1", "exp-2"]
    assert decision.create == []
    succeeded = next(c for c in decision.status.conditions if c.type == "Succeeded")
    assert succeeded.reason == "GoalReached" and "exp-0" in succeeded.message


def test_new_indexes_continue_after_the_highest_even_with_gaps() -> None:
    trials = [trial(0), trial(5, R)]
    assert [t.index for t in plan(experiment(), trials, now=NOW).create] == [6]


def test_same_inputs_same_decision() -> None:
    trials = trials_of(S, F, S)
    first, second = plan(experiment(maxTrials=9), trials, now=NOW), plan(experiment(maxTrials=9), trials, now=NOW)
    assert first == second


def test_condition_transition_time_moves_only_when_the_status_changes() -> None:
    exp = experiment()
    first = plan(exp, trials_of(R), now=NOW).status
    again = plan(exp.model_copy(update={"status": first}), trials_of(R, R), now=LATER).status
    running = next(c for c in again.conditions if c.type == "Running")
    assert running.last_transition_time == NOW
    done = plan(exp.model_copy(update={"status": again}), trials_of(*[S] * 6), now=LATER).status
    running = next(c for c in done.conditions if c.type == "Running")
    assert (running.status, running.last_transition_time) == (ConditionStatus.FALSE, LATER)


def test_observed_generation_is_recorded() -> None:
    exp = experiment()
    exp.metadata.generation = 4
    status = plan(exp, [], now=NOW).status
    assert status.observed_generation == 4
    assert all(c.observed_generation == 4 for c in status.conditions)


def test_events_on_transitions() -> None:
    exp = experiment(maxTrials=2)
    started = plan(exp, [], now=NOW)
    assert [e.reason for e in started.events] == ["TrialCreated", "TrialCreated", "ExperimentRunning"]
    running = exp.model_copy(update={"status": started.status})
    finished = plan(running, trials_of(S, S), now=NOW)
    assert [e.reason for e in finished.events] == ["NewBestTrial", "ExperimentSucceeded"]
    quiet = plan(exp.model_copy(update={"status": finished.status}), trials_of(S, S), now=LATER)
    assert quiet.events == [] and quiet.status == finished.status


def test_a_grid_too_large_for_the_space_fails_the_experiment_with_the_reason() -> None:
    # what the models cannot check (the grid's size depends on the space): the plan ends it InvalidSpec
    many = [{"name": f"x{i}", "type": "double", "min": 0, "max": 1} for i in range(7)]
    exp = experiment(algorithm={"name": "grid", "settings": {"gridPoints": 8}}, parameters=many)
    decision = plan(exp, [trial(0, R, params={f"x{i}": 0.5 for i in range(7)})], now=NOW)
    assert decision.status.phase is ExperimentPhase.FAILED
    failed = next(c for c in decision.status.conditions if c.type == "Failed")
    assert failed.reason == "InvalidSpec" and "the grid has 2097152 points" in failed.message
    assert decision.kill == ["exp-0"]
    assert spec_problems(exp) == ["spec.algorithm: algorithm 'grid': the grid has 2097152 points, more than 1000000"]


def test_grid_exhaustion_ends_the_experiment() -> None:
    exp = experiment(
        maxTrials=50, parallelTrials=1, algorithm={"name": "grid"},
        parameters=[{"name": "opt", "type": "categorical", "values": ["sgd", "adam"]}],
    )
    trials = [trial(0, params={"opt": "sgd"}), trial(1, params={"opt": "adam"})]
    decision = plan(exp, trials, now=NOW)
    assert decision.create == []
    succeeded = next(c for c in decision.status.conditions if c.type == "Succeeded")
    assert succeeded.reason == "SearchSpaceExhausted"


def test_a_pass_repeated_after_a_crash_proposes_the_same_trials() -> None:
    # two of four created trials were lost with the pass that made them: the next pass makes them again
    exp = experiment(maxTrials=8, parallelTrials=4)
    first = plan(exp, [], now=NOW)
    trials = [trial(t.index, R, params=t.params) for t in first.create]
    second = plan(exp.model_copy(update={"status": first.status}), trials[:2], now=NOW)
    assert [(t.index, t.params) for t in second.create] == [(t.index, t.params) for t in first.create[2:]]


@pytest.mark.parametrize("algorithm", ["random", "sobol", "grid", "tpe", "bayes"])
def test_suggestions_never_repeat_observed_or_pending_points(algorithm: str) -> None:
    exp = experiment(maxTrials=12, parallelTrials=4, algorithm={"name": algorithm, "seed": 3})
    made: list[Trial] = []
    while len(made) < 12:
        decision = plan(exp, made, now=NOW)
        assert decision.create, "a free slot and budget left, but nothing proposed"
        made += [trial(t.index, R, params=t.params) for t in decision.create]
        for t in [t for t in made if t.status.phase is R][:2]:  # two finish, the others stay pending
            t.status = TrialStatus(phase=TrialPhase.SUCCEEDED, objective_value=0.1 * t.spec.index)
    keys = [tuple(sorted(t.spec.params.items())) for t in made]
    assert len(keys) == len(set(keys)) == 12


def test_a_failing_suggester_falls_back_to_random(monkeypatch: pytest.MonkeyPatch) -> None:
    from kubetune.suggest.sobol import SobolSearch

    def explode(self: object, request: object) -> None:
        raise FloatingPointError("boom")

    monkeypatch.setattr(SobolSearch, "suggest", explode)
    decision = plan(experiment(algorithm={"name": "sobol"}), [], now=NOW)
    assert len(decision.create) == 2
    assert any(e.reason == "SuggesterFailed" and "boom" in e.message for e in decision.events)


def test_an_unexpected_error_in_planning_ends_the_experiment_with_a_condition(monkeypatch: pytest.MonkeyPatch) -> None:
    import kubetune.lifecycle as lifecycle

    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(lifecycle, "count_trials", broken)
    decision = plan(experiment(), trials_of(R), now=NOW)
    assert decision.status.phase is ExperimentPhase.FAILED
    failed = next(c for c in decision.status.conditions if c.type == "Failed")
    assert failed.reason == "PlanFailed"
    assert "ZeroDivisionError: float division by zero" in failed.message
    assert decision.kill == ["exp-0"] and decision.create == []


def test_a_trial_created_event_reads_the_same_from_what_the_api_server_gives_back() -> None:
    from kubetune.lifecycle import created_event

    sent = {"lr": 0.5, "layers": 3, "opt": "sgd", "decay": 1.0}
    stored = {"decay": 1, "layers": 3, "lr": 0.5, "opt": "sgd"}  # keys sorted, 1.0 became 1 (JSON via Go)
    assert created_event("exp-0", sent) == created_event("exp-0", stored)
    assert created_event("exp-0", sent).message == "trial exp-0 created with decay=1, layers=3, lr=0.5, opt=sgd"



def test_an_early_stopped_trial_counts_in_the_budget_and_time_and_is_never_the_best() -> None:
    from kubetune.api import CurvePoint
    from kubetune.lifecycle import best_trial, count_trials, trial_seconds

    stopped = trial(0, E, curve=[CurvePoint(step=1, metrics={"accuracy": 0.2}),
                                 CurvePoint(step=2, metrics={"accuracy": 0.9})],
                    start_time="2026-01-01T00:00:00Z", completion_time="2026-01-01T00:01:30Z")
    silent = trial(1, E)  # stopped before it reported anything finite
    done = trial(2, S, value=0.25, start_time="2026-01-01T00:00:00Z", completion_time="2026-01-01T00:02:00Z")
    best = best_trial(experiment(maxTrials=4), [stopped, silent, done])
    assert best is not None and best.name == "exp-2"  # 0.9 at step 2 is not a result
    assert count_trials([stopped, silent, done]).early_stopped == 2
    assert trial_seconds([stopped, silent, done]) == 210


# --- initialPoints ------------------------------------------------------------------------------

POINTS = [{"lr": 0.05, "layers": 3, "opt": "adam"}, {"opt": "sgd"}, {"lr": 0.002, "layers": 1, "opt": "sgd"}]


def created_params(spec: dict[str, Any], trials: list[Trial]) -> list[dict[str, Any]]:
    return [t.params for t in plan(experiment(**spec), trials, now=NOW).create]


@pytest.mark.parametrize("algorithm", ["random", "sobol", "bayes", "tpe", "grid"])
def test_initial_points_run_first_in_order_and_partial_ones_are_completed(algorithm: str) -> None:
    spec = {"initialPoints": POINTS, "parallelTrials": 2, "algorithm": {"name": algorithm, "seed": 3}}
    first = created_params(spec, [])
    assert first[0] == POINTS[0]
    assert first[1]["opt"] == "sgd" and set(first[1]) == {"lr", "layers", "opt"}  # completed by the algorithm
    after = [trial(0, S, params=first[0]), trial(1, S, params=first[1])]
    second = created_params(spec, after)
    assert second[0] == POINTS[2]  # trial 2 is the third point, whatever came before
    assert second[1] not in (POINTS[0], POINTS[2]) and len(second) == 2  # then the algorithm alone


def test_initial_points_are_decided_by_the_index_batched_or_one_at_a_time() -> None:
    batched = created_params({"initialPoints": POINTS, "parallelTrials": 3, "maxTrials": 6}, [])
    one_by_one: list[dict[str, Any]] = []
    trials: list[Trial] = []
    for index in range(3):
        (params,) = created_params({"initialPoints": POINTS, "parallelTrials": 1, "maxTrials": 6}, trials)
        one_by_one.append(params)
        trials.append(trial(index, S, params=params))
    assert batched[0] == one_by_one[0] == POINTS[0] and batched[2] == one_by_one[2] == POINTS[2]
    assert batched[1]["opt"] == one_by_one[1]["opt"] == "sgd"


def test_initial_points_count_toward_max_trials() -> None:
    spec = {"initialPoints": POINTS, "maxTrials": 3, "parallelTrials": 1}
    trials = [trial(i, S, params=POINTS[0]) for i in range(3)]
    decision = plan(experiment(**spec), trials, now=NOW)
    assert decision.create == [] and decision.status.phase is ExperimentPhase.SUCCEEDED


def test_a_grid_does_not_repeat_an_initial_point() -> None:
    spec = {"algorithm": {"name": "grid", "settings": {"gridPoints": 2}}, "maxTrials": 8, "parallelTrials": 8,
            "initialPoints": [{"lr": 0.001, "layers": 1, "opt": "sgd"}]}  # the grid's first point
    created = created_params(spec, [])
    keys = [tuple(sorted(p.items())) for p in created]
    assert created[0] == spec["initialPoints"][0] and len(set(keys)) == len(keys) == 8


# --- warmStart ----------------------------------------------------------------------------------

def source_trials(n: int, **params: Any) -> list[Trial]:
    """Finished trials of an earlier experiment ("old") over the factories' space."""
    out = []
    for i in range(n):
        p = {"lr": 0.001 * (i + 1), "layers": 1 + i % 4, "opt": "sgd", **params}
        t = trial(i, S, value=0.5 + i / 100, params=p, name="old")
        metrics = {"accuracy": 0.5 + i / 100}
        out.append(t.model_copy(update={"status": t.status.model_copy(update={"metrics": metrics})}))
    return out


def test_warm_start_observations_feed_the_suggester_and_the_status_but_not_the_budget() -> None:
    spec = {"warmStart": {"experiments": ["old"]}, "algorithm": {"name": "bayes", "seed": 1},
            "maxTrials": 4, "parallelTrials": 1}
    prior = [PriorSource("old", [*source_trials(8), trial(8, F, name="old", params={"lr": 0.01, "layers": 2,
                                                                                     "opt": "adam"})])]
    warm = plan(experiment(**spec), [], now=NOW, prior=prior)
    cold = plan(experiment(**spec), [], now=NOW, prior=[PriorSource("old", [])])
    assert warm.status.warm_start is not None and warm.status.warm_start.observations == 9
    assert [s.model_dump() for s in warm.status.warm_start.sources] == [{"experiment": "old", "observations": 9}]
    assert warm.status.trials.created == 0 and [t.index for t in warm.create] == [0]
    assert warm.create[0].params != cold.create[0].params  # no Sobol' design: the model already has points
    condition = next(c for c in warm.status.conditions if c.type == "WarmStart")
    assert (condition.status, condition.reason) == (ConditionStatus.TRUE, "SourcesLoaded")
    assert "9 prior observation(s) from old (9)" in condition.message


def test_a_source_trial_counts_only_where_it_fits_the_space() -> None:
    spec = {"warmStart": {"experiments": ["old"]}}
    trials = [*source_trials(2), *source_trials(1, lr=5.0), *source_trials(1, extra=3)]
    trials.append(trial(9, S, params={"lr": 0.01, "layers": 2}, name="old"))  # no opt: it does not fit
    decision = plan(experiment(**spec), [], now=NOW, prior=[PriorSource("old", trials)])
    assert decision.status.warm_start is not None
    assert decision.status.warm_start.observations == 3  # lr=5 is outside the space; an extra parameter is ignored


def test_a_missing_source_is_a_condition_and_one_warning_not_a_crash() -> None:
    spec = {"warmStart": {"experiments": ["old", "gone"]}}
    prior = [PriorSource("old", source_trials(2)), PriorSource("gone", None, "no Experiment gone in namespace ns")]
    first = plan(experiment(**spec), [], now=NOW, prior=prior)
    condition = next(c for c in first.status.conditions if c.type == "WarmStart")
    assert (condition.status, condition.reason) == (ConditionStatus.FALSE, "SourceMissing")
    assert "no Experiment gone in namespace ns" in condition.message and first.create
    assert [e.reason for e in first.events if e.type == "Warning"] == ["WarmStartSourceMissing"]
    assert first.status.warm_start is not None
    assert first.status.warm_start.missing == ["no Experiment gone in namespace ns"]
    again = plan(experiment(**spec).model_copy(update={"status": first.status}), [], now=LATER, prior=prior)
    assert not [e for e in again.events if e.reason == "WarmStartSourceMissing"]  # said once


def test_retries_are_summed_and_a_trial_being_retried_counts_once_and_not_as_failed() -> None:
    trials = [trial(0, S, value=0.6, retries=1), trial(1, P, retries=2), trial(2, F, reason="Disrupted", retries=3)]
    status = plan(experiment(maxTrials=4, parallelTrials=1, maxFailedTrials=1), trials, now=NOW).status
    assert status.retries == 6
    assert (status.trials.created, status.trials.pending, status.trials.failed) == (3, 1, 1)
    assert status.phase is ExperimentPhase.RUNNING


def test_trials_waiting_for_quota_are_counted_and_say_so_in_a_condition() -> None:
    exp = experiment(maxTrials=4, parallelTrials=2)
    waiting = plan(exp, [trial(0, P, queued=True), trial(1, R)], now=NOW)
    assert waiting.create == [] and waiting.status.trials.queued == 1  # parallelTrials holds: queued is active
    condition = next(c for c in waiting.status.conditions if c.type == "Queued")
    assert (condition.status, condition.reason) == (ConditionStatus.TRUE, "WaitingForQuota")
    assert condition.message.startswith("1 of 2 active trial(s) waiting for quota")
    exp.status = waiting.status
    admitted = plan(exp, [trial(0, R), trial(1, R)], now=LATER).status
    condition = next(c for c in admitted.conditions if c.type == "Queued")
    assert (condition.status, condition.reason, condition.last_transition_time) == (
        ConditionStatus.FALSE, "Admitted", LATER)
    assert all(c.type != "Queued" for c in plan(experiment(), [trial(0, R)], now=NOW).status.conditions)
