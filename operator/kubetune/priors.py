"""What the suggester is given before, or beside, its own suggestions: the spec's ``initialPoints``
(run first, in order; a partial point is completed by the suggester) and ``warmStart``'s prior
observations (the finished trials of earlier Experiments, where they fit this space).

Pure, as :mod:`kubetune.lifecycle` that calls it: the runners only find the sources
(:class:`PriorSource`: the Trials of an Experiment on the cluster, a state file locally).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kubetune.api import Experiment, ExperimentSpec, Params, Trial, WarmStartSource, WarmStartStatus
from kubetune.observations import prior_observations as read_prior
from kubetune.space import Space, SpaceError
from kubetune.suggest import Observation


@dataclass(frozen=True)
class PriorSource:
    """A warm-start source as the runner found it: its trials, or None and why it is missing."""

    experiment: str
    trials: Sequence[Trial] | None
    missing: str = ""


def warm_start(experiment: Experiment, space: Space, sources: Sequence[PriorSource]) -> tuple[
        list[Observation], WarmStartStatus | None]:
    """The prior observations of ``spec.warmStart`` and what the status says of them."""
    if experiment.spec.warm_start is None:
        return [], None
    observations: list[Observation] = []
    used: list[WarmStartSource] = []
    missing: list[str] = []
    found = {s.experiment: s for s in sources}
    for name in experiment.spec.warm_start.experiments:
        source = found.get(name)
        if source is None or source.trials is None:
            missing.append(source.missing if source is not None and source.missing else name)
            continue
        prior = read_prior(space, source.trials, experiment)
        observations.extend(prior)
        used.append(WarmStartSource(experiment=name, observations=len(prior)))
    return observations, WarmStartStatus(observations=len(observations), sources=used, missing=missing)


def initial_slots(spec: ExperimentSpec, space: Space, next_index: int, wanted: int) -> list[Params | None]:
    """The next ``wanted`` trials' given values: trial ``i`` runs ``initialPoints[i]`` (complete, or
    the values to fix in a suggested point); None where the suggester alone decides.

    Decided by the index alone, so a batch, a restart or one trial at a time all give trial ``i``
    the same point. A point that no longer fits the space (the spec changed) is left to the suggester.
    """
    points = spec.initial_points or []
    slots: list[Params | None] = []
    for index in range(next_index, next_index + wanted):
        point = points[index] if index < len(points) else None
        if point is not None:
            try:
                point = {d.name: d.validate(point[d.name]) for d in space.dimensions if d.name in point}
            except SpaceError:
                point = None
        slots.append(point)
    return slots


def fill_slots(slots: Sequence[Params | None], suggested: Sequence[Params], space: Space) -> list[Params]:
    """Each slot's assignment: a complete given point as it is, a partial one merged into the next
    suggestion, an empty slot the next suggestion. Stops at the first slot no suggestion is left for."""
    out: list[Params] = []
    queue = iter(suggested)
    for given in slots:
        if given is not None and space.is_complete(given):
            out.append(dict(given))
            continue
        proposal = next(queue, None)
        if proposal is None:
            break
        out.append({**proposal, **(given or {})})
    return out
