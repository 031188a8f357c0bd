"""The Trial half of the loop: what was observed of a trial becomes its final status, the same in both runners."""

from __future__ import annotations

import signal

import pytest

from kubetune.api import CurvePoint, Disruption, MetricsSource, Objective, TrialPhase, TrialReason, TrialStatus
from kubetune.outcomes import (
    Ended,
    Exited,
    deadline_exceeded,
    disrupted,
    early_stop,
    experiment_finished,
    judge,
    made,
    queued,
    running,
    started,
    stop_requested,
)

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


# --- disruptions and queues ------------------------------------------------------------------------

EVICTED = Disruption(pod="exp-0-abcde", reason="EvictionByEvictionAPI",
                     message="pod exp-0-abcde was disrupted (EvictionByEvictionAPI)", time=NOW)


def test_a_disruption_runs_the_trial_again_without_its_lost_progress() -> None:
    status = disrupted(RUNNING.model_copy(update={"log_cursor": "t"}), EVICTED, max_retries=3, now=NOW)
    assert (status.phase, status.retries, status.reason) == (TrialPhase.PENDING, 1, None)
    assert status.curve == [] and status.log_cursor is None and status.attempt_time is None
    assert status.start_time == RUNNING.start_time  # the trial's first start is kept
    assert status.disruptions == [EVICTED]
    assert status.message == "retry 1 of 3: pod exp-0-abcde was disrupted (EvictionByEvictionAPI)"
    assert not made(status)
    again = started(status, "2026-01-01T00:11:00Z")
    assert made(again) and again.attempt_time == "2026-01-01T00:11:00Z"
    assert again.start_time == RUNNING.start_time


def test_the_same_disruption_seen_twice_is_one_retry() -> None:
    once = disrupted(RUNNING, EVICTED, max_retries=3, now=NOW)
    assert disrupted(once, EVICTED, max_retries=3, now=NOW) == once


@pytest.mark.parametrize(("limit", "words"), [(0, "(with maxTrialRetries=0)"),
                                               (2, "(after 2 retries maxTrialRetries=2)")])
def test_a_disruption_after_the_last_retry_fails_the_trial_disrupted(limit: int, words: str) -> None:
    status = RUNNING
    for n in range(limit):
        status = disrupted(status, EVICTED.model_copy(update={"pod": f"p{n}"}), max_retries=limit, now=NOW)
    status = disrupted(status, EVICTED, max_retries=limit, now=NOW)
    assert (status.phase, status.reason, status.retries) == (TrialPhase.FAILED, TrialReason.DISRUPTED, limit)
    assert status.message.endswith(words) and len(status.disruptions) == limit + 1
    assert status.completion_time == NOW
    assert disrupted(status, EVICTED.model_copy(update={"pod": "later"}), max_retries=limit, now=NOW) == status


def test_a_queued_trial_is_pending_and_a_running_one_sent_back_to_its_queue_waits_again() -> None:
    pending = TrialStatus()
    assert queued(pending, True).queued and queued(pending, True).phase is TrialPhase.PENDING
    back = queued(RUNNING, True)
    assert (back.phase, back.queued) == (TrialPhase.PENDING, True)
    assert not queued(back, False).queued
    assert not running(back, NOW).queued
    done = judged(Exited(exit_code=0, report='{"accuracy": 0.9}'))
    assert queued(done, True) == done
