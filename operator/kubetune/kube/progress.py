"""Learning curves on a cluster: the new part of each running trial's log, read into its Trial.

No sidecar, no database and no API credentials in the trial's pod: every ``progress_seconds``
(``KUBETUNE_PROGRESS_SECONDS``, 15 s by default) the operator asks the API server for the log of
each running trial's container *since* the Trial's ``status.logCursor``, with timestamps, at most
:data:`READ_LIMIT_BYTES` per read, and adds the progress lines it finds to ``status.curve``
(:mod:`kubetune.curves`), moving the cursor in the same write. A finished trial's last lines are
read once more when it is harvested (:func:`final_points`), so a trial shorter than the interval
has its whole curve too.

One read is one GET of ``pods/log`` and, when it found a point, one PATCH of the Trial's status;
a read that found nothing writes nothing. ``sinceTime`` has whole seconds on the way to the
kubelet, so a read returns the cursor's second again: lines at or before the cursor (timestamps
have nanoseconds) are dropped here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging

from kubetune import curves, outcomes
from kubetune.api import EXPERIMENT_LABEL, CurvePoint, Experiment, TrialPhase, TrialStatus
from kubetune.kube.recording import experiment_of, parse_trial, write_trial
from kubetune.kube.runtime import Runtime
from kubetune.stopping import rung_points

log = logging.getLogger(__name__)

#: The most of a log one periodic read takes (the next read goes on from there).
READ_LIMIT_BYTES = 64 << 10
#: The most a trial's final read takes.
FINAL_LIMIT_BYTES = 1 << 20
#: Reads running at once.
CONCURRENT_READS = 8

LogTime = tuple[int, int]  # (seconds since the epoch, nanoseconds)


def log_time(stamp: str) -> LogTime | None:
    """The instant of a log line's RFC 3339 timestamp, to the nanosecond (None when it is not one)."""
    base, _, rest = stamp.rstrip("Z").partition(".")
    try:
        moment = dt.datetime.fromisoformat(base).replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    digits = "".join(c for c in rest if c.isdigit())[:9]
    return int(moment.timestamp()), int(digits.ljust(9, "0")) if digits else 0


def format_log_time(moment: LogTime) -> str:
    seconds, nanos = moment
    base = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nanos:09d}Z"


def new_lines(text: str, cursor: str | None, *, full: bool) -> tuple[list[str], str | None]:
    """The lines of a timestamped log chunk after ``cursor``, and the cursor after them.

    Only complete lines are taken (the last one may still be being written). ``full``: the chunk
    was cut at the read limit; when it held nothing after the cursor (more than a limit's worth of
    output within one second), the cursor moves to the next second so reading goes on.
    """
    after = log_time(cursor) if cursor else None
    lines: list[str] = []
    last = cursor
    for raw in text.split("\n")[:-1]:
        stamp, _, line = raw.partition(" ")
        moment = log_time(stamp)
        if moment is None or (after is not None and moment <= after):
            continue
        lines.append(line)
        last = stamp
    if not lines and full and after is not None:
        last = format_log_time((after[0] + 1, 0))
    return lines, last


def _names(experiment: Experiment) -> list[str]:
    return experiment.spec.objective.metric_names


def _merge(status: TrialStatus, experiment: Experiment, points: list[CurvePoint],
           cursor: str | None) -> TrialStatus:
    steps = [p.step for p in [*status.curve, *points]]
    return outcomes.progressed(status, points, protect=rung_points(experiment.spec.early_stopping, steps),
                               cursor=cursor)


async def read_progress(rt: Runtime, namespace: str, name: str) -> None:
    """One periodic read of a running trial's log (see the module docstring)."""
    key = (namespace, name)
    pod = rt.pods.get(key)
    body = rt.trial_bodies.get(key)
    if pod is None or body is None:
        return
    trial = parse_trial(body)
    if trial is None or trial.status.phase is not TrialPhase.RUNNING:
        return
    experiment = rt.experiment_specs.get((namespace, (body["metadata"].get("labels") or {}).get(EXPERIMENT_LABEL)))
    if experiment is None:
        experiment = await experiment_of(rt, body)
        if experiment is None:
            return
    text = await rt.api.read_log_since(namespace, pod[0], pod[1], since=trial.status.log_cursor,
                                       limit_bytes=READ_LIMIT_BYTES)
    rt.metrics.log_reads.inc()
    full = len(text.encode()) >= READ_LIMIT_BYTES
    lines, cursor = new_lines(text, trial.status.log_cursor, full=full)
    points = curves.parse_points(lines, _names(experiment), after=trial.status.last_step)
    if not points and not (full and cursor != trial.status.log_cursor):
        return
    chosen = experiment
    await write_trial(rt, body, lambda status: _merge(status, chosen, points, cursor))


async def final_points(rt: Runtime, namespace: str, pod: str, container: str, status: TrialStatus,
                       experiment: Experiment) -> tuple[list[CurvePoint], str | None]:
    """The progress points a finished trial printed after the last periodic read, and the cursor after them."""
    text = await rt.api.read_log_since(namespace, pod, container, since=status.log_cursor,
                                       limit_bytes=FINAL_LIMIT_BYTES)
    lines, cursor = new_lines(text + ("" if text.endswith("\n") or not text else "\n"), status.log_cursor,
                              full=False)
    return curves.parse_points(lines, _names(experiment), after=status.last_step), cursor


def merged(status: TrialStatus, experiment: Experiment, points: list[CurvePoint], cursor: str | None) -> TrialStatus:
    return _merge(status, experiment, points, cursor) if points else status


async def progress_round(rt: Runtime) -> None:
    """Read every running trial's log once (a few at a time)."""
    gate = asyncio.Semaphore(CONCURRENT_READS)

    async def one(key: tuple[str, str]) -> None:
        async with gate:
            try:
                await rt.progress.run(key, functools.partial(read_progress, rt, key[0], key[1]))
            except Exception:
                rt.metrics.reconcile_errors.labels(kind="progress").inc()
                log.exception("reading the progress of trial %s/%s failed", *key)

    running = [key for key, phase in list(rt.trial_phases.items()) if phase is TrialPhase.RUNNING and key in rt.pods]
    await asyncio.gather(*(one(key) for key in running))


async def progress_forever(rt: Runtime) -> None:
    while True:
        await asyncio.sleep(rt.config.progress_seconds)
        try:
            await progress_round(rt)
        except Exception:
            log.exception("progress round failed")
