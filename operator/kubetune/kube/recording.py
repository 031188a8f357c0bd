"""Writing a Trial's status on the cluster: parse what the API server holds, change it, write it back.

The operator has two writers of a Trial's status (the Trial's own pass and progress reader: start,
curve, outcome; the Experiment's pass: stop requests, rungs). Each writes through
:func:`write_trial`, which hands the *current* status to a pure change function from
:mod:`kubetune.outcomes` and, after a conflict, hands it the fresh status again, so neither writer
ever reverts the other's fields, and a finished Trial is never written again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pydantic import ValidationError

from kubetune.api import EXPERIMENT_LABEL, FINISHED_PHASES, Experiment, Trial, TrialStatus
from kubetune.kube.client import EXPERIMENTS, TRIALS, Body
from kubetune.kube.patching import update_status, without_kopf
from kubetune.kube.runtime import Runtime

log = logging.getLogger(__name__)

_FINISHED = frozenset(p.value for p in FINISHED_PHASES)


def finished(body: Body) -> bool:
    """Whether a Trial, as the API server returns it, is finished."""
    return (body.get("status") or {}).get("phase") in _FINISHED


def parse_trial(body: Body) -> Trial | None:
    try:
        return Trial.model_validate(without_kopf(body))
    except ValidationError as err:
        log.warning("trial %s/%s is not a valid Trial, left alone: %s", body["metadata"].get("namespace"),
                    body["metadata"].get("name"), err)
        return None


async def experiment_of(rt: Runtime, trial: Body) -> Experiment | None:
    """The Experiment a Trial belongs to (its label), or None when it is gone or invalid.

    An invalid one is left to the Experiment's own pass, which marks it Failed (InvalidSpec).
    """
    name = (trial["metadata"].get("labels") or {}).get(EXPERIMENT_LABEL)
    if not name:
        return None
    raw = await rt.api.get(EXPERIMENTS, trial["metadata"]["namespace"], name)
    if raw is None:
        return None
    try:
        return Experiment.model_validate(without_kopf(raw))
    except ValidationError:
        return None


async def write_trial(rt: Runtime, body: Body, change: Callable[[TrialStatus], TrialStatus]) -> Body | None:
    """Write ``change(status)`` to an unfinished Trial's status; None when nothing was written."""

    def wanted(current: Body) -> Body | None:
        if finished(current):
            return None
        trial = parse_trial(current)
        return None if trial is None else change(trial.status).to_wire()

    return await update_status(rt.api, TRIALS, body, wanted)
