"""What the suggester is told of the trials: finished results, failures, partial results, pending points."""

from __future__ import annotations

from typing import Any

from kubetune.api import CurvePoint, TrialPhase, TrialReason
from kubetune.observations import suggester_view
from kubetune.space import Space
from tests.unit.factories import experiment, trial

S, F, R, E, K, P = (TrialPhase.SUCCEEDED, TrialPhase.FAILED, TrialPhase.RUNNING, TrialPhase.EARLY_STOPPED,
                    TrialPhase.KILLED, TrialPhase.PENDING)
ONE = [{"name": "lr", "type": "double", "min": 0.001, "max": 0.1, "scale": "log"}]


def grown(index: int, phase: TrialPhase, values: list[float | None], final: float | None = None) -> Any:
    points = [CurvePoint(step=s, metrics={"accuracy": v} if v is not None else {},
                         non_finite=[] if v is not None else ["accuracy"]) for s, v in enumerate(values, start=1)]
    return trial(index, phase, value=final, params={"lr": 0.001 * (index + 1)}, curve=points)


def test_each_trial_is_what_it_amounts_to() -> None:
    exp = experiment(parameters=ONE, maxTrials=20)
    ts = [grown(0, S, [0.1, 0.5], final=0.5), trial(1, F, params={"lr": 0.002}), grown(2, R, [0.3]),
          grown(3, E, [0.2, 0.3]), grown(4, E, [0.4, None]), grown(5, E, [None]), trial(6, K, params={"lr": 0.007})]
    observations, pending = suggester_view(Space(exp.spec.parameters), ts, exp)
    assert [(o.params["lr"], o.loss) for o in observations] == [
        (0.001, -0.5),   # succeeded: its final result (maximize: negated)
        (0.002, None),   # failed
        (0.004, -0.3),   # stopped: its value at its last step
        (0.005, -0.4),   # ... the last finite one
        (0.006, None),   # ... none finite: as failed
    ]
    assert [p["lr"] for p in pending] == [0.003]  # running; a killed trial is neither


def test_platform_failures_and_retried_trials_tell_the_suggester_nothing_of_their_point() -> None:
    exp = experiment(parameters=ONE, maxTrials=20)
    ts = [trial(0, F, params={"lr": 0.001}, reason=TrialReason.NON_ZERO_EXIT),
          trial(1, F, params={"lr": 0.002}, reason=TrialReason.DISRUPTED),
          trial(2, F, params={"lr": 0.003}, reason=TrialReason.IMAGE_PULL_FAILED),
          trial(3, P, params={"lr": 0.004}, retries=2)]
    observations, pending = suggester_view(Space(exp.spec.parameters), ts, exp)
    assert [(o.params["lr"], o.loss) for o in observations] == [(0.001, None)]
    assert [p["lr"] for p in pending] == [0.004]  # being retried: pending, as any active trial
