"""The ``Trial``'s spec and status: phases, the one list of reasons, learning curves, stop requests.

Purely declarative: no I/O. The README's table of trial reasons is generated from
:data:`TRIAL_REASONS` (``python -m kubetune.docgen``), so the documentation cannot drift from the code.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from kubetune.api.base import PRESERVE_UNKNOWN, Model, Params

#: A learning curve keeps at most this many points (thinned evenly, the last one always kept),
#: so a Trial stays small whatever the number of epochs.
MAX_CURVE_POINTS = 100


class TrialPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    KILLED = "Killed"
    EARLY_STOPPED = "EarlyStopped"

    @property
    def finished(self) -> bool:
        return self in FINISHED_PHASES

    @property
    def counter(self) -> str:
        """The field of :class:`kubetune.api.TrialCounts` that counts this phase."""
        return "early_stopped" if self is TrialPhase.EARLY_STOPPED else self.value.lower()


FINISHED_PHASES = frozenset({TrialPhase.SUCCEEDED, TrialPhase.FAILED, TrialPhase.KILLED, TrialPhase.EARLY_STOPPED})


class TrialReason(StrEnum):
    """Why the trial ended (see the reasons table in the README)."""

    COMPLETED = "Completed"
    NON_ZERO_EXIT = "NonZeroExit"
    OBJECTIVE_MISSING = "ObjectiveMissing"
    METRICS_NOT_FINITE = "MetricsNotFinite"
    METRICS_INVALID = "MetricsInvalid"
    REPORT_TOO_LARGE = "ReportTooLarge"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    KILLED = "Killed"
    START_FAILED = "StartFailed"
    INVALID_TEMPLATE = "InvalidTemplate"
    OOM_KILLED = "OOMKilled"
    IMAGE_PULL_FAILED = "ImagePullFailed"
    UNSCHEDULABLE = "Unschedulable"
    EVICTED = "Evicted"
    JOB_DELETED = "JobDeleted"
    JOB_FAILED = "JobFailed"
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    EXPERIMENT_FINISHED = "ExperimentFinished"
    MEDIAN_RULE = "MedianRule"
    ASHA_RUNG = "AshaRung"
    DISRUPTED = "Disrupted"


#: reason → (the phase it ends a trial in, where it happens, when).
TRIAL_REASONS: dict[TrialReason, tuple[TrialPhase, str, str]] = {
    TrialReason.COMPLETED: (TrialPhase.SUCCEEDED, "both", "the trial exited 0 and reported its objective"),
    TrialReason.NON_ZERO_EXIT: (TrialPhase.FAILED, "both",
                                "the process exited with a non-zero code; the message has the code and the "
                                "last output line"),
    TrialReason.OBJECTIVE_MISSING: (TrialPhase.FAILED, "both", "it exited 0 but never reported the objective metric "
                                                               "(or one of the additionalObjectives)"),
    TrialReason.METRICS_NOT_FINITE: (TrialPhase.FAILED, "both", "a declared metric was NaN or infinite"),
    TrialReason.METRICS_INVALID: (TrialPhase.FAILED, "both",
                                  "the report is not a JSON object of numbers (or, locally, not a regular file)"),
    TrialReason.REPORT_TOO_LARGE: (TrialPhase.FAILED, "both", "the report is over 4 KiB"),
    TrialReason.DEADLINE_EXCEEDED: (TrialPhase.FAILED, "both", "it ran longer than activeDeadlineSeconds"),
    TrialReason.KILLED: (TrialPhase.FAILED, "local", "the process was killed by a signal kubetune did not send"),
    TrialReason.START_FAILED: (TrialPhase.FAILED, "local", "the command could not be started (not found, not "
                                                           "executable)"),
    TrialReason.INVALID_TEMPLATE: (TrialPhase.FAILED, "both", "the template cannot be rendered for the trial, or "
                                                              "the API server rejected the rendered Job"),
    TrialReason.OOM_KILLED: (TrialPhase.FAILED, "cluster", "a container was killed for exceeding its memory limit"),
    TrialReason.IMAGE_PULL_FAILED: (TrialPhase.FAILED, "cluster", "the image cannot be pulled (ErrImagePull, "
                                                                  "ImagePullBackOff, ErrImageNeverPull, "
                                                                  "InvalidImageName)"),
    TrialReason.UNSCHEDULABLE: (TrialPhase.FAILED, "cluster", "the pod stayed unschedulable (or was never created) "
                                                              "past KUBETUNE_UNSCHEDULABLE_SECONDS"),
    TrialReason.EVICTED: (TrialPhase.FAILED, "cluster", "the kubelet evicted the pod (written by earlier "
                                                        "versions; an eviction is now a disruption, retried)"),
    TrialReason.JOB_DELETED: (TrialPhase.FAILED, "cluster", "the Job vanished before the trial finished"),
    TrialReason.JOB_FAILED: (TrialPhase.FAILED, "cluster", "the Job failed and no pod is left to say why"),
    TrialReason.METRICS_UNAVAILABLE: (TrialPhase.FAILED, "cluster", "the Job completed but its pod is gone, so the "
                                                                    "report cannot be read"),
    TrialReason.EXPERIMENT_FINISHED: (TrialPhase.KILLED, "both", "the experiment ended (target reached, too many "
                                                                 "failures) while the trial was active"),
    TrialReason.MEDIAN_RULE: (TrialPhase.EARLY_STOPPED, "both",
                              "earlyStopping rule median: its best value so far was worse than the median of the "
                              "other trials' running averages at the same step"),
    TrialReason.ASHA_RUNG: (TrialPhase.EARLY_STOPPED, "both",
                            "earlyStopping rule asha: at a rung it was not in the top 1/reductionFactor of the "
                            "trials that reached that rung"),
    TrialReason.DISRUPTED: (TrialPhase.FAILED, "cluster",
                            "its pod was disrupted (preempted, evicted, its node lost, deleted by someone else) "
                            "once more after maxTrialRetries retries"),
}

#: Failures that say something about the parameters (a diverged or NaN run, too much memory or
#: time); the others (garbage output, an image that cannot be pulled, a deleted Job) do not.
PARAMETER_FAILURES = frozenset({TrialReason.NON_ZERO_EXIT, TrialReason.METRICS_NOT_FINITE,
                                TrialReason.OOM_KILLED, TrialReason.DEADLINE_EXCEEDED})

#: Failures that are the platform's, not the point's: the suggester is not told of them (the point
#: may be proposed again), so a reclaimed node or a missing image never steers the search away.
PLATFORM_FAILURES = frozenset({TrialReason.IMAGE_PULL_FAILED, TrialReason.UNSCHEDULABLE, TrialReason.EVICTED,
                               TrialReason.JOB_DELETED, TrialReason.METRICS_UNAVAILABLE, TrialReason.DISRUPTED})

#: How many disruptions a Trial's status keeps (the latest ones).
MAX_DISRUPTIONS = 20


class TrialSpec(Model):
    index: int = Field(ge=0, description="Position in the experiment; the name is <experiment>-<index>.")
    params: Params = Field(json_schema_extra={"additionalProperties": PRESERVE_UNKNOWN})


class CurvePoint(Model):
    """One progress report: the step (epoch) and the declared metrics it carried."""

    step: int = Field(ge=0, description="The step (epoch) the trial reported.")
    metrics: dict[str, float] = Field(default_factory=dict, description="Declared metrics at this step.")
    non_finite: list[str] = Field(
        default_factory=list, description="Declared metrics the trial reported as NaN or infinite at this step."
    )


class Rung(Model):
    """An asha rung this trial passed: the step and the objective value it was judged by."""

    step: int = Field(ge=1)
    value: float | None = Field(default=None, description="The objective at the rung (absent when not finite).")
    ranked: bool = Field(default=True, description="False: passed before minTrials others got there; judged "
                                                   "again once they have.")


class Disruption(Model):
    """A pod of the trial ended by something other than the trial: preempted, evicted, deleted."""

    pod: str = Field(description="The disrupted pod.")
    reason: str = Field(max_length=100, description="What ended it: the DisruptionTarget condition's reason "
                                                    "(PreemptionByScheduler, EvictionByEvictionAPI, "
                                                    "DeletionByTaintManager, DeletionByPodGC, TerminationByKubelet), "
                                                    "Evicted or PodDeleted.")
    message: str = Field(max_length=1000)
    time: str


class StopRequest(Model):
    """A decision to stop an active trial, recorded before the trial is stopped (restart-safe)."""

    phase: TrialPhase = Field(strict=False, description="EarlyStopped or Killed: the phase the trial ends in.")
    reason: TrialReason = Field(strict=False)
    message: str = Field(max_length=1000)
    time: str


class TrialStatus(Model):
    phase: TrialPhase = Field(default=TrialPhase.PENDING, strict=False)
    metrics: dict[str, float] = Field(default_factory=dict)
    objective_value: float | None = None
    reason: TrialReason | None = Field(default=None, strict=False)
    message: str | None = None
    start_time: str | None = None
    completion_time: str | None = None
    curve: list[CurvePoint] = Field(
        default_factory=list, max_length=MAX_CURVE_POINTS,
        description=f"Learning curve: the trial's progress reports (at most {MAX_CURVE_POINTS}, thinned evenly).",
    )
    log_cursor: str | None = Field(
        default=None, description="Timestamp of the last log line the operator has read for the curve."
    )
    rungs: list[Rung] = Field(default_factory=list, description="asha rungs this trial passed.")
    stop: StopRequest | None = Field(default=None, description="A stop decided and not yet completed.")
    retries: int = Field(default=0, ge=0, description="How many times the trial was run again after a disruption "
                                                      "(same index, same params, a new Job).")
    attempt_time: str | None = Field(default=None, description="When the current retry's Job was made (the first "
                                                               "attempt's is startTime).")
    disruptions: list[Disruption] = Field(
        default_factory=list, max_length=MAX_DISRUPTIONS,
        description=f"The disruptions it was retried after (the last {MAX_DISRUPTIONS}).",
    )
    queued: bool = Field(default=False, description="Its Job is suspended, waiting for a queue to admit it "
                                                    "(e.g. Kueue's quota).")

    @property
    def last_step(self) -> int | None:
        return self.curve[-1].step if self.curve else None
