"""A Trial's life on the cluster: create its Job, follow its pod, stop it when asked, record its outcome.

:func:`sync_trial` is one level-based pass over one Trial: read the Trial, its Job and the Job's
pods, let :func:`kubetune.kube.classification.classify` decide, do that one thing. What a finished
trial amounts to is :func:`kubetune.outcomes.judge`'s to say (the local runner asks it too).
Every step is idempotent (deterministic Job name, AlreadyExists is success, status writes
guarded by the resourceVersion and recomputed after a conflict), so a pass repeated after a
crash or a duplicate event does no harm.

``status.startTime`` is written right after the Job is created and marks "a Job was made": a
started Trial whose Job is missing failed with JobDeleted, it is never run again.

A disrupted pod (preempted, evicted, deleted by someone else; see
:mod:`kubetune.kube.classification`) is not the trial's failure: the pass records the disruption
and the retry (``status.retries`` + 1, ``attemptTime`` cleared) first, then deletes the old Job,
then makes the retry's Job (same name, the attempt in its annotation) and sets ``attemptTime``.
Each write comes before the act it stands for, so an operator killed in between resumes the same
retry once.

A stop (early stopping, or the experiment's end) is a ``status.stop`` request written first by
the Experiment's pass; this pass then deletes the Job and, once nothing runs, records the stop.
An operator killed in between finds the request and finishes the same stop, once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from typing import Any

from kubetune import outcomes
from kubetune.api import (
    EXPERIMENT_LABEL,
    TRIAL_LABEL,
    CurvePoint,
    Disruption,
    Experiment,
    Rung,
    StopRequest,
    Trial,
    TrialPhase,
    TrialReason,
    TrialStatus,
    WorkloadKind,
    now_rfc3339,
)
from kubetune.api.template import TrialTemplate
from kubetune.kube.classification import (
    CreateJob,
    DeleteJob,
    Disrupted,
    Fail,
    Harvest,
    MarkRunning,
    Queue,
    StopJob,
    Stopped,
    Wait,
    classify,
    classify_workload,
    main_container,
)
from kubetune.kube.client import JOBS, PODS, TRIALS, ApiError, Body, Resource
from kubetune.kube.patching import without_kopf
from kubetune.kube.progress import final_points, merged
from kubetune.kube.recording import experiment_of, finished, parse_trial, write_trial
from kubetune.kube.runtime import Runtime
from kubetune.lifecycle import Event, created_event
from kubetune.metrics import needs_output
from kubetune.trial import RenderError, render_job

log = logging.getLogger(__name__)

#: How much of a pod's log is read for metric lines and the failure reason.
LOG_LIMIT_BYTES = 1 << 20


def owner_reference(owner: Body) -> Body:
    """A controller owner reference to ``owner``: deleting it deletes the child (and its pods)."""
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owned_by(obj: Body, uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])


async def sync_trial(rt: Runtime, namespace: str, name: str, *, body: Body | None = None,
                     experiment: Experiment | None = None) -> None:
    """One pass over one Trial; see the module docstring. ``body``/``experiment`` save a read."""
    raw = body if body is not None else await rt.api.get(TRIALS, namespace, name)
    if raw is None or raw["metadata"].get("deletionTimestamp") or finished(raw):
        return
    trial = parse_trial(raw)
    if trial is None:
        return
    experiment = experiment or known_experiment(rt, raw) or await experiment_of(rt, raw)
    if experiment is None:
        return  # gone (its Trials go with it) or invalid (its own pass says so)
    template = experiment.spec.trial_template
    resource = workload_resource(template)
    job, pods = await asyncio.gather(rt.api.get(resource, namespace, name),
                                     rt.api.list(PODS, namespace, selector=f"{TRIAL_LABEL}={name}"))
    now = dt.datetime.now(dt.UTC)
    if template.kind is WorkloadKind.JOB:
        step = classify(trial, job, pods, now=now, unschedulable_after=rt.unschedulable_after)
    else:
        step = classify_workload(trial, job, pods, template=template, now=now,
                                 unschedulable_after=rt.unschedulable_after)
    if isinstance(step, Wait):
        return
    if isinstance(step, CreateJob):
        await create_job(rt, raw, trial, experiment)
        return
    if isinstance(step, MarkRunning):
        pod = next(p for p in pods if p["metadata"]["name"] == step.pod)
        rt.pods[(namespace, name)] = (step.pod, step.container or main_container(pod))
        await _mark_running(rt, raw, trial)
        return
    if isinstance(step, StopJob):
        await _read_last_progress(rt, raw, trial, pods, experiment)
        await rt.api.delete(resource, namespace, name)
        return
    if isinstance(step, DeleteJob):
        await rt.api.delete(resource, namespace, name)
        return
    if isinstance(step, Queue):
        if await write_trial(rt, raw, lambda status: outcomes.queued(status, step.waiting)) is not None \
                and step.waiting:
            rt.events.on_trial(raw, Event("Normal", "TrialQueued", f"trial {name} is waiting for quota: its Job "
                                                                    "is suspended until a queue admits it"))
        return
    if isinstance(step, Disrupted):
        await _retry(rt, raw, experiment, step)
        return
    observed: outcomes.Observation
    if isinstance(step, Stopped):
        observed = outcomes.Ended(TrialReason.EXPERIMENT_FINISHED, "stopped")  # judge takes the request's reason
    elif isinstance(step, Fail):
        observed = outcomes.Ended(step.reason, step.message)
    else:
        assert isinstance(step, Harvest)
        spec = experiment.spec
        output = None
        if needs_output(spec.metrics_source, step.exit_code, step.report):
            output = await rt.api.read_log(namespace, step.pod, step.container, limit_bytes=LOG_LIMIT_BYTES)
        observed = outcomes.Exited(exit_code=step.exit_code, report=step.report, output=output)
        points, cursor = await final_points(rt, namespace, step.pod, step.container, trial.status, experiment)
        await finish(rt, raw, experiment, observed, points=points, cursor=cursor)
        return
    await finish(rt, raw, experiment, observed)
    if isinstance(step, Fail) and step.delete_job:
        await rt.api.delete(resource, namespace, name)


async def _retry(rt: Runtime, raw: Body, experiment: Experiment, step: Disrupted) -> None:
    """Record the disruption (a retry, or the trial's end); for a retry, delete the disrupted attempt's Job."""
    namespace, name = raw["metadata"]["namespace"], raw["metadata"]["name"]
    disruption = Disruption(pod=step.pod, reason=step.reason[:100], message=step.message[:1000], time=now_rfc3339())
    limit = experiment.spec.max_trial_retries
    written = await write_trial(rt, raw, lambda status: outcomes.disrupted(status, disruption, max_retries=limit,
                                                                           now=disruption.time))
    if written is None:
        return
    final = TrialStatus.model_validate(without_kopf(written).get("status") or {})
    if final.phase.finished:
        rt.pods.pop((namespace, name), None)
        reason = final.reason.value if final.reason else ""
        rt.metrics.trials_finished.labels(phase=final.phase.value, reason=reason).inc()
        rt.events.on_trial(written, trial_event(name, final))
        return  # its Job stays, with its pods' logs, as a failed trial's does
    rt.metrics.trial_retries.inc()
    rt.events.on_trial(written, Event("Warning", "TrialDisrupted",
                                      f"trial {name}: {step.message}; running it again (retry {final.retries} of "
                                      f"{limit})"))
    await rt.api.delete(workload_resource(experiment.spec.trial_template), namespace, name)


def workload_resource(template: TrialTemplate) -> Resource:
    """The API resource of a trial template's workload (batch/v1 jobs, or its kind's)."""
    if template.kind is WorkloadKind.JOB and template.api_version in (None, "batch/v1"):
        return JOBS
    group, _, version = template.resolved_api_version.rpartition("/")
    return Resource(group, version, template.workload.plural)


def known_experiment(rt: Runtime, raw: Body) -> Experiment | None:
    """The Trial's Experiment as its last pass read it (None: not read by this process yet)."""
    name = (raw["metadata"].get("labels") or {}).get(EXPERIMENT_LABEL)
    return rt.experiment_specs.get((raw["metadata"]["namespace"], name)) if name else None


async def _read_last_progress(rt: Runtime, raw: Body, trial: Trial, pods: list[Body], experiment: Experiment) -> None:
    """Before a running trial is stopped, the progress it printed since the last read goes into its curve."""
    namespace = raw["metadata"]["namespace"]
    known = rt.pods.get((namespace, raw["metadata"]["name"]))
    running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
    chosen = next(((p["metadata"]["name"], known[1]) for p in running if known and p["metadata"]["name"] == known[0]),
                  None) or next(((p["metadata"]["name"], main_container(p)) for p in running), None)
    if chosen is None:
        return
    points, cursor = await final_points(rt, namespace, chosen[0], chosen[1], trial.status, experiment)
    if points:
        await write_trial(rt, raw, lambda status: merged(status, experiment, points, cursor))


async def create_job(rt: Runtime, raw: Body, trial: Trial, experiment: Experiment) -> None:
    """Create the Trial's Job (AlreadyExists is success), then record that it was made."""
    namespace = raw["metadata"]["namespace"]
    try:
        manifest = render_job(experiment, trial)
    except RenderError as err:
        await finish(rt, raw, experiment, outcomes.Ended(TrialReason.INVALID_TEMPLATE, str(err)))
        return
    manifest["metadata"]["ownerReferences"] = [owner_reference(raw)]
    try:
        await rt.api.create(workload_resource(experiment.spec.trial_template), namespace, manifest)
    except ApiError as err:
        kind = manifest["kind"]
        if err.status in (400, 422):  # the API server refused the rendered Job: it never will accept it
            await finish(rt, raw, experiment,
                         outcomes.Ended(TrialReason.INVALID_TEMPLATE, f"the {kind} was rejected: {err.message}"))
            return
        if err.status == 404 and kind != "Job":  # the kind's CRD is not installed
            await finish(rt, raw, experiment, outcomes.Ended(
                TrialReason.INVALID_TEMPLATE, f"this cluster does not serve {kind} ({manifest['apiVersion']}): "
                                              f"install its controller and CRD first ({err.message})"))
            return
        if not err.already_exists:
            raise
    now = now_rfc3339()
    await write_trial(rt, raw, lambda status: outcomes.started(status, now))


async def _mark_running(rt: Runtime, raw: Body, trial: Trial) -> None:
    if trial.status.phase is TrialPhase.RUNNING:
        return
    now = now_rfc3339()
    if await write_trial(rt, raw, lambda status: outcomes.running(status, now)) is not None:
        rt.events.on_trial(raw, Event("Normal", "TrialStarted", f"trial {trial.metadata.name} is running"))


async def finish(rt: Runtime, raw: Body, experiment: Experiment, observed: outcomes.Observation, *,
                 points: list[CurvePoint] | None = None, cursor: str | None = None) -> bool:
    """Record a finished Trial (once: a Trial that finished meanwhile is left as it is).

    ``points``: the last progress lines, read at harvest, merged into the curve in the same write.
    """
    spec = experiment.spec
    now = now_rfc3339()

    def judged(status: TrialStatus) -> TrialStatus:
        status = merged(status, experiment, points or [], cursor)
        return outcomes.judge(objective=spec.objective, source=spec.metrics_source, status=status,
                              observed=observed, now=now)

    written = await write_trial(rt, raw, judged)
    if written is None:
        return False
    final = TrialStatus.model_validate(without_kopf(written).get("status") or {})
    rt.pods.pop((raw["metadata"]["namespace"], raw["metadata"]["name"]), None)
    reason = final.reason.value if final.reason else ""
    rt.metrics.trials_finished.labels(phase=final.phase.value, reason=reason).inc()
    rt.events.on_trial(written, trial_event(raw["metadata"]["name"], final))
    return True


def replay_events(rt: Runtime, body: Body, trial: Trial) -> None:
    """Post again the Events a Trial's state stands for (see :mod:`kubetune.kube.events`)."""
    rt.events.on_owner(body, created_event(trial.metadata.name, trial.spec.params))
    if trial.status.phase is TrialPhase.RUNNING:
        rt.events.on_trial(body, Event("Normal", "TrialStarted", f"trial {trial.metadata.name} is running"))
    elif trial.status.phase.finished:
        rt.events.on_trial(body, trial_event(trial.metadata.name, trial.status))


def trial_event(name: str, status: TrialStatus) -> Event:
    """The Event a finished trial gets, by how it ended."""
    if status.phase is TrialPhase.SUCCEEDED:
        return Event("Normal", "TrialSucceeded", f"trial {name} succeeded: {status.message}")
    if status.phase is TrialPhase.EARLY_STOPPED:
        return Event("Normal", "TrialEarlyStopped", f"trial {name} {status.message}")
    if status.phase is TrialPhase.KILLED:
        return Event("Normal", "TrialKilled", f"trial {name} stopped: {status.message}")
    return Event("Warning", "TrialFailed", f"trial {name} failed ({status.reason}): {status.message}")


async def request_stop(rt: Runtime, raw: Body, request: StopRequest) -> None:
    """Record a stop request on an active Trial; its own pass then stops it (see the module docstring)."""
    written = await write_trial(rt, raw, lambda status: outcomes.stop_requested(status, request))
    if written is not None:
        namespace, name = raw["metadata"]["namespace"], raw["metadata"]["name"]
        await rt.trials.run((namespace, name), functools.partial(sync_trial, rt, namespace, name))


async def record_rungs(rt: Runtime, raw: Body, rungs: list[Rung]) -> None:
    """Record the asha rungs an active Trial passed (what it is never judged at again)."""
    await write_trial(rt, raw, lambda status: status.model_copy(update={"rungs": rungs}))


def trial_manifest(experiment: Body, name: str, index: int, params: dict[str, Any]) -> Body:
    """A new Trial owned by its Experiment, labelled with the experiment's name."""
    return {
        "apiVersion": experiment["apiVersion"],
        "kind": "Trial",
        "metadata": {
            "name": name,
            "namespace": experiment["metadata"]["namespace"],
            "labels": {EXPERIMENT_LABEL: experiment["metadata"]["name"]},
            "ownerReferences": [owner_reference(experiment)],
        },
        "spec": {"index": index, "params": params},
    }
