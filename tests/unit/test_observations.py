"""What the suggester is told: one fidelity at a time when trials stop early (BOHB's rule)."""

from __future__ import annotations

from typing import Any

from kubetune.api import CurvePoint, TrialPhase
from kubetune.observations import levels, suggester_view
from kubetune.space import Space
from tests.unit.factories import experiment, trial

S, F, R, E = TrialPhase.SUCCEEDED, TrialPhase.FAILED, TrialPhase.RUNNING, TrialPhase.EARLY_STOPPED
ASHA = {"rule": "asha", "minSteps": 1, "maxSteps": 9, "reductionFactor": 3, "minTrials": 1}
ONE = [{"name": "lr", "type": "double", "min": 0.001, "max": 0.1, "scale": "log"}]  # d = 1: 3 trials are enough


def grown(index: int, phase: TrialPhase, values: list[float], final: float | None = None) -> Any:
    lr = 0.001 * (index + 1)
    return trial(index, phase, value=final, params={"lr": lr},
                 curve=[CurvePoint(step=s, metrics={"accuracy": v}) for s, v in enumerate(values, start=1)])


def view(trials: list[Any], **spec: Any) -> tuple[list[tuple[float, float | None]], list[float]]:
    exp = experiment(parameters=ONE, maxTrials=20, **spec)
    observations, pending = suggester_view(Space(exp.spec.parameters), trials, exp)
    return [(float(o.params["lr"]), o.loss) for o in observations], [float(p["lr"]) for p in pending]


def test_without_early_stopping_finished_trials_are_their_final_values() -> None:
    ts = [grown(0, S, [0.1, 0.5], final=0.5), trial(1, F, params={"lr": 0.002}), grown(2, R, [0.3])]
    assert view(ts) == ([(0.001, -0.5), (0.002, None)], [0.003])


def test_with_few_finished_trials_the_model_is_fitted_at_the_highest_rung_enough_reached() -> None:
    # two succeeded, three stopped at rung 1: the final level has 2 < d + 2 = 3, rung 3 has 2, rung 1 has 5
    ts = [grown(0, S, [0.3, 0.5, 0.6, 0.7], final=0.9), grown(1, S, [0.1, 0.2, 0.8], final=0.85),
          grown(2, E, [0.05]), grown(3, E, [0.2]), grown(4, E, [0.15, 0.16])]
    observations, pending = view(ts, earlyStopping=ASHA)
    assert observations == [(0.001, -0.3), (0.002, -0.1), (0.003, -0.05), (0.004, -0.2), (0.005, -0.15)]
    assert pending == []


def test_once_enough_succeeded_stopped_trials_are_no_evidence_but_are_not_proposed_again() -> None:
    ts = [grown(i, S, [0.2, 0.4, 0.6], final=0.6 + i / 100) for i in range(3)] + [grown(3, E, [0.9])]
    observations, pending = view(ts, earlyStopping=ASHA)
    assert observations == [(0.001, -0.6), (0.002, -0.61), (0.003, -0.62)]  # the slow starter is not judged
    assert pending == [0.004]  # by its epoch-1 value, and is not tried again


def test_the_levels_are_the_rules_comparison_steps_then_the_final_result() -> None:
    exp = experiment(earlyStopping=ASHA)
    assert exp.spec.early_stopping is not None
    assert levels(exp.spec.early_stopping, []) == [1, 3, float("inf")]
    median = experiment(earlyStopping={"rule": "median", "minSteps": 2}).spec.early_stopping
    assert median is not None
    assert levels(median, [grown(0, R, [0.1] * 20)]) == [2, 6, 18, float("inf")]
