"""kopf registration: which watch events run which pass. No decisions here.

Experiments
  create / update (spec) / resume → :func:`experiments.reconcile` (retries declared, progress in
  ``status.kopf.progress``, diff base in the ``kubetune.io/last-handled-configuration``
  annotation).
Trials
  a watch event that changes what the Trial's own pass acts on (phase, start, a stop request; or
  the first event seen) → that pass (:func:`trials.sync_trial`) while it is unfinished; when its
  phase changed, or its curve got a new step and its Experiment stops trials early, the
  Experiment's pass: a finished trial is followed by the next one within one watch round trip,
  and a trial behind the others is stopped as soon as its curve shows it.
Jobs and pods labelled ``kubetune.io/trial`` (a server-side label selector)
  every watch event → the owning Trial's pass: Running when the pod runs, harvest when it ends,
  JobDeleted when the Job goes.

Background tasks
  the safety net (:mod:`.resyncing`) re-runs the passes of unfinished Experiments every 30 s and
  of unfinished Trials every 60 s; the progress reader (:mod:`.progress`) reads the new part of
  each running trial's log every 15 s. Not kopf timers: those add a finalizer per object.

Handlers never return values (they would land in the status); they write status explicitly.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from kubetune.api import (
    EXPERIMENT_LABEL,
    GROUP,
    TRIAL_LABEL,
    VERSION,
    WORKLOADS,
    TrialPhase,
    WorkloadKind,
    parse_rfc3339,
)
from kubetune.kube import admission, experiments, progress, resyncing, trials
from kubetune.kube.client import KubeApi, load_configuration
from kubetune.kube.events import REPLAY_SECONDS, EventPoster
from kubetune.kube.metrics import OperatorMetrics, serve
from kubetune.kube.recording import parse_trial
from kubetune.kube.runtime import OperatorConfig, Runtime

log = logging.getLogger(__name__)



def configure(settings: kopf.OperatorSettings, config: OperatorConfig) -> None:
    """kopf's settings, explicit: where state is kept, how events are posted, how watches behave.

    ``config.namespaces``: the ones watched (none: the whole cluster); ``config.trial_kinds``: the
    trial workload kinds enabled beyond Job (see :func:`watch_workloads`); ``config.webhook_port``:
    the admission webhook's server (see :func:`validate_experiments`).
    """
    namespaces, kinds = config.namespaces, config.trial_kinds
    # Handler progress in status.kopf (kept by the CRD schema, so never pruned); cleared on success.
    settings.persistence.progress_storage = kopf.StatusProgressStorage(field="status.kopf.progress")
    # The last handled spec (for on.update diffs) in one annotation, replaced on every change.
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="kubetune.io", key="last-handled-configuration")
    # No deletion handlers, daemons or timers: kopf never adds this finalizer.
    settings.persistence.finalizer = "kubetune.io/finalizer"
    # Events: ours through our EventPoster (events.py); kopf posts only its own warnings and errors.
    settings.posting.enabled = True
    settings.posting.level = logging.WARNING
    # Watches: the server closes a stream after ~5 min, the client gives up slightly later.
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    settings.watching.connect_timeout = 10
    settings.watching.reconnect_backoff = 1.0
    # Only the Jobs and pods of trials are streamed, not every pod of the cluster.
    settings.watching.label_selectors["batch", "jobs"] = TRIAL_LABEL
    settings.watching.label_selectors["", "pods"] = TRIAL_LABEL
    for kind in kinds:
        workload = WORKLOADS[WorkloadKind(kind)]
        settings.watching.label_selectors[workload.group, workload.plural] = TRIAL_LABEL
    # One replica (Deployment strategy Recreate): no peering.
    settings.peering.standalone = True
    settings.peering.mandatory = False
    # Watching named namespaces needs no cluster-wide scan for namespaces and CRDs, which the
    # namespaced RBAC forbids (kopf would log "forbidden" for minutes). Patterns need the scan.
    if namespaces and not any(c in ns for ns in namespaces for c in "*?[!"):
        settings.scanning.disabled = True
    # The admission webhook: served over HTTPS with the chart's certificate (kopf re-reads the files
    # when the mounted Secret changes); the ValidatingWebhookConfiguration is the chart's, never
    # kopf's (managing it would need cluster-wide RBAC on webhook configurations).
    if config.webhook_port:
        certfile, pkeyfile = config.webhook_files
        settings.admission.server = kopf.WebhookServer(addr="0.0.0.0", port=config.webhook_port,
                                                       certfile=certfile, pkeyfile=pkeyfile)
        settings.admission.managed = None


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
    config: OperatorConfig = memo.get("config") or OperatorConfig.from_env()
    configure(settings, config)
    metrics = OperatorMetrics()
    serve(config.metrics_port)
    api = KubeApi(load_configuration(),
                  on_request=lambda verb, what: metrics.api_requests.labels(verb=verb, resource=what).inc())
    runtime = Runtime(
        api=api, config=config, metrics=metrics, events=EventPoster(api),
        plans=ThreadPoolExecutor(max_workers=config.plan_workers, thread_name_prefix="kubetune-plan"),
    )
    runtime.tasks = [asyncio.create_task(runtime.events.run(), name="kubetune events"),
                     asyncio.create_task(resyncing.resync_forever(runtime), name="kubetune resync"),
                     asyncio.create_task(progress.progress_forever(runtime), name="kubetune progress")]
    memo["runtime"] = runtime


@kopf.on.cleanup()
async def cleanup(memo: Any, **_: Any) -> None:
    runtime: Runtime | None = memo.get("runtime")
    if runtime is not None:
        for task in runtime.tasks:
            task.cancel()
        await asyncio.gather(*runtime.tasks, return_exceptions=True)
        await runtime.api.close()
        runtime.plans.shutdown(wait=False, cancel_futures=True)


# --- Experiments -------------------------------------------------------------------------------


@kopf.on.resume(GROUP, VERSION, "experiments", retries=None, backoff=5)
@kopf.on.create(GROUP, VERSION, "experiments", retries=None, backoff=5)
@kopf.on.update(GROUP, VERSION, "experiments", field="spec", retries=None, backoff=5)
async def experiment_changed(namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    await experiments.reconcile(memo["runtime"], namespace or "", name)


@kopf.on.event(GROUP, VERSION, "experiments")
async def experiment_event(event: kopf.RawEvent, namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    if event["type"] == "DELETED":
        rt: Runtime = memo["runtime"]
        rt.metrics.snapshot.forget(namespace or "", name)
        for index in (rt.early_stopping, rt.experiment_specs):
            index.pop((namespace or "", name), None)
        rt.replayed.discard((namespace or "", name))


# --- Trials ------------------------------------------------------------------------------------


def young(body: Any) -> bool:
    """Created less than the Events' lifetime ago (its Events, if any were lost, are worth posting)."""
    created = parse_rfc3339(body["metadata"].get("creationTimestamp"))
    return created is not None and (dt.datetime.now(dt.UTC) - created).total_seconds() < REPLAY_SECONDS



@kopf.on.event(GROUP, VERSION, "trials")
async def trial_event(event: kopf.RawEvent, body: kopf.Body, namespace: str | None, name: str,
                      labels: kopf.Labels, memo: Any, **_: Any) -> None:
    rt: Runtime = memo["runtime"]
    namespace = namespace or ""
    key = (namespace, name)
    experiment = labels.get(EXPERIMENT_LABEL)
    if event["type"] == "DELETED":
        for index in (rt.trial_phases, rt.trial_signatures, rt.trial_steps, rt.trial_bodies, rt.pods):
            index.pop(key, None)
        if experiment:
            await experiments.reconcile(rt, namespace, experiment)
        return
    status = body.get("status") or {}
    phase = TrialPhase(status.get("phase") or TrialPhase.PENDING)
    if key not in rt.trial_phases and young(body):  # first seen by this process: Events it may have lost
        trial = parse_trial(dict(body))
        if trial is not None:
            trials.replay_events(rt, dict(body), trial)
    curve = status.get("curve") or []
    step = curve[-1].get("step") if curve else None
    signature = (phase, status.get("startTime"), bool(status.get("stop")), status.get("retries"),
                 status.get("attemptTime"), status.get("queued"))
    phase_changed = rt.trial_phases.get(key) is not phase
    stepped = key in rt.trial_steps and rt.trial_steps[key] != step
    rt.trial_phases[key], rt.trial_steps[key] = phase, step
    if phase.finished:
        rt.trial_bodies.pop(key, None)
        rt.pods.pop(key, None)
    else:
        rt.trial_bodies[key] = dict(body)
    if experiment and (phase_changed or (stepped and rt.early_stopping.get((namespace, experiment), True))):
        await experiments.reconcile(rt, namespace, experiment)
    if not phase.finished and rt.trial_signatures.get(key) != signature:
        rt.trial_signatures[key] = signature
        await rt.trials.run(key, functools.partial(trials.sync_trial, rt, namespace, name))


# --- Jobs and pods of trials -------------------------------------------------------------------


async def _child_event(labels: kopf.Labels, namespace: str | None, memo: Any) -> None:
    rt: Runtime = memo["runtime"]
    trial = labels.get(TRIAL_LABEL)
    if not trial or not namespace or rt.trial_finished(namespace, trial):
        return
    await rt.trials.run((namespace, trial), functools.partial(trials.sync_trial, rt, namespace, trial))


@kopf.on.event("batch", "v1", "jobs", labels={TRIAL_LABEL: kopf.PRESENT})
async def job_event(labels: kopf.Labels, namespace: str | None, memo: Any, **_: Any) -> None:
    await _child_event(labels, namespace, memo)


@kopf.on.event("", "v1", "pods", labels={TRIAL_LABEL: kopf.PRESENT})
async def pod_event(labels: kopf.Labels, namespace: str | None, memo: Any, **_: Any) -> None:
    await _child_event(labels, namespace, memo)


async def workload_event(labels: kopf.Labels, namespace: str | None, memo: Any, **_: Any) -> None:
    await _child_event(labels, namespace, memo)


# --- Admission ---------------------------------------------------------------------------------


def validate_experiment(body: kopf.Body, memo: Any, **kwargs: Any) -> None:
    """kopf's validate handler (``operation`` and ``old`` come in ``kwargs``)."""
    config: OperatorConfig = memo.get("config") or OperatorConfig.from_env()
    old = kwargs.get("old")
    problems = admission.review(kwargs.get("operation"), dict(body), dict(old) if old is not None else None,
                                config.trial_kinds)
    if problems:
        raise kopf.AdmissionError(admission.message(problems), code=422)


def validate_experiments() -> None:
    """Serve the validating admission webhook of Experiments at ``/validate-experiment``.

    Called before kopf starts when ``--webhook-port`` is given: the handler exists only where its
    server does (kopf warns of admission handlers without a server).
    """
    kopf.on.validate(GROUP, VERSION, "experiments", id=admission.WEBHOOK_ID,
                     operations=["CREATE", "UPDATE"])(validate_experiment)


def watch_workloads(kinds: tuple[str, ...]) -> None:
    """Watch the enabled workload kinds beyond Job (JobSet, PyTorchJob) as Jobs are watched.

    Called before kopf starts, with ``KUBETUNE_TRIAL_KINDS``: a kind is watched only when enabled,
    as the chart's RBAC lets the operator read it only then.
    """
    for kind in kinds:
        workload = WORKLOADS[WorkloadKind(kind)]
        kopf.on.event(workload.group, workload.version, workload.plural, labels={TRIAL_LABEL: kopf.PRESENT},
                      id=f"workload_event/{workload.plural}")(workload_event)
