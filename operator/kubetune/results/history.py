"""One experiment's results as the report reads them: spec, status and Trials, from either runner."""

from __future__ import annotations

import math
from dataclasses import dataclass

from kubetune import curves
from kubetune.api import ExperimentSpec, ExperimentStatus, Goal, Trial, TrialPhase, now_rfc3339, seconds_between
from kubetune.local_state import LocalState


@dataclass(frozen=True)
class History:
    """What the report needs: the same models the operator keeps in the API server."""

    name: str
    spec: ExperimentSpec
    status: ExperimentStatus
    #: Sorted by index.
    trials: tuple[Trial, ...]
    #: Where it was read from, for the page's header: a state file's path, or ``namespace/name``.
    source: str

    @classmethod
    def of(cls, name: str, spec: ExperimentSpec, status: ExperimentStatus, trials: list[Trial] | tuple[Trial, ...],
           source: str) -> History:
        return cls(name=name, spec=spec, status=status,
                   trials=tuple(sorted(trials, key=lambda t: t.spec.index)), source=source)

    @classmethod
    def from_state(cls, state: LocalState, source: str) -> History:
        if state.spec is None:
            raise ValueError(f"{source}: the state file has no spec (no trial was ever started)")
        return cls.of(state.experiment, state.spec, state.status, state.trials, source)


@dataclass(frozen=True)
class Row:
    """One trial as the report shows it."""

    trial: Trial
    #: The objective: the reported one for a finished trial, the curve's last value for a trial
    #: that was stopped or is running (None when it has none; NaN is kept out).
    value: float | None
    #: True when ``value`` comes from the learning curve, not from a final report.
    partial: bool
    seconds: float | None
    steps: int | None
    #: False for a Succeeded trial that breaks a constraint (never the best, never on the front).
    feasible: bool = True

    @property
    def name(self) -> str:
        return self.trial.metadata.name

    @property
    def index(self) -> int:
        return self.trial.spec.index

    @property
    def phase(self) -> TrialPhase:
        return self.trial.status.phase


def rows(history: History) -> list[Row]:
    metric = history.spec.objective.metric
    out = []
    for trial in history.trials:
        status = trial.status
        value, partial = status.objective_value, False
        if value is None and status.phase is not TrialPhase.FAILED:
            finite = [v for _, v in curves.values(status.curve, metric) if math.isfinite(v)]
            value, partial = (finite[-1], True) if finite else (None, False)
        if value is not None and not math.isfinite(value):
            value = None
        end = status.completion_time or (now_rfc3339() if status.phase is TrialPhase.RUNNING else None)
        feasible = not (history.spec.objective.constraints and status.phase is TrialPhase.SUCCEEDED
                        and not history.spec.objective.feasible(status.metrics))
        out.append(Row(trial=trial, value=value, partial=partial, seconds=seconds_between(status.start_time, end),
                       steps=status.last_step, feasible=feasible))
    return out


def maximize(history: History) -> bool:
    return history.spec.objective.goal is Goal.MAXIMIZE


def best_so_far(history: History) -> list[tuple[int, float]]:
    """``(index, best objective of the feasible Succeeded trials up to it)``, one point per such trial."""
    better = max if maximize(history) else min
    out: list[tuple[int, float]] = []
    for row in rows(history):
        if row.phase is TrialPhase.SUCCEEDED and row.value is not None and row.feasible:
            out.append((row.index, row.value if not out else better(out[-1][1], row.value)))
    return out
