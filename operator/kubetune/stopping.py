"""Early stopping: which running trials to stop, decided from the trials' learning curves alone.

Purely computational, no I/O: :func:`plan_stops` reads the Trials (their curves, and the asha
rungs each has passed) and returns the trials to stop and the rungs newly passed. Both runners
call it through :func:`kubetune.lifecycle.plan`; the decision is written onto the Trial
(``status.stop``, ``status.rungs``) before anything is stopped, so an operator killed midway
decides the same again and stops each trial once.

Notation. A trial's curve is its points (step s, objective value). Values become losses
(``Objective.loss``: lower is better) and a non-finite value the worst loss, +inf. A trial has
*reached* step s when it has reported a step ≥ s. Only trials running with no stop pending are
judged; every trial with a curve (running, finished, stopped) is a reference.

``median`` (Golovin et al., "Google Vizier", KDD 2017)
    At its latest step s ≥ ``minSteps``, a trial stops when its best loss at steps ≤ s is worse
    than the median, over the other trials that reached s, of their running average (the mean
    loss of their points at steps ≤ s). At least ``minTrials`` trials (this one included, and one
    other at least) must have reached s.

``asha`` (Li et al., "A System for Massively Parallel Hyperparameter Tuning", MLSys 2020)
    Rungs at ``minSteps · η^k`` below ``maxSteps`` (η = ``reductionFactor``). A trial that reaches
    a rung it has not passed is ranked, by its loss at the rung (its last point at a step ≤ the
    rung), among all trials that reached that rung; it goes on only when it is in the top
    ``max(1, ⌊n/η⌋)`` of those n trials, else it stops. With n below ``minTrials`` it passes for
    now, unranked, and is ranked there as soon as enough trials have reached it
    (so the first trials, which meet no rivals, are judged too: in ASHA they would wait for
    promotion). A rung passed ranked is recorded on the trial and never judged again, as in
    asynchronous successive halving: a later, better arrival does not demote it.

Ties favour the trial being judged.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from kubetune import curves
from kubetune.api import (
    EarlyStopping,
    EarlyStoppingRule,
    Objective,
    Rung,
    Trial,
    TrialPhase,
    TrialReason,
)


@dataclass(frozen=True)
class Stop:
    """Stop ``trial``: the rule, the step it was judged at, and a message naming the values."""

    trial: str
    reason: TrialReason
    step: int
    message: str


@dataclass(frozen=True)
class StoppingPlan:
    stop: list[Stop] = field(default_factory=list)
    #: trial name → its rungs (all of them: the old and the newly passed), where that changed
    rungs: dict[str, list[Rung]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Curve:
    """A trial's objective as losses, in step order."""

    name: str
    points: list[tuple[int, float]]

    @property
    def last_step(self) -> int | None:
        return self.points[-1][0] if self.points else None

    def reached(self, step: int) -> bool:
        return bool(self.points) and self.points[-1][0] >= step

    def at(self, step: int) -> float:
        """The loss as of ``step``: the last point at a step ≤ it (the first point if none is)."""
        found = self.points[0][1]
        for s, loss in self.points:
            if s > step:
                break
            found = loss
        return found

    def upto(self, step: int) -> list[float]:
        return [loss for s, loss in self.points if s <= step]


def _curve(trial: Trial, objective: Objective) -> _Curve:
    points = [(s, objective.loss(v) if math.isfinite(v) else math.inf)
              for s, v in curves.values(trial.status.curve, objective.metric)]
    return _Curve(trial.metadata.name, points)


def _judged(trial: Trial) -> bool:
    return trial.status.phase is TrialPhase.RUNNING and trial.status.stop is None


def rung_points(settings: EarlyStopping | None, steps: Sequence[int]) -> set[int]:
    """The steps of a curve that its rungs are judged by (thinning keeps them)."""
    if settings is None or settings.rule is not EarlyStoppingRule.ASHA:
        return set()
    kept = set()
    for rung in settings.rungs():
        at = [s for s in steps if s <= rung]
        if at:
            kept.add(at[-1])
    return kept


def plan_stops(settings: EarlyStopping | None, objective: Objective, trials: Sequence[Trial]) -> StoppingPlan:
    """The stops and passed rungs ``settings`` calls for; see the module docstring."""
    if settings is None:
        return StoppingPlan()
    ordered = sorted(trials, key=lambda t: t.spec.index)
    all_curves = {t.metadata.name: _curve(t, objective) for t in ordered}
    plan = StoppingPlan()
    for trial in ordered:
        if not _judged(trial):
            continue
        mine = all_curves[trial.metadata.name]
        others = [c for name, c in all_curves.items() if name != trial.metadata.name and c.points]
        if settings.rule is EarlyStoppingRule.MEDIAN:
            stop = _median(settings, objective, mine, others)
            if stop is not None:
                plan.stop.append(stop)
        else:
            stop, passed = _asha(settings, objective, trial, mine, others)
            if stop is not None:
                plan.stop.append(stop)
            if passed != list(trial.status.rungs):
                plan.rungs[trial.metadata.name] = passed
    return plan


def _value(objective: Objective, loss: float) -> float:
    """A loss back in the metric's own sign, for messages."""
    if math.isinf(loss):
        return math.nan
    return objective.loss(loss)  # loss() is its own inverse


def _median(settings: EarlyStopping, objective: Objective, mine: _Curve, others: list[_Curve]) -> Stop | None:
    step = mine.last_step
    if step is None or step < settings.min_steps:
        return None
    averages = []
    for other in others:
        if not other.reached(step):
            continue
        seen = other.upto(step)
        if seen:
            averages.append(math.inf if any(math.isinf(v) for v in seen) else statistics.fmean(seen))
    if not averages or len(averages) + 1 < settings.min_trials:
        return None
    median = statistics.median(averages)
    best = min(mine.upto(step))
    if not best > median:
        return None
    metric = objective.metric
    return Stop(mine.name, TrialReason.MEDIAN_RULE, step, (
        f"stopped at step {step} by the median rule: best {metric} so far {_value(objective, best):g} is worse than "
        f"{_value(objective, median):g}, the median of {len(averages)} other trials' running averages at step {step}"))


def _asha(settings: EarlyStopping, objective: Objective, trial: Trial, mine: _Curve,
          others: list[_Curve]) -> tuple[Stop | None, list[Rung]]:
    passed = list(trial.status.rungs)
    ranked = {r.step for r in passed if r.ranked}
    step = mine.last_step
    if step is None:
        return None, passed
    eta = settings.eta
    for rung in settings.rungs():
        if rung > step:
            break
        if rung in ranked:
            continue
        loss = mine.at(rung)
        rivals = [other.at(rung) for other in others if other.reached(rung)]
        passed = [r for r in passed if r.step != rung]  # an unranked pass is replaced by this judgement
        enough = len(rivals) + 1 >= settings.min_trials
        if enough:
            n = len(rivals) + 1
            keep = max(1, n // eta)
            better = sum(1 for v in rivals if v < loss)
            if better >= keep:
                cutoff = sorted([*rivals, loss])[keep - 1]
                metric = objective.metric
                return Stop(mine.name, TrialReason.ASHA_RUNG, step, (
                    f"stopped at rung {rung} (step {step}) by asha: {metric} {_value(objective, loss):g} at step "
                    f"{rung} is not in the top {keep} of the {n} trials that reached it "
                    f"(cutoff {_value(objective, cutoff):g}, reductionFactor {eta})")), passed
        value = _value(objective, loss) if math.isfinite(loss) else None
        passed.append(Rung(step=rung, value=value, ranked=enough))
    return None, sorted(passed, key=lambda r: r.step)
