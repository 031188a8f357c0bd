"""The suggester interface: what every search algorithm receives and returns.

Purely data: no I/O, no Kubernetes. A suggester is a pure function of a :class:`SuggestRequest`;
the same request gives the same :class:`Suggestion`. Objectives arrive as *losses* (smaller is
better; the lifecycle negates maximized metrics), failed trials as observations without a loss.

Notation used across ``suggest/``:
    d   number of parameters (unit coordinates), ``space.dim``
    D   number of model features (categoricals one-hot), ``space.n_features``
    n   number of finished observations
    q   number of suggestions asked for (the batch)
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubetune.api import Params, SettingValue, settings_problems
from kubetune.space import Space


class SuggesterError(ValueError):
    """A request the suggester cannot serve: an unknown algorithm or bad settings."""


@dataclass(frozen=True)
class Observation:
    """A finished trial: its assignment and its loss, or ``loss=None`` when the trial failed.

    With several objectives (``spec.objective.additionalObjectives``) ``loss`` is the first and
    ``losses`` the others', in the spec's order (each a loss: smaller is better); empty with one
    objective, or where the trial reported only the first (an early-stopped one).
    """

    params: Params
    loss: float | None
    losses: tuple[float, ...] = ()
    #: With ``spec.objective.constraints``: the trial's value of each constrained metric, in the
    #: spec's order (None where it reported none); empty without constraints or for a failed trial.
    constraints: tuple[float | None, ...] = ()

    @property
    def failed(self) -> bool:
        return self.loss is None


@dataclass(frozen=True, kw_only=True)
class SuggestRequest:
    space: Space
    observations: Sequence[Observation]
    pending: Sequence[Params]
    n: int
    seed: int
    #: Index of the first trial this request will create; stateless designs (random, Sobol, grid)
    #: continue their sequence from here so successive calls never repeat each other.
    start_index: int
    state: Mapping[str, Any] = field(default_factory=dict)
    settings: Mapping[str, SettingValue] = field(default_factory=dict)
    #: ``(min, max)`` of each constraint (None: unbounded on that side), in the order of each
    #: observation's ``constraints``; empty without constraints.
    constraints: Sequence[tuple[float | None, float | None]] = ()
    #: The first ``prior`` observations are not this experiment's trials but warm-start ones from
    #: earlier experiments: a design that covers the space can be shorter by as many.
    prior: int = 0

    def feasible(self, observation: Observation) -> bool:
        """Whether a finished observation keeps every constraint (a failed one never does)."""
        if observation.loss is None:
            return False
        for (lo, hi), value in zip(self.constraints, observation.constraints or [None] * len(self.constraints),
                                   strict=True):
            if value is None or (lo is not None and not value >= lo) or (hi is not None and not value <= hi):
                return False
        return True


@dataclass(frozen=True)
class Suggestion:
    """Up to ``n`` new assignments (fewer when the space is exhausted) and the state to keep.

    ``state`` must stay small (a few KB whatever the number of observations) and JSON-ready: it is
    stored in the Experiment's status and handed back in the next request.
    """

    params: list[Params]
    state: dict[str, Any] = field(default_factory=dict)


class Suggester(Protocol):
    """A search algorithm."""

    name: str

    def check_settings(self, settings: Mapping[str, SettingValue], space: Space) -> None:
        """Raise :class:`SuggesterError` naming any unknown or invalid setting."""

    def suggest(self, request: SuggestRequest) -> Suggestion:
        """Return up to ``request.n`` assignments, none equal to an observed or pending one when avoidable."""


def tried_keys(request: SuggestRequest) -> set[Hashable]:
    """Identities of every observed and pending assignment: what a new suggestion must not repeat."""
    keys: set[Hashable] = {request.space.key(o.params) for o in request.observations}
    keys |= {request.space.key(p) for p in request.pending}
    return keys


def check_table_settings(name: str, settings: Mapping[str, SettingValue]) -> None:
    """Shared check against the settings table of :mod:`kubetune.api.settings` (validation did it
    once already; this guards a suggester called directly)."""
    problems = settings_problems(name, settings)
    if problems:
        raise SuggesterError("; ".join(problem for _, problem in problems))
