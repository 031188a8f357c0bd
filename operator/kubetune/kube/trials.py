"""A Trial's life on the cluster: create its Job, follow its pod, record its outcome.

:func:`sync_trial` is one level-based pass over one Trial: read the Trial, its Job and the Job's
pods, let :func:`kubetune.kube.classification.classify` decide, do that one thing. Every step is
idempotent (deterministic Job name, AlreadyExists is success, status writes guarded by the
resourceVersion), so a pass repeated after a crash or a duplicate event does no harm.

``status.startTime`` is written right after the Job is created and marks "a Job was made": a
started Trial whose Job is missing failed with JobDeleted, it is never run again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from pydantic import ValidationError

from kubetune.api import (
    EXPERIMENT_LABEL,
    TRIAL_LABEL,
    Experiment,
    Trial,
    TrialPhase,
    TrialStatus,
    now_rfc3339,
)
from kubetune.kube.classification import CreateJob, Fail, Harvest, MarkRunning, Wait, classify, needs_log
from kubetune.kube.client import EXPERIMENTS, JOBS, PODS, TRIALS, ApiError, Body
from kubetune.kube.patching import without_kopf, write_status
from kubetune.kube.runtime import Runtime
from kubetune.lifecycle import Event
from kubetune.metrics import Outcome, harvest
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


def _finished(body: Body) -> bool:
    phase = (body.get("status") or {}).get("phase")
    return phase in (TrialPhase.SUCCEEDED, TrialPhase.FAILED, TrialPhase.KILLED)


async def _experiment(rt: Runtime, namespace: str, trial: Body) -> Experiment | None:
    name = (trial["metadata"].get("labels") or {}).get(EXPERIMENT_LABEL)
    if not name:
        return None
    raw = await rt.api.get(EXPERIMENTS, namespace, name)
    if raw is None:
        return None
    try:
        return Experiment.model_validate(without_kopf(raw))
    except ValidationError:
        return None  # the experiment's own pass marks it Failed (InvalidSpec)


async def sync_trial(rt: Runtime, namespace: str, name: str, *, body: Body | None = None,
                     experiment: Experiment | None = None) -> None:
    """One pass over one Trial; see the module docstring. ``body``/``experiment`` save a read."""
    raw = body if body is not None else await rt.api.get(TRIALS, namespace, name)
    if raw is None or raw["metadata"].get("deletionTimestamp") or _finished(raw):
        return
    try:
        trial = Trial.model_validate(without_kopf(raw))
    except ValidationError as err:
        log.warning("trial %s/%s is not a valid Trial, left alone: %s", namespace, name, err)
        return
    job, pods = await asyncio.gather(rt.api.get(JOBS, namespace, name),
                                     rt.api.list(PODS, namespace, selector=f"{TRIAL_LABEL}={name}"))
    now = dt.datetime.now(dt.UTC)
    step = classify(trial, job, pods, now=now, unschedulable_after=rt.unschedulable_after)
    if isinstance(step, Wait):
        return
    if isinstance(step, CreateJob):
        experiment = experiment or await _experiment(rt, namespace, raw)
        if experiment is not None:
            await create_job(rt, raw, trial, experiment)
        return
    if isinstance(step, MarkRunning):
        await _mark_running(rt, raw, trial)
        return
    if isinstance(step, Fail):
        await finish(rt, raw, trial, Outcome(False, step.reason, step.message), delete_job=step.delete_job)
        return
    if isinstance(step, Harvest):
        experiment = experiment or await _experiment(rt, namespace, raw)
        if experiment is None:
            return
        spec = experiment.spec
        output = None
        if needs_log(spec.metrics_source, step.exit_code, step.report):
            output = await rt.api.read_log(namespace, step.pod, step.container, limit_bytes=LOG_LIMIT_BYTES)
        outcome = harvest(objective=spec.objective, source=spec.metrics_source, exit_code=step.exit_code,
                          report=step.report, output=output)
        await finish(rt, raw, trial, outcome)


async def create_job(rt: Runtime, raw: Body, trial: Trial, experiment: Experiment) -> None:
    """Create the Trial's Job (AlreadyExists is success), then record that it was made."""
    namespace = raw["metadata"]["namespace"]
    try:
        manifest = render_job(experiment, trial)
    except RenderError as err:
        await finish(rt, raw, trial, Outcome(False, "InvalidTemplate", str(err)))
        return
    manifest["metadata"]["ownerReferences"] = [owner_reference(raw)]
    try:
        await rt.api.create(JOBS, namespace, manifest)
    except ApiError as err:
        if err.status in (400, 422):  # the API server refused the rendered Job: it never will accept it
            await finish(rt, raw, trial, Outcome(False, "InvalidTemplate", f"the Job was rejected: {err.message}"))
            return
        if not err.already_exists:
            raise
    status = trial.status.model_copy(update={"start_time": trial.status.start_time or now_rfc3339()})
    await write_status(rt.api, TRIALS, raw, status.to_wire(), unless=_finished)


async def _mark_running(rt: Runtime, raw: Body, trial: Trial) -> None:
    if trial.status.phase is TrialPhase.RUNNING:
        return
    status = trial.status.model_copy(update={
        "phase": TrialPhase.RUNNING, "start_time": trial.status.start_time or now_rfc3339()})
    if await write_status(rt.api, TRIALS, raw, status.to_wire(), unless=_finished) is not None:
        rt.events.on_trial(raw, Event("Normal", "TrialStarted", f"trial {trial.metadata.name} is running"))


async def finish(rt: Runtime, raw: Body, trial: Trial, outcome: Outcome, *, delete_job: bool = False,
                 phase: TrialPhase | None = None) -> bool:
    """Record a finished Trial (once: a Trial that finished meanwhile is left as it is)."""
    phase = phase or (TrialPhase.SUCCEEDED if outcome.succeeded else TrialPhase.FAILED)
    now = now_rfc3339()
    status = TrialStatus(
        phase=phase, metrics=outcome.metrics, objective_value=outcome.objective_value,
        reason=outcome.reason, message=outcome.message,
        start_time=trial.status.start_time or now, completion_time=now,
    )
    written = await write_status(rt.api, TRIALS, raw, status.to_wire(), unless=_finished)
    if delete_job:
        await rt.api.delete(JOBS, raw["metadata"]["namespace"], raw["metadata"]["name"])
    if written is None:
        return False
    rt.metrics.trials_finished.labels(phase=phase.value, reason=outcome.reason).inc()
    name = trial.metadata.name
    if phase is TrialPhase.SUCCEEDED:
        event = Event("Normal", "TrialSucceeded", f"trial {name} succeeded: {outcome.message}")
    elif phase is TrialPhase.KILLED:
        event = Event("Normal", "TrialKilled", f"trial {name} stopped: {outcome.message}")
    else:
        event = Event("Warning", "TrialFailed", f"trial {name} failed ({outcome.reason}): {outcome.message}")
    rt.events.on_trial(written, event)
    return True


async def kill_trial(rt: Runtime, raw: Body) -> None:
    """Stop an active Trial because its experiment ended: Killed first, then its Job goes."""
    try:
        trial = Trial.model_validate(without_kopf(raw))
    except ValidationError:
        return
    outcome = Outcome(False, "ExperimentFinished", "stopped because the experiment ended")
    await finish(rt, raw, trial, outcome, phase=TrialPhase.KILLED)
    await rt.api.delete(JOBS, raw["metadata"]["namespace"], raw["metadata"]["name"])


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
