"""The Trial half of the loop: what was observed of one trial → its :class:`TrialStatus`.

Purely computational, no I/O, shared by both runners (the operator's Trial pass and the local
runner), so a trial means the same on a laptop as on a cluster. The runners only observe (a
process exit, a pod's state, a log, a deadline) and write what these functions return:

* :func:`started` and :func:`running`: the trial's start;
* :func:`progressed`: new progress lines merged into its learning curve;
* :func:`stop_requested`: a stop decided (early stopping, or the experiment's end), recorded
  before the trial is stopped;
* :func:`queued`: its workload waits for a queue to admit it (a suspended Job);
* :func:`disrupted`: its pod was ended by something other than the trial (preempted, evicted,
  deleted): the trial is run again, or fails ``Disrupted`` once ``maxTrialRetries`` are spent;
* :func:`judge`: the trial is over; its final status from what was observed.

Observations are of two kinds. :class:`Exited`: the trial's own code ended (exit code or signal,
its report, its output). :class:`Ended`: something outside it ended it (a deadline, the platform:
OOMKilled, an image that cannot be pulled, a deleted Job).

A trial with a stop request ends in the request's phase (EarlyStopped or Killed) *unless* it
exited 0 with a valid report before the stop took effect: then it keeps its real result. So a
trial is never both EarlyStopped and Succeeded.
"""

from __future__ import annotations

import signal as signals
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from kubetune import curves
from kubetune.api import (
    MAX_DISRUPTIONS,
    CurvePoint,
    Disruption,
    MetricsSource,
    Objective,
    StopRequest,
    TrialPhase,
    TrialReason,
    TrialStatus,
)
from kubetune.metrics import clean_text, harvest
from kubetune.stopping import Stop


@dataclass(frozen=True)
class Exited:
    """The trial's process (container) ended: by itself, or by a signal."""

    exit_code: int | None = None
    #: The signal that ended it, when a signal did (locally: a negative return code).
    signal: int | None = None
    #: The final report (termination message, metrics file), or None when there is none.
    report: str | None = None
    #: Why the report could not be read at all (e.g. the metrics path is a directory).
    report_problem: str | None = None
    #: The end of the trial's output, when it was read (see ``metrics.needs_output``).
    output: str | None = None


@dataclass(frozen=True)
class Ended:
    """Something outside the trial's code ended it (or it never started)."""

    reason: TrialReason
    message: str


Observation = Exited | Ended


def deadline_exceeded(seconds: float | None) -> Ended:
    """The observation of a trial that ran past ``activeDeadlineSeconds``."""
    limit = f"={seconds:g}" if seconds is not None else ""
    return Ended(TrialReason.DEADLINE_EXCEEDED, f"ran longer than activeDeadlineSeconds{limit}")


def experiment_finished(now: str) -> StopRequest:
    """The stop request of an active trial whose experiment ended."""
    return StopRequest(phase=TrialPhase.KILLED, reason=TrialReason.EXPERIMENT_FINISHED,
                       message="stopped because the experiment ended", time=now)


def early_stop(reason: TrialReason, message: str, now: str) -> StopRequest:
    return StopRequest(phase=TrialPhase.EARLY_STOPPED, reason=reason, message=clean_text(message), time=now)


def stop_requests(stops: Sequence[Stop], killed: Sequence[str], now: str) -> dict[str, StopRequest]:
    """trial name → its stop request, for a plan's early stops and the trials its experiment's end kills."""
    requests = {s.trial: early_stop(s.reason, s.message, now) for s in stops}
    requests.update({name: experiment_finished(now) for name in killed})
    return requests


def started(status: TrialStatus, now: str) -> TrialStatus:
    """The trial's workload was made (a Job created, a process started): its start time is set
    (after a retry, the retry's ``attemptTime``)."""
    update: dict[str, object] = {"start_time": status.start_time or now}
    if status.retries:
        update["attempt_time"] = status.attempt_time or now
    return status.model_copy(update=update)


def made(status: TrialStatus) -> bool:
    """Whether the workload of the trial's current attempt was made (see :func:`started`)."""
    return (status.attempt_time if status.retries else status.start_time) is not None


def running(status: TrialStatus, now: str) -> TrialStatus:
    return status.model_copy(update={"phase": TrialPhase.RUNNING, "start_time": status.start_time or now,
                                     "queued": False})


def progressed(status: TrialStatus, points: Sequence[CurvePoint], *, protect: Collection[int] = (),
               cursor: str | None = None) -> TrialStatus:
    """The status with new progress ``points`` merged into its curve (and the log cursor moved)."""
    curve = curves.merge(status.curve, points, protect=protect)
    update: dict[str, object] = {"curve": curve}
    if cursor is not None:
        update["log_cursor"] = cursor
    return status.model_copy(update=update)


def stop_requested(status: TrialStatus, request: StopRequest) -> TrialStatus:
    """The status with ``request`` recorded (a request already there is kept: it came first)."""
    if status.phase.finished or status.stop is not None:
        return status
    return status.model_copy(update={"stop": request})


def queued(status: TrialStatus, waiting: bool) -> TrialStatus:
    """The status with ``queued`` set (True: its Job is suspended until a queue admits it)."""
    if status.phase.finished or status.queued is waiting:
        return status
    if waiting and status.phase is TrialPhase.RUNNING:  # the queue took its quota back: it waits again
        return status.model_copy(update={"queued": True, "phase": TrialPhase.PENDING})
    return status.model_copy(update={"queued": waiting})


def disrupted(status: TrialStatus, disruption: Disruption, *, max_retries: int, now: str) -> TrialStatus:
    """The status after ``disruption``: a retry (Pending again, same params, the curve of the lost
    attempt dropped, ``retries`` + 1) while fewer than ``max_retries`` were made, else Failed ``Disrupted``.

    A disruption already recorded (the same pod, seen again by a repeated pass) changes nothing.
    """
    if status.phase.finished or any(d.pod == disruption.pod for d in status.disruptions):
        return status
    disruptions = [*status.disruptions, disruption][-MAX_DISRUPTIONS:]
    if status.retries >= max_retries:
        tried = f"after {status.retries} retr{'y' if status.retries == 1 else 'ies'}" if status.retries else "with"
        failed = _finished(status, TrialPhase.FAILED, TrialReason.DISRUPTED,
                           f"{disruption.message} ({tried} maxTrialRetries={max_retries})", now)
        return failed.model_copy(update={"disruptions": disruptions, "queued": False})
    retries = status.retries + 1
    return status.model_copy(update={
        "phase": TrialPhase.PENDING,
        "retries": retries,
        "attempt_time": None,
        "disruptions": disruptions,
        "message": clean_text(f"retry {retries} of {max_retries}: {disruption.message}"),
        "curve": [],
        "log_cursor": None,
        "queued": False,
    })


def judge(*, objective: Objective, source: MetricsSource, status: TrialStatus, observed: Observation,
          now: str) -> TrialStatus:
    """The final status of a trial, from ``observed``; see the module docstring."""
    if status.phase.finished:
        return status
    request = status.stop
    if request is not None:
        if isinstance(observed, Exited) and observed.exit_code == 0 and observed.signal is None:
            kept = _from_exit(objective, source, observed)
            if kept.succeeded:
                return _finished(status, TrialPhase.SUCCEEDED, kept.reason, kept.message, now,
                                 metrics=kept.metrics, objective_value=kept.objective_value)
        return _finished(status, request.phase, request.reason, request.message, now,
                         metrics=curves.last_metrics(status.curve))
    if isinstance(observed, Ended):
        return _finished(status, TrialPhase.FAILED, observed.reason, observed.message, now)
    outcome = _from_exit(objective, source, observed)
    phase = TrialPhase.SUCCEEDED if outcome.succeeded else TrialPhase.FAILED
    return _finished(status, phase, outcome.reason, outcome.message, now,
                     metrics=outcome.metrics, objective_value=outcome.objective_value)


@dataclass(frozen=True)
class _Result:
    succeeded: bool
    reason: TrialReason
    message: str
    metrics: dict[str, float]
    objective_value: float | None


def _from_exit(objective: Objective, source: MetricsSource, observed: Exited) -> _Result:
    if observed.signal is not None:
        try:
            name = signals.Signals(observed.signal).name
        except ValueError:
            name = "unknown signal"
        return _Result(False, TrialReason.KILLED, f"killed by signal {observed.signal} ({name})", {}, None)
    if observed.report_problem is not None and observed.exit_code == 0:
        return _Result(False, TrialReason.METRICS_INVALID, observed.report_problem, {}, None)
    outcome = harvest(objective=objective, source=source, exit_code=observed.exit_code,
                      report=observed.report, output=observed.output)
    return _Result(outcome.succeeded, outcome.reason, outcome.message, outcome.metrics, outcome.objective_value)


def _finished(status: TrialStatus, phase: TrialPhase, reason: TrialReason, message: str, now: str, *,
              metrics: dict[str, float] | None = None, objective_value: float | None = None) -> TrialStatus:
    return status.model_copy(update={
        "phase": phase,
        "reason": reason,
        "message": clean_text(message),
        "metrics": metrics or {},
        "objective_value": objective_value,
        "start_time": status.start_time or now,
        "completion_time": now,
        "stop": None,
    })
