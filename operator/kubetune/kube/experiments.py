"""One reconcile pass over one Experiment: read, plan, execute, write the status once.

The pass is level-based (Katib's shape): it reads the Experiment and all its Trials, asks the pure
:func:`kubetune.lifecycle.plan` what to do (in a worker thread: fitting a GP can take seconds and
must not stall the other experiments), creates the new Trials and at once their Jobs (so the next
trial starts without waiting for another watch round trip), records a stop request on each Trial
to stop (early stopping, or the experiment's end; the Trial's own pass then stops it) and the asha
rungs passed, and writes the status only if it changed. Running it twice in a row decides the
same thing twice.

A spec the CRD schema let through but the pydantic models reject makes the Experiment Failed
with reason ``InvalidSpec`` and the validation message, once; it is not retried until it changes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import time

from pydantic import ValidationError

from kubetune import outcomes
from kubetune.api import (
    EXPERIMENT_LABEL,
    ConditionStatus,
    Experiment,
    ExperimentPhase,
    ExperimentStatus,
    Trial,
    now_rfc3339,
    parse_rfc3339,
    validation_problems,
)
from kubetune.kube import trials
from kubetune.kube.admission import kind_problem
from kubetune.kube.client import EXPERIMENTS, TRIALS, ApiError, Body
from kubetune.kube.events import REPLAY_SECONDS
from kubetune.kube.patching import without_kopf, write_status
from kubetune.kube.runtime import Runtime
from kubetune.lifecycle import (
    FAILED,
    INVALID_SPEC,
    RUNNING,
    Event,
    NewTrial,
    Plan,
    plan,
    set_condition,
    standing_events,
)
from kubetune.priors import PriorSource

log = logging.getLogger(__name__)


async def reconcile(rt: Runtime, namespace: str, name: str) -> None:
    """Run passes for the Experiment until no trigger is pending (one at a time per Experiment)."""
    await rt.experiments.run((namespace, name), functools.partial(reconcile_once, rt, namespace, name))


async def reconcile_once(rt: Runtime, namespace: str, name: str) -> None:
    started = time.monotonic()
    try:
        await _pass(rt, namespace, name)
    except Exception:
        rt.metrics.reconcile_errors.labels(kind="experiment").inc()
        raise
    finally:
        rt.metrics.reconcile_seconds.observe(time.monotonic() - started)


async def _pass(rt: Runtime, namespace: str, name: str) -> None:
    raw = await rt.api.get(EXPERIMENTS, namespace, name)
    if raw is None or raw["metadata"].get("deletionTimestamp"):
        rt.metrics.snapshot.forget(namespace, name)
        return  # its Trials, Jobs and pods go with it (owner references)
    try:
        experiment = Experiment.model_validate(without_kopf(raw))
    except ValidationError as err:
        await _invalid(rt, raw, validation_message(err))
        return
    not_enabled = kind_problem(experiment, rt.config.trial_kinds)
    if not_enabled is not None:
        await _invalid(rt, raw, not_enabled)
        return

    uid = raw["metadata"]["uid"]
    children = [t for t in await rt.api.list(TRIALS, namespace, selector=f"{EXPERIMENT_LABEL}={name}")
                if trials.owned_by(t, uid)]  # a namesake's leftovers, not yet collected, are not ours
    parsed: list[Trial] = []
    for body in children:
        try:
            parsed.append(Trial.model_validate(without_kopf(body)))
        except ValidationError as err:
            log.warning("trial %s/%s is not a valid Trial, ignored: %s", namespace, body["metadata"]["name"], err)

    prior = await _warm_start_sources(rt, namespace, experiment)
    started = time.monotonic()
    loop = asyncio.get_running_loop()
    decision: Plan = await loop.run_in_executor(
        rt.plans, functools.partial(plan, experiment, parsed, now=now_rfc3339(), prior=prior))
    rt.metrics.plan_seconds.observe(time.monotonic() - started)

    rt.early_stopping[(namespace, name)] = experiment.spec.early_stopping is not None
    rt.experiment_specs[(namespace, name)] = experiment
    if decision.create:
        await asyncio.gather(*(_start(rt, raw, experiment, new) for new in decision.create))
    by_name = {t["metadata"]["name"]: t for t in children}
    now = now_rfc3339()
    requests = outcomes.stop_requests(decision.stop, decision.kill, now)
    await asyncio.gather(
        *(trials.record_rungs(rt, by_name[n], rungs) for n, rungs in decision.rungs.items()
          if n in by_name and n not in requests),
        *(trials.request_stop(rt, by_name[n], request) for n, request in requests.items() if n in by_name))

    written = await write_status(rt.api, EXPERIMENTS, raw, decision.status.to_wire())
    for event in decision.events:
        rt.events.on_experiment(written or raw, event)
    if (namespace, name) not in rt.replayed:  # the first pass of this process: Events it may have lost
        rt.replayed.add((namespace, name))
        for event in standing_events(decision.status) if _recent(raw, decision.status) else []:
            rt.events.on_experiment(written or raw, event)
    rt.metrics.snapshot.update(namespace, name, decision.status.phase, decision.status.trials)


async def _warm_start_sources(rt: Runtime, namespace: str, experiment: Experiment) -> list[PriorSource]:
    """spec.warmStart's Experiments in this namespace, with their finished Trials (read every pass:
    a source that appears later is used from then on)."""
    if experiment.spec.warm_start is None:
        return []
    sources = []
    for source in experiment.spec.warm_start.experiments:
        body = await rt.api.get(EXPERIMENTS, namespace, source)
        if body is None:
            sources.append(PriorSource(source, None, f"no Experiment {source} in namespace {namespace}"))
            continue
        uid = body["metadata"]["uid"]
        found = []
        for item in await rt.api.list(TRIALS, namespace, selector=f"{EXPERIMENT_LABEL}={source}"):
            if not trials.owned_by(item, uid):
                continue
            try:
                trial = Trial.model_validate(without_kopf(item))
            except ValidationError:
                continue
            if trial.status.phase.finished:
                found.append(trial)
        sources.append(PriorSource(source, found))
    return sources


async def _start(rt: Runtime, raw: Body, experiment: Experiment, new: NewTrial) -> None:
    """Create a Trial and its Job. An existing Trial of that name is success (a pass repeated)."""
    namespace = raw["metadata"]["namespace"]
    manifest = trials.trial_manifest(raw, new.name, new.index, dict(new.params))
    try:
        body = await rt.api.create(TRIALS, namespace, manifest)
    except ApiError as err:
        if err.already_exists:
            return  # made by an earlier pass; its own events bring its Job
        if (err.status == 403 and "being terminated" in err.message) or (
                err.not_found and "namespaces" in err.message):
            return  # the namespace is going (or gone), and the Experiment with it
        raise
    rt.metrics.trials_created.inc()
    await rt.trials.run((namespace, new.name), functools.partial(
        trials.sync_trial, rt, namespace, new.name, body=body, experiment=experiment))


def _recent(raw: Body, status: ExperimentStatus) -> bool:
    """Created or finished within the Events' lifetime (older Events are gone; none is posted again)."""
    moments = [parse_rfc3339(raw["metadata"].get("creationTimestamp")), parse_rfc3339(status.completion_time)]
    newest = max((m for m in moments if m is not None), default=None)
    return newest is not None and (dt.datetime.now(dt.UTC) - newest).total_seconds() < REPLAY_SECONDS


def validation_message(err: ValidationError) -> str:
    """pydantic's errors as ``field.path: message``, joined on one line for a condition message."""
    return "; ".join(validation_problems(err))[:1000]


async def _invalid(rt: Runtime, raw: Body, message: str) -> None:
    """Mark the Experiment Failed/InvalidSpec (once); trials already running are left to finish."""
    try:
        old = ExperimentStatus.model_validate(without_kopf(raw).get("status") or {})
    except ValidationError:
        old = ExperimentStatus()
    now = now_rfc3339()
    generation = raw["metadata"].get("generation")
    conditions = set_condition(old.conditions, FAILED, ConditionStatus.TRUE, INVALID_SPEC, message,
                               now=now, generation=generation)
    if any(c.type == RUNNING for c in conditions):
        conditions = set_condition(conditions, RUNNING, ConditionStatus.FALSE, INVALID_SPEC, message,
                                   now=now, generation=generation)
    status = old.model_copy(update={
        "phase": ExperimentPhase.FAILED, "conditions": conditions, "observed_generation": generation,
        "completion_time": old.completion_time or now,
    })
    written = await write_status(rt.api, EXPERIMENTS, raw, status.to_wire())
    if written is not None and old.phase is not ExperimentPhase.FAILED:
        rt.events.on_experiment(written, Event("Warning", INVALID_SPEC, message))
    rt.metrics.snapshot.update(raw["metadata"]["namespace"], raw["metadata"]["name"], status.phase, status.trials)
