"""The early-stopping rules on hand-made learning curves: who stops, at which step, and why."""

from __future__ import annotations

from typing import Any

import pytest

from kubetune.api import CurvePoint, EarlyStopping, Objective, Rung, TrialPhase, TrialReason
from kubetune.stopping import plan_stops, rung_points
from tests.unit.factories import trial

MAXIMIZE = Objective(metric="acc", goal="maximize")
MINIMIZE = Objective(metric="loss", goal="minimize")
R, S, E = TrialPhase.RUNNING, TrialPhase.SUCCEEDED, TrialPhase.EARLY_STOPPED


def curve(values: list[float | None] | dict[int, float | None], metric: str = "acc") -> list[CurvePoint]:
    """Points at steps 1, 2, … (a list) or at the steps given (a dict); None: a non-finite report."""
    items = values.items() if isinstance(values, dict) else enumerate(values, start=1)
    return [CurvePoint(step=s, metrics={metric: v} if v is not None else {}, non_finite=[] if v is not None
                       else [metric]) for s, v in items]


def trials(*curves: tuple[TrialPhase, list[CurvePoint]]) -> list[Any]:
    return [trial(i, phase, value=0.5 if phase is S else None, curve=points)
            for i, (phase, points) in enumerate(curves)]


def median(**settings: Any) -> EarlyStopping:
    return EarlyStopping.model_validate({"rule": "median", "minTrials": 3, **settings})


def asha(**settings: Any) -> EarlyStopping:
    return EarlyStopping.model_validate({"rule": "asha", "minSteps": 1, "maxSteps": 9, "reductionFactor": 3,
                                         "minTrials": 3, **settings})


def stopped(settings: EarlyStopping, objective: Objective, ts: list[Any]) -> dict[str, int]:
    """trial name → the step it is stopped at."""
    return {s.trial: s.step for s in plan_stops(settings, objective, ts).stop}


# (case, settings, objective, trials (phase, curve)..., expected {trial: step})
MEDIAN_CASES = [
    ("behind the median of the others' running averages",
     median(), MAXIMIZE, [(S, curve([0.5, 0.6, 0.7])), (S, curve([0.4, 0.5, 0.6])), (R, curve([0.1, 0.2]))],
     {"exp-2": 2}),
    ("ahead of the median goes on",
     median(), MAXIMIZE, [(S, curve([0.5, 0.6])), (S, curve([0.4, 0.5])), (R, curve([0.3, 0.7]))], {}),
    # running averages at step 2: 0.55 and 0.45 → median 0.5; best so far 0.5 ties it
    ("a tie with the median goes on",
     median(), MAXIMIZE, [(S, curve([0.5, 0.6])), (S, curve([0.4, 0.5])), (R, curve([0.2, 0.5]))], {}),
    ("best so far counts, not the last value",
     median(), MAXIMIZE, [(S, curve([0.5, 0.6])), (S, curve([0.4, 0.5])), (R, curve([0.9, 0.1]))], {}),
    ("fewer than minTrials trials at the step: not compared",
     median(minTrials=4), MAXIMIZE, [(S, curve([0.5, 0.6])), (S, curve([0.4, 0.5])), (R, curve([0.1, 0.1]))], {}),
    ("others that did not get that far do not count",
     median(), MAXIMIZE, [(S, curve([0.9])), (S, curve([0.9])), (R, curve([0.1, 0.1]))], {}),
    ("within the grace period (minSteps) nothing stops",
     median(minSteps=3), MAXIMIZE, [(S, curve([0.5, 0.6])), (S, curve([0.4, 0.5])), (R, curve([0.1, 0.1]))], {}),
    ("minimize: a higher loss is behind",
     median(), MINIMIZE,
     [(S, curve([1.0, 0.8], "loss")), (S, curve([1.2, 0.9], "loss")), (R, curve([2.0, 1.9], "loss"))],
     {"exp-2": 2}),
    ("a NaN in its own curve does not erase its best so far",
     median(), MAXIMIZE, [(S, curve([0.5, 0.6])), (S, curve([0.4, 0.5])), (R, curve([0.6, None]))], {}),
    ("a curve that is all NaN is behind",
     median(), MAXIMIZE, [(S, curve([0.5, 0.6])), (S, curve([0.4, 0.5])), (R, curve([None, None]))], {"exp-2": 2}),
    ("a NaN in another's curve makes its average the worst",
     median(), MAXIMIZE, [(S, curve([None, 0.6])), (S, curve([None, 0.5])), (R, curve([0.01, 0.02]))], {}),
    ("missing steps: the others' averages use the points they have up to the step",
     median(), MAXIMIZE, [(S, curve({1: 0.5, 4: 0.8})), (S, curve({2: 0.6, 5: 0.7})), (R, curve({1: 0.1, 4: 0.2}))],
     {"exp-2": 4}),
    ("a trial that reports nothing is never stopped",
     median(), MAXIMIZE, [(S, curve([0.5, 0.6])), (S, curve([0.4, 0.5])), (R, [])], {}),
    ("a trial that reports nothing is no reference",
     median(), MAXIMIZE, [(S, curve([0.5, 0.6])), (S, []), (R, curve([0.1, 0.1]))], {}),
    ("stopped and running trials are references too",
     median(), MAXIMIZE, [(E, curve([0.5, 0.6])), (R, curve([0.4, 0.5, 0.5])), (R, curve([0.1, 0.1]))],
     {"exp-2": 2}),
]


@pytest.mark.parametrize(("case", "settings", "objective", "curves", "expected"), MEDIAN_CASES,
                         ids=[c[0] for c in MEDIAN_CASES])
def test_median_rule(case: str, settings: EarlyStopping, objective: Objective,
                     curves: list[tuple[TrialPhase, list[CurvePoint]]], expected: dict[str, int]) -> None:
    assert stopped(settings, objective, trials(*curves)) == expected


def test_the_median_message_names_the_rule_the_step_and_both_values() -> None:
    ts = trials((S, curve([0.5, 0.6, 0.7])), (S, curve([0.4, 0.5, 0.6])), (R, curve([0.1, 0.2])))
    (stop,) = plan_stops(median(), MAXIMIZE, ts).stop
    assert stop.reason is TrialReason.MEDIAN_RULE
    assert stop.message == ("stopped at step 2 by the median rule: best acc so far 0.2 is worse than 0.5, the median "
                            "of 2 other trials' running averages at step 2")


ASHA_CASES = [
    # rungs 1, 3 (9 is the end); at rung 1 with 3 trials, only the best ⌊3/3⌋ = 1 goes on
    ("not in the top third at the first rung",
     asha(), MAXIMIZE, [(S, curve([0.5] * 9)), (S, curve([0.4] * 9)), (R, curve([0.3]))], {"exp-2": 1}),
    ("the best at the rung goes on",
     asha(), MAXIMIZE, [(S, curve([0.2] * 9)), (S, curve([0.3] * 9)), (R, curve([0.4]))], {}),
    ("a tie with the cutoff goes on",
     asha(), MAXIMIZE, [(S, curve([0.4] * 9)), (S, curve([0.3] * 9)), (R, curve([0.4]))], {}),
    ("with 6 at the rung, the top 2 go on",
     asha(), MAXIMIZE, [(S, curve([v] * 9)) for v in (0.9, 0.1, 0.2, 0.3, 0.4)] + [(R, curve([0.5]))], {}),
    ("with 6 at the rung, the third is out",
     asha(), MAXIMIZE, [(S, curve([v] * 9)) for v in (0.9, 0.8, 0.2, 0.3, 0.4)] + [(R, curve([0.5]))], {"exp-5": 1}),
    ("judged by its value at the rung, not at its latest step",
     asha(), MAXIMIZE, [(S, curve([0.5] * 9)), (S, curve([0.4] * 9)), (R, curve([0.3, 0.99]))], {"exp-2": 2}),
    ("between rungs nothing is decided",
     asha(minSteps=2), MAXIMIZE, [(S, curve([0.5] * 9)), (S, curve([0.4] * 9)), (R, curve([0.3]))], {}),
    ("fewer than minTrials trials at the rung: passes unranked",
     asha(minTrials=4), MAXIMIZE, [(S, curve([0.5] * 9)), (S, curve([0.4] * 9)), (R, curve([0.3]))], {}),
    ("missing steps: its value at the rung is its last point before it",
     asha(), MAXIMIZE, [(S, curve([0.5] * 9)), (S, curve([0.4] * 9)), (R, curve({2: 0.1, 3: 0.9}))], {"exp-2": 3}),
    ("a NaN at the rung is the worst value",
     asha(), MAXIMIZE, [(S, curve([0.2] * 9)), (S, curve([0.1] * 9)), (R, curve([None]))], {"exp-2": 1}),
    ("a trial that reports nothing is never stopped",
     asha(), MAXIMIZE, [(S, curve([0.2] * 9)), (S, curve([0.1] * 9)), (R, [])], {}),
]


@pytest.mark.parametrize(("case", "settings", "objective", "curves", "expected"), ASHA_CASES,
                         ids=[c[0] for c in ASHA_CASES])
def test_asha(case: str, settings: EarlyStopping, objective: Objective,
              curves: list[tuple[TrialPhase, list[CurvePoint]]], expected: dict[str, int]) -> None:
    assert stopped(settings, objective, trials(*curves)) == expected


def test_asha_rungs_are_geometric_below_max_steps() -> None:
    assert asha(minSteps=1, maxSteps=27).rungs() == [1, 3, 9]
    assert asha(minSteps=2, maxSteps=27, reductionFactor=2).rungs() == [2, 4, 8, 16]
    assert median().rungs() == []


def test_a_passed_rung_is_recorded_and_never_judged_again() -> None:
    ts = trials((S, curve([0.5] * 9)), (S, curve([0.6] * 9)), (R, curve([0.7, 0.7, 0.7])))
    decision = plan_stops(asha(), MAXIMIZE, ts)
    assert decision.stop == []
    assert decision.rungs == {"exp-2": [Rung(step=1, value=0.7), Rung(step=3, value=0.7)]}
    # later, better trials reach rung 1; the recorded pass stands (asynchronous successive halving)
    ts[2].status.rungs = decision.rungs["exp-2"]
    better = [trial(3 + i, S, value=0.5, curve=curve([v] * 9)) for i, v in enumerate((0.9, 0.95, 0.99))]
    again = plan_stops(asha(), MAXIMIZE, [*ts, *better])
    assert again.stop == [] and again.rungs == {}


def test_the_asha_message_names_the_rung_step_value_and_cutoff() -> None:
    ts = trials((S, curve([0.5] * 9)), (S, curve([0.4] * 9)), (R, curve([0.3, 0.2])))
    (stop,) = plan_stops(asha(), MAXIMIZE, ts).stop
    assert stop.reason is TrialReason.ASHA_RUNG
    assert stop.message == ("stopped at rung 1 (step 2) by asha: acc 0.3 at step 1 is not in the top 1 of the 3 trials "
                            "that reached it (cutoff 0.5, reductionFactor 3)")


def test_only_running_trials_without_a_stop_pending_are_judged() -> None:
    from kubetune.api import StopRequest

    ts = trials((S, curve([0.5] * 9)), (S, curve([0.4] * 9)), (R, curve([0.3])), (E, curve([0.1])))
    ts[2].status.stop = StopRequest(phase=E, reason=TrialReason.ASHA_RUNG, message="m", time="2026-01-01T00:00:00Z")
    assert plan_stops(asha(), MAXIMIZE, ts).stop == []
    assert plan_stops(None, MAXIMIZE, ts).stop == []


def test_thinning_keeps_the_points_rungs_are_judged_by() -> None:
    settings = asha(minSteps=1, maxSteps=81)  # rungs 1, 3, 9, 27
    assert rung_points(settings, [1, 2, 4, 8, 10, 30]) == {1, 2, 8, 10}
    assert rung_points(median(), [1, 2, 3]) == set()


def test_a_rung_passed_unranked_is_judged_once_enough_trials_reached_it() -> None:
    # the first trial meets no rival at rung 1 and goes on, unranked
    first = trials((R, curve([0.1, 0.1])))
    decision = plan_stops(asha(), MAXIMIZE, first)
    assert decision.rungs == {"exp-0": [Rung(step=1, value=0.1, ranked=False)]} and decision.stop == []
    first[0].status.rungs = decision.rungs["exp-0"]
    # two better trials reach rung 1 later: now it is ranked there, and it is not in the top third
    later = [*first, trial(1, S, value=0.5, curve=curve([0.5] * 9)), trial(2, S, value=0.6, curve=curve([0.6] * 9))]
    (stop,) = plan_stops(asha(), MAXIMIZE, later).stop
    assert (stop.trial, stop.step) == ("exp-0", 2) and stop.message.startswith("stopped at rung 1 (step 2)")


def test_an_unranked_pass_that_holds_up_becomes_ranked() -> None:
    ts = [trial(0, R, curve=curve([0.9, 0.9]), rungs=[Rung(step=1, value=0.9, ranked=False)]),
          trial(1, S, value=0.5, curve=curve([0.2] * 9)), trial(2, S, value=0.5, curve=curve([0.3] * 9))]
    decision = plan_stops(asha(), MAXIMIZE, ts)
    assert decision.stop == [] and decision.rungs["exp-0"] == [Rung(step=1, value=0.9, ranked=True)]


def test_the_first_wave_is_ranked_among_itself_once_minTrials_trials_reached_the_rung() -> None:
    # three trials started together: with minTrials 3 (the one judged included), rung 1 ranks them
    first_wave = trials((R, curve([0.3])), (R, curve([0.5])), (R, curve([0.4])))
    decision = plan_stops(asha(), MAXIMIZE, first_wave)
    assert sorted(s.trial for s in decision.stop) == ["exp-0", "exp-2"]
    assert decision.rungs["exp-1"] == [Rung(step=1, value=0.5, ranked=True)]
