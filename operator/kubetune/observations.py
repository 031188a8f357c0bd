"""What the suggester is told of the trials: observations (assignment, loss) and pending points.

Purely computational, no I/O. A succeeded trial is its final objective (as a loss), a failed one
an observation without a loss, an active one a pending point (a trial being retried after a
disruption too). A failure that is the platform's (:data:`kubetune.api.PLATFORM_FAILURES`: an
image that cannot be pulled, a pod disrupted once too often) is no observation at all.

An early-stopped trial is its objective at its last step: the partial result it is. It was stopped
for being behind the others at that step, so this ranks it below the trials that went on, and the
model learns that its region is worse without being told it failed; one that reported nothing
finite counts as failed. Measured against a one-fidelity view in the manner of BOHB (model only
the highest level ``d + 2`` trials reached; stopped trials below it are no evidence, only not to
be proposed again), the partial result did better for ``bayes`` on the synthetic learning-curve
benchmark (docs/benchmarks.md, "Early stopping": final best at equal epochs +0.068 against +0.016
with the median rule, −0.079 against −0.122 with asha).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from kubetune import curves
from kubetune.api import PLATFORM_FAILURES, Experiment, Objective, Params, Trial, TrialPhase
from kubetune.space import Space, SpaceError
from kubetune.suggest import Observation


def partial_loss(trial: Trial, experiment: Experiment) -> float | None:
    """A stopped trial's loss: its objective at its last step with a finite value (None: none)."""
    objective = experiment.spec.objective
    found = [v for _, v in curves.values(trial.status.curve, objective.metric) if math.isfinite(v)]
    return objective.loss(found[-1]) if found else None


def other_losses(objective: Objective, metrics: dict[str, float]) -> tuple[float, ...]:
    """The additional objectives' losses (empty with one objective, or when one is missing)."""
    if not objective.several:
        return ()
    losses = objective.losses({**metrics, objective.metric: metrics.get(objective.metric, 0.0)})
    return losses[1:] if losses is not None else ()


def constraint_values(objective: Objective, metrics: dict[str, float]) -> tuple[float | None, ...]:
    """Each constrained metric's value (None where missing or not finite); empty without constraints."""
    return tuple(v if (v := metrics.get(name)) is not None and math.isfinite(v) else None
                 for name in objective.constraint_metrics)


def suggester_view(space: Space, trials: Sequence[Trial], experiment: Experiment) -> tuple[
        list[Observation], list[Params]]:
    """(observations, pending) for the suggester; see the module docstring."""
    observations: list[Observation] = []
    pending: list[Params] = []
    objective = experiment.spec.objective
    for t in sorted(trials, key=lambda t: t.spec.index):
        try:
            params = space.validate(t.spec.params)
        except SpaceError:
            continue  # from an older search space: counted, but it cannot inform this one
        phase = t.status.phase
        if phase is TrialPhase.SUCCEEDED and t.status.objective_value is not None:
            observations.append(Observation(params, objective.loss(t.status.objective_value),
                                            other_losses(objective, t.status.metrics),
                                            constraint_values(objective, t.status.metrics)))
        elif phase is TrialPhase.EARLY_STOPPED:
            reached = curves.last_metrics(t.status.curve)
            observations.append(Observation(params, partial_loss(t, experiment), other_losses(objective, reached),
                                            constraint_values(objective, reached)))
        elif phase is TrialPhase.FAILED:
            if t.status.reason not in PLATFORM_FAILURES:
                observations.append(Observation(params, None))
        elif not phase.finished:
            pending.append(params)
    return observations, pending


def prior_observations(space: Space, trials: Sequence[Trial], experiment: Experiment) -> list[Observation]:
    """Warm start: another experiment's finished trials as observations of this one.

    A trial counts when it has every parameter of this space with a value the space has (others
    it had are ignored); it is read by this experiment's objective: its value of ``metric`` (as
    this goal has it), failed when it failed, its curve's last value when it was stopped.
    Succeeded trials that did not report this metric, and unfinished ones, are left out.
    """
    objective = experiment.spec.objective
    out: list[Observation] = []
    for t in sorted(trials, key=lambda t: t.spec.index):
        try:
            params = space.validate({name: t.spec.params[name] for name in space.names if name in t.spec.params})
        except SpaceError:  # a parameter of this space it lacks, or a value this space does not have
            continue
        phase = t.status.phase
        value = t.status.metrics.get(objective.metric)
        if phase is TrialPhase.SUCCEEDED and value is not None and math.isfinite(value):
            out.append(Observation(params, objective.loss(value), other_losses(objective, t.status.metrics),
                                   constraint_values(objective, t.status.metrics)))
        elif phase is TrialPhase.FAILED and t.status.reason not in PLATFORM_FAILURES:
            out.append(Observation(params, None))
        elif phase is TrialPhase.EARLY_STOPPED and (loss := partial_loss(t, experiment)) is not None:
            out.append(Observation(params, loss))
    return out

