"""The ``Experiment``'s status: phase, conditions, trial counts, best trial, suggester state.

Purely declarative: no I/O. Everything here is recomputed from the Trials on every pass
(:func:`kubetune.lifecycle.plan`), except the suggester's state and the conditions' transition
times; it stays the same small size whatever the number of trials.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field

from kubetune.api.base import PRESERVE_UNKNOWN, Model, Params


class ExperimentPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SUSPENDED = "Suspended"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(Model):
    type: str
    status: ConditionStatus = Field(strict=False)
    reason: str
    message: str = ""
    last_transition_time: str
    observed_generation: int | None = None


class TrialCounts(Model):
    created: int = 0
    pending: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    killed: int = 0
    early_stopped: int = 0
    infeasible: int = Field(default=0, description="Succeeded trials that break a constraint (counted in succeeded).")
    queued: int = Field(default=0, description="Pending trials whose Job waits for a queue's quota (counted in "
                                               "pending).")

    @property
    def active(self) -> int:
        return self.pending + self.running

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed + self.killed + self.early_stopped


class BestTrial(Model):
    name: str
    params: Params
    objective_value: float
    metrics: dict[str, float] = Field(default_factory=dict)


#: The Pareto front in the status holds at most this many trials (a spread chosen by crowding
#: distance when more are non-dominated; ``paretoSize`` counts them all).
MAX_PARETO_FRONT = 100


class ParetoTrial(Model):
    """A trial no other finished trial beats on every objective."""

    name: str
    values: dict[str, float] = Field(description="Its objective values, by metric.")


class WarmStartSource(Model):
    experiment: str
    observations: int = Field(description="Its finished trials that fit this search space, used.")


class WarmStartStatus(Model):
    """What spec.warmStart brought in."""

    observations: int = Field(default=0, description="Prior observations the algorithm was given, in all.")
    sources: list[WarmStartSource] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list, description="Named Experiments that do not exist.")


class SuggesterStatus(Model):
    algorithm: str
    state: dict[str, Any] = Field(default_factory=dict, json_schema_extra=PRESERVE_UNKNOWN)


class ExperimentStatus(Model):
    phase: ExperimentPhase = Field(default=ExperimentPhase.PENDING, strict=False)
    conditions: list[Condition] = Field(default_factory=list)
    observed_generation: int | None = None
    trials: TrialCounts = Field(default_factory=TrialCounts)
    retries: int = Field(default=0, description="Trials run again after a disruption, summed over the trials "
                                                "(not counted in trials.created).")
    progress: str | None = Field(default=None, description="finished/maxTrials, for the printer column.")
    trial_seconds: int = Field(default=0, description="Run time of the finished trials, summed (seconds).")
    trial_time: str | None = Field(default=None, description="trialSeconds as 1h02m, for the printer column.")
    best_trial: BestTrial | None = None
    pareto_front: list[ParetoTrial] = Field(
        default_factory=list, max_length=MAX_PARETO_FRONT,
        description=f"With additionalObjectives: the non-dominated Succeeded trials (at most {MAX_PARETO_FRONT}).",
    )
    pareto_size: int | None = Field(
        default=None, description="With additionalObjectives: how many Succeeded trials are non-dominated.")
    warm_start: WarmStartStatus | None = None
    suggester: SuggesterStatus | None = None
    start_time: str | None = None
    completion_time: str | None = None
