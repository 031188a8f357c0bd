"""The safety net: every so often, run the passes of every unfinished Experiment and Trial.

Watch events drive the operator; this loop only catches what they missed (a pass that raised, an
event lost while a watch reconnected) and enforces the unschedulable deadline. It is one task
listing each kind once per round, rather than a kopf timer per object: kopf timers put a finalizer
on every object they run for, which would cost a write per Trial and block deletions while the
operator is down.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable

from kubetune.api import TrialPhase
from kubetune.kube import experiments, trials
from kubetune.kube.client import EXPERIMENTS, TRIALS, Body
from kubetune.kube.runtime import Runtime

log = logging.getLogger(__name__)

#: Unfinished Trials are re-checked every this many experiment rounds (OperatorConfig.resync_seconds).
TRIAL_ROUNDS = 2
TERMINAL_EXPERIMENT = ("Succeeded", "Failed")
TERMINAL_TRIAL = tuple(p.value for p in TrialPhase if p.finished)


async def _list(rt: Runtime, kind: str) -> list[Body]:
    resource = EXPERIMENTS if kind == "experiments" else TRIALS
    if not rt.config.namespaces:
        return await rt.api.list(resource, None)
    found: list[Body] = []
    for namespace in rt.config.namespaces:
        found += await rt.api.list(resource, namespace)
    return found


def _phase(body: Body) -> str | None:
    phase = (body.get("status") or {}).get("phase")
    return str(phase) if phase else None


async def _guarded(rt: Runtime, kind: str, coroutine: Awaitable[object]) -> None:
    try:
        await coroutine
    except Exception:
        rt.metrics.reconcile_errors.labels(kind=kind).inc()
        log.exception("resync of a %s failed", kind)


async def resync_round(rt: Runtime, *, with_trials: bool) -> None:
    for body in await _list(rt, "experiments"):
        if _phase(body) not in TERMINAL_EXPERIMENT:
            meta = body["metadata"]
            await _guarded(rt, "experiment", experiments.reconcile(rt, meta["namespace"], meta["name"]))
    if not with_trials:
        return
    for body in await _list(rt, "trials"):
        if _phase(body) not in TERMINAL_TRIAL:
            meta = body["metadata"]
            namespace, name = meta["namespace"], meta["name"]
            step = functools.partial(trials.sync_trial, rt, namespace, name)
            await _guarded(rt, "trial", rt.trials.run((namespace, name), step))


async def resync_forever(rt: Runtime) -> None:
    rounds = 0
    while True:
        await asyncio.sleep(rt.config.resync_seconds)
        rounds += 1
        try:
            await resync_round(rt, with_trials=rounds % TRIAL_ROUNDS == 0)
        except Exception:
            rt.metrics.reconcile_errors.labels(kind="resync").inc()
            log.exception("resync round failed")
