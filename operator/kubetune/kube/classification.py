"""What a Trial's Job and pods amount to: :func:`classify`, pure, no I/O.

Given the Trial, its Job (or None) and the Job's pods, as the API server returns them, decide the
next step: create the Job, wait, mark the Trial Running, harvest a finished pod's metrics, fail
the Trial with a Kubernetes-level reason, or carry out its stop request (delete the Job, then
record the stop). The caller (:mod:`kubetune.kube.trials`) does the I/O, and
:func:`kubetune.outcomes.judge` turns a harvest or a failure into the Trial's final status, the
same way the local runner does.

The Failed reasons decided here are the cluster ones of :data:`kubetune.api.TRIAL_REASONS`
(JobDeleted, DeadlineExceeded, OOMKilled, ImagePullFailed, Unschedulable, JobFailed,
MetricsUnavailable); exit codes, reports and logs are judged by :mod:`kubetune.outcomes`.

Disruptions are not judged: a pod ended by something other than the trial is :class:`Disrupted`,
and :func:`kubetune.outcomes.disrupted` runs the trial again (a new Job of the same name, marked
with its attempt in :data:`ATTEMPT_ANNOTATION`) or fails it once ``maxTrialRetries`` are spent.
A pod is disrupted when it carries the ``DisruptionTarget`` condition (preemption, the Eviction
API, a drain, the taint manager, the pod garbage collector after a node was lost, the kubelet),
when the kubelet evicted it, or when someone deleted it (kubetune deletes Jobs, never pods); and
a Job that failed with no pod left had its pod deleted. A Job failed by its template's
``podFailurePolicy`` is judged as the policy says, never retried. A suspended Job (a queue such
as Kueue has not admitted it, or took its quota back) is :class:`Queue`: the trial waits.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from kubetune.api import ATTEMPT_ANNOTATION, ATTEMPT_LABEL, Trial, TrialReason, parse_rfc3339
from kubetune.api.template import TrialTemplate
from kubetune.outcomes import deadline_exceeded, made

Body = dict[str, Any]

IMAGE_PULL_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName"})


@dataclass(frozen=True)
class CreateJob:
    """No Job and none was ever made for this Trial: make it."""


@dataclass(frozen=True)
class Wait:
    why: str


@dataclass(frozen=True)
class MarkRunning:
    pod: str
    #: The container whose log carries the progress lines (None: the pod's first).
    container: str | None = None


@dataclass(frozen=True)
class Harvest:
    """A pod finished: read its report (and log, see :func:`kubetune.metrics.needs_output`) and judge them."""

    pod: str
    container: str
    exit_code: int
    report: str | None


@dataclass(frozen=True)
class Fail:
    reason: TrialReason
    message: str
    #: Stop the Job too (it would otherwise wait forever, e.g. for an image that never comes).
    delete_job: bool = False


@dataclass(frozen=True)
class Disrupted:
    """The pod was ended by something other than the trial: run the trial again (or fail it)."""

    pod: str
    reason: str
    message: str


@dataclass(frozen=True)
class DeleteJob:
    """The Job is a disrupted attempt's and still there: delete it before the retry's is made."""


@dataclass(frozen=True)
class Queue:
    """The trial's ``queued`` mark is to change: its Job was suspended (True) or admitted (False)."""

    waiting: bool


@dataclass(frozen=True)
class StopJob:
    """The Trial has a stop request and its Job still runs: delete the Job (its pods go with it)."""


@dataclass(frozen=True)
class Stopped:
    """The Trial has a stop request and nothing of it runs any more: record the stop."""


Step = CreateJob | Wait | MarkRunning | Harvest | Fail | Disrupted | DeleteJob | Queue | StopJob | Stopped

parse_time = parse_rfc3339


def _condition(job: Body, *types: str) -> Body | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in types and condition.get("status") == "True":
            return dict(condition)
    return None


def _owned_by(obj: Body, uid: str | None) -> bool:
    if uid is None:
        return True
    return any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])


def main_container(pod: Body) -> str:
    """The trial's container: the first one of the pod."""
    return str(pod["spec"]["containers"][0]["name"])


def _container_status(pod: Body, name: str) -> Body:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == name:
            return dict(status)
    return {}


def _terminated(pod: Body) -> list[Body]:
    found = []
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (status.get("state") or {}).get("terminated")
        if terminated:
            found.append({"name": status.get("name"), **terminated})
    return found


def _newest(pods: list[Body]) -> Body | None:
    if not pods:
        return None
    return max(pods, key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"]["name"]))


def classify(trial: Trial, job: Body | None, pods: list[Body], *, now: dt.datetime,
             unschedulable_after: dt.timedelta) -> Step:
    """The next step for an unfinished ``trial``; see the module docstring."""
    if trial.status.stop is not None:
        return _stopping(trial, job, pods)
    before = _workload_step(trial, job, "Job")
    if before is not None:
        return before
    assert job is not None

    failed = _condition(job, "Failed", "FailureTarget")
    if failed and failed.get("reason") == "DeadlineExceeded":
        deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
        ended = deadline_exceeded(float(deadline) if isinstance(deadline, int | float) else None)
        return Fail(ended.reason, ended.message)

    backoff_limit = int((job.get("spec") or {}).get("backoffLimit") or 0)
    ours = [p for p in pods if _owned_by(p, job["metadata"].get("uid"))]
    live = [p for p in ours if not p["metadata"].get("deletionTimestamp")]
    succeeded = [p for p in ours if _outcome(p) == "Succeeded"]
    if succeeded:
        return _harvest(_newest(succeeded) or succeeded[0])
    suspended = bool((job.get("spec") or {}).get("suspend"))
    if suspended is not trial.status.queued:
        return Queue(suspended)
    if suspended:
        return Wait("the Job is suspended until a queue admits it")
    finished = [p for p in ours if _outcome(p) == "Failed"]
    if finished and (failed or backoff_limit == 0 or len(finished) > backoff_limit):
        by_policy = failed is not None and failed.get("reason") == "PodFailurePolicy"
        real = [p for p in finished if by_policy or disruption(p) is None]
        if real:
            pod = _newest(real) or real[0]
            if by_policy and disruption(pod) is not None:
                detail = (failed or {}).get("message") or "the Job failed"
                return Fail(TrialReason.JOB_FAILED, f"PodFailurePolicy: {detail}")
            return _judge_failed_pod(pod)
        pod = _newest(finished) or finished[0]
        reason, message = disruption(pod) or ("PodDeleted", "")
        return Disrupted(pod["metadata"]["name"], reason, message)
    if failed:
        if any(p["metadata"].get("deletionTimestamp") and _outcome(p) is None for p in ours):
            return Wait("the failed Job's pod is terminating")
        if not ours and failed.get("reason") == "BackoffLimitExceeded":
            # a pod that failed by itself stays (the Job controller keeps it): this one was deleted
            return Disrupted(f"job/{job['metadata'].get('uid')}", "PodDeleted",
                             "the Job's pod was deleted before the trial finished (the Job failed, no pod is left)")
        return Fail(TrialReason.JOB_FAILED, f"{failed.get('reason')}: {failed.get('message') or 'the Job failed'}")
    if _condition(job, "Complete"):
        return Fail(TrialReason.METRICS_UNAVAILABLE,
                    "the Job completed but its pod is gone, so its report cannot be read")

    newest = _newest(live)
    if newest is None:
        # since the Job last started (it starts again when a queue admits it), else since it was made
        created = parse_time((job.get("status") or {}).get("startTime") or job["metadata"].get("creationTimestamp"))
        if created is not None and now - created > unschedulable_after:
            return Fail(TrialReason.UNSCHEDULABLE,
                        f"no pod was created for the Job within {_span(unschedulable_after)}", delete_job=True)
        return Wait("no pod yet")
    pod = newest
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Running":
        return MarkRunning(pod["metadata"]["name"])
    return _pending_problem(pod, now=now, unschedulable_after=unschedulable_after) or Wait(f"pod {phase or 'Pending'}")


def _workload_step(trial: Trial, obj: Body | None, kind: str) -> Step | None:
    """What the trial's workload object itself calls for before its pods are looked at (any kind):
    made yet, deleted, an older Trial's, a disrupted attempt's to replace; ``None``: read its pods."""
    if obj is None:
        if not made(trial.status):
            return CreateJob()
        return Fail(TrialReason.JOB_DELETED, f"{kind} {trial.metadata.name} was deleted before the trial finished")
    if not _owned_by(obj, trial.metadata.uid):
        return Wait(f"a {kind} of that name belongs to an older Trial; waiting for it to be collected")
    if attempt(obj) < trial.status.retries:
        if obj["metadata"].get("deletionTimestamp"):
            return Wait(f"the disrupted attempt's {kind} is being deleted")
        return DeleteJob()
    if obj["metadata"].get("deletionTimestamp"):
        return Fail(TrialReason.JOB_DELETED, f"{kind} {trial.metadata.name} was deleted before the trial finished")
    return None


def _pending_problem(pod: Body, *, now: dt.datetime, unschedulable_after: dt.timedelta) -> Step | None:
    """A pod that is not running yet and never will: its image cannot be pulled, or it stayed unschedulable."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = (status.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in IMAGE_PULL_REASONS:
            image = status.get("image") or "the image"
            detail = waiting.get("message") or waiting.get("reason")
            return Fail(TrialReason.IMAGE_PULL_FAILED, f"cannot pull {image}: {detail}", delete_job=True)
    scheduled = next((c for c in (pod.get("status") or {}).get("conditions") or []
                      if c.get("type") == "PodScheduled"), None)
    if scheduled and scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        since = parse_time(pod["metadata"].get("creationTimestamp"))
        if since is not None and now - since > unschedulable_after:
            return Fail(TrialReason.UNSCHEDULABLE, f"unschedulable for over {_span(unschedulable_after)}: "
                        f"{scheduled.get('message') or ''}".rstrip(": "), delete_job=True)
        return Wait("unschedulable")
    return None


def classify_workload(trial: Trial, obj: Body | None, pods: list[Body], *, template: TrialTemplate,
                      now: dt.datetime, unschedulable_after: dt.timedelta) -> Step:
    """:func:`classify` for a multi-node workload (JobSet, PyTorchJob): its outcome is read from its
    success and failure conditions, its metrics from the primary pod (``primaryPodLabels``).

    Its pods belong to its child objects, so they are told apart by the attempt label they carry.
    A failure is the primary pod's when that pod failed by itself (its exit code, OOMKilled), a
    disruption when any pod of the attempt was disrupted, else the workload's own condition message.
    """
    kind = template.kind.value
    attempt_label = str(trial.status.retries)
    ours = [p for p in pods if (p["metadata"].get("labels") or {}).get(ATTEMPT_LABEL, "0") == attempt_label]
    primary_labels = template.primary_labels()
    primary = [p for p in ours if all((p["metadata"].get("labels") or {}).get(k) == v
                                      for k, v in primary_labels.items())]
    if trial.status.stop is not None:
        if obj is not None and not _owned_by(obj, trial.metadata.uid):
            obj = None
        done = [p for p in primary if _outcome(p) == "Succeeded"]
        if done and (obj is None or _condition(obj, template.resolved_success_condition)):
            return _harvest(_newest(done) or done[0], template.primary_container_name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return Stopped()
        return StopJob()
    before = _workload_step(trial, obj, kind)
    if before is not None:
        return before
    assert obj is not None

    if _condition(obj, template.resolved_success_condition):
        done = [p for p in primary if _outcome(p) == "Succeeded"] or [p for p in primary if _outcome(p)]
        if not done:
            return Fail(TrialReason.METRICS_UNAVAILABLE,
                        f"the {kind} succeeded but no pod matches primaryPodLabels {primary_labels}, so its report "
                        "cannot be read")
        return _harvest(_newest(done) or done[0], template.primary_container_name)
    failed = _condition(obj, template.resolved_failure_condition)
    if failed:
        if any(p["metadata"].get("deletionTimestamp") and _outcome(p) is None for p in ours):
            return Wait(f"the failed {kind}'s pods are terminating")
        own = [p for p in primary if _outcome(p) == "Failed" and disruption(p) is None]
        hit = [p for p in ours if _outcome(p) == "Failed" and disruption(p) is not None]
        first = _newest(own)
        # the primary pod stopped by SIGTERM/SIGKILL while another pod was disrupted: the workload
        # took it down after the disruption, it did not fail by itself
        if first is not None and not (hit and _stopped_by_signal(first, template.primary_container_name)):
            return _judge_failed_pod(first, template.primary_container_name)
        if hit:
            pod = _newest(hit) or hit[0]
            reason, message = disruption(pod) or ("PodDeleted", "")
            return Disrupted(pod["metadata"]["name"], reason, message)
        if first is not None:
            return _judge_failed_pod(first, template.primary_container_name)
        return Fail(TrialReason.JOB_FAILED, f"{kind} {failed.get('reason') or 'failed'}: "
                                            f"{failed.get('message') or f'the {kind} failed'}")
    suspended = bool((obj.get("spec") or {}).get("suspend"))
    if suspended is not trial.status.queued:
        return Queue(suspended)
    if suspended:
        return Wait(f"the {kind} is suspended until a queue admits it")
    live = [p for p in ours if not p["metadata"].get("deletionTimestamp")]
    running = [p for p in primary if (p.get("status") or {}).get("phase") == "Running"]
    if running:
        pod = _newest(running) or running[0]
        return MarkRunning(pod["metadata"]["name"], template.primary_container_name or main_container(pod))
    for pod in live:
        step = _pending_problem(pod, now=now, unschedulable_after=unschedulable_after)
        if step is not None:
            return step
    if not live:
        created = parse_time((obj.get("status") or {}).get("startTime") or obj["metadata"].get("creationTimestamp"))
        if created is not None and now - created > unschedulable_after:
            return Fail(TrialReason.UNSCHEDULABLE,
                        f"no pod was created for the {kind} within {_span(unschedulable_after)}", delete_job=True)
        return Wait("no pod yet")
    return Wait(f"{len(live)} pod(s), the primary one not running yet")


def _stopped_by_signal(pod: Body, container: str | None) -> bool:
    """Its container ended with 143 or 137 (SIGTERM, SIGKILL) and was not OOMKilled."""
    terminated = (_container_status(pod, container or main_container(pod)).get("state") or {}).get("terminated") or {}
    return terminated.get("exitCode") in (137, 143) and terminated.get("reason") != "OOMKilled"


def attempt(job: Body) -> int:
    """The attempt a trial's Job runs (:data:`ATTEMPT_ANNOTATION`; 0 when it has none)."""
    value = (job["metadata"].get("annotations") or {}).get(ATTEMPT_ANNOTATION, "0")
    return int(value) if str(value).isdigit() else 0


def disruption(pod: Body) -> tuple[str, str] | None:
    """(reason, message) when ``pod`` was ended by something other than its trial, else None."""
    name = pod["metadata"]["name"]
    status = pod.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("type") == "DisruptionTarget" and condition.get("status") == "True":
            reason = str(condition.get("reason") or "DisruptionTarget")
            detail = condition.get("message") or ""
            return reason, f"pod {name} was disrupted ({reason}){': ' + detail if detail else ''}"
    if status.get("reason") == "Evicted":
        return "Evicted", f"pod {name} was evicted by the kubelet: {status.get('message') or 'no message'}"
    if pod["metadata"].get("deletionTimestamp"):
        return "PodDeleted", f"pod {name} was deleted before the trial finished"
    return None


def _stopping(trial: Trial, job: Body | None, pods: list[Body]) -> Step:
    """A Trial with a stop request: a pod that already finished well keeps its result, else stop."""
    if job is not None and not _owned_by(job, trial.metadata.uid):
        job = None  # an older Trial's Job: this one never made its own
    uid = job["metadata"].get("uid") if job is not None else None
    ours = [p for p in pods if uid is None or _owned_by(p, uid)]
    succeeded = [p for p in ours if _outcome(p) == "Succeeded"]
    if succeeded:
        return _harvest(_newest(succeeded) or succeeded[0])
    if job is None or job["metadata"].get("deletionTimestamp"):
        return Stopped()
    return StopJob()


def _outcome(pod: Body) -> str | None:
    """Succeeded or Failed once the pod's trial is over, else None.

    The trial's container terminating settles it: the kubelet reports the pod's terminal phase
    only after tearing the pod down, about two seconds later, and the next trial need not wait
    for that. A failed container that the pod would restart (restartPolicy OnFailure) is not over.
    """
    status = pod.get("status") or {}
    phase = status.get("phase")
    if phase in ("Succeeded", "Failed"):
        return str(phase)
    terminated = (_container_status(pod, main_container(pod)).get("state") or {}).get("terminated")
    if not terminated:
        return None
    if terminated.get("exitCode") == 0:
        return "Succeeded"
    return "Failed" if (pod.get("spec") or {}).get("restartPolicy", "Never") == "Never" else None


def _judge_failed_pod(pod: Body, container: str | None = None) -> Step:
    status = pod.get("status") or {}
    if status.get("reason") == "DeadlineExceeded":
        return Fail(TrialReason.DEADLINE_EXCEEDED,
                    status.get("message") or "the pod ran past its activeDeadlineSeconds")
    for terminated in _terminated(pod):
        if terminated.get("reason") == "OOMKilled":
            return Fail(TrialReason.OOM_KILLED, f"container {terminated['name']} was killed for exceeding its memory "
                        f"limit (exit code {terminated.get('exitCode')})")
    return _harvest(pod, container)


def _harvest(pod: Body, container: str | None = None) -> Step:
    container = container or main_container(pod)
    terminated = (_container_status(pod, container).get("state") or {}).get("terminated") or {}
    phase = (pod.get("status") or {}).get("phase")
    exit_code = int(terminated.get("exitCode", 0 if phase == "Succeeded" else 1))
    report = terminated.get("message")
    return Harvest(pod["metadata"]["name"], container, exit_code, report)


def _span(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60} min" if seconds >= 120 and seconds % 60 == 0 else f"{seconds} s"
