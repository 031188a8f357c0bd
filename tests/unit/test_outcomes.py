"""The Trial half of the loop: what was observed of a trial becomes its final status, the same in both runners."""

from __future__ import annotations

import signal

import pytest

from kubetune.api import CurvePoint, MetricsSource, Objective, TrialPhase, TrialReason, TrialStatus
from kubetune.outcomes import Ended, Exited, deadline_exceeded, early_stop, experiment_finished, judge, stop_requested

OBJECTIVE = Objective(metric="accuracy", goal="maximize")
NOW = "2026-01-01T00:10:00Z"
RUNNING = TrialStatus(phase=TrialPhase.RUNNING, start_time="2026-01-01T00:00:00Z",
                      curve=[CurvePoint(step=1, metrics={"accuracy": 0.3}),
                             CurvePoint(step=2, metrics={"accuracy": 0.4})])
STOP = early_stop(TrialReason.MEDIAN_RULE, "stopped at step 2 by the median rule: …", "2026-01-01T00:09:00Z")


def judged(observed: Exited | Ended, status: TrialStatus = RUNNING,
           source: MetricsSource = MetricsSource.BOTH) -> TrialStatus:
    return judge(objective=OBJECTIVE, source=source, status=status, observed=observed, now=NOW)


# (case, observation, phase, reason)
CASES = [
    ("a report", Exited(exit_code=0, report='{"accuracy": 0.9}'), TrialPhase.SUCCEEDED, TrialReason.COMPLETED),
    ("no report, progress on stdout", Exited(exit_code=0, output="kubetune: epoch=3 accuracy=0.8\n"),
     TrialPhase.SUCCEEDED, TrialReason.COMPLETED),
    ("exit 2", Exited(exit_code=2, output="boom\n"), TrialPhase.FAILED, TrialReason.NON_ZERO_EXIT),
    ("a signal", Exited(signal=signal.SIGKILL), TrialPhase.FAILED, TrialReason.KILLED),
    ("the report path was a directory", Exited(exit_code=0, report_problem="the metrics file m is a directory"),
     TrialPhase.FAILED, TrialReason.METRICS_INVALID),
    ("NaN objective", Exited(exit_code=0, report='{"accuracy": NaN}'), TrialPhase.FAILED,
     TrialReason.METRICS_NOT_FINITE),
    ("no objective", Exited(exit_code=0, report='{"loss": 1}'), TrialPhase.FAILED, TrialReason.OBJECTIVE_MISSING),
    ("a deadline", deadline_exceeded(30), TrialPhase.FAILED, TrialReason.DEADLINE_EXCEEDED),
    ("the platform", Ended(TrialReason.OOM_KILLED, "container t was killed"), TrialPhase.FAILED,
     TrialReason.OOM_KILLED),
]


@pytest.mark.parametrize(("case", "observed", "phase", "reason"), CASES, ids=[c[0] for c in CASES])
def test_judge(case: str, observed: Exited | Ended, phase: TrialPhase, reason: TrialReason) -> None:
    status = judged(observed)
    assert (status.phase, status.reason) == (phase, reason)
    assert status.completion_time == NOW and status.start_time == RUNNING.start_time
    assert status.curve == RUNNING.curve  # the learning curve is kept whatever the end


def test_the_deadline_message_names_the_limit() -> None:
    assert judged(deadline_exceeded(30)).message == "ran longer than activeDeadlineSeconds=30"


@pytest.mark.parametrize("observed", [Exited(signal=signal.SIGTERM), Exited(exit_code=143, output="Terminated"),
                                      Exited(exit_code=0, report=None), Ended(TrialReason.JOB_DELETED, "gone")])
def test_a_stopped_trial_ends_as_its_stop_request_says(observed: Exited | Ended) -> None:
    status = judged(observed, stop_requested(RUNNING, STOP))
    assert (status.phase, status.reason, status.message) == (TrialPhase.EARLY_STOPPED, TrialReason.MEDIAN_RULE,
                                                             STOP.message)
    assert status.metrics == {"accuracy": 0.4}  # what it had reached
    assert status.objective_value is None  # not a final result: never the best trial
    assert status.stop is None


def test_a_trial_that_finished_while_its_stop_was_in_flight_keeps_its_real_result() -> None:
    status = judged(Exited(exit_code=0, report='{"accuracy": 0.95}'), stop_requested(RUNNING, STOP))
    assert (status.phase, status.objective_value) == (TrialPhase.SUCCEEDED, 0.95)


def test_the_first_stop_request_wins_and_a_finished_trial_takes_none() -> None:
    first = stop_requested(RUNNING, STOP)
    assert stop_requested(first, experiment_finished(NOW)).stop == STOP
    done = judged(Exited(exit_code=0, report='{"accuracy": 0.9}'))
    assert stop_requested(done, STOP) == done
    assert judged(Exited(exit_code=1), done) == done  # a finished trial is never judged again


def test_messages_are_cleaned_of_control_characters() -> None:
    status = judged(Exited(exit_code=1, output="bad \x00 byte \x1b[31mred\x1b[0m\n"))
    assert status.message == "exited with code 1: bad \\x00 byte \\x1b[31mred\\x1b[0m"
