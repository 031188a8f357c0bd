"""What the suggester is told of the trials: observations (assignment, loss) and pending points.

Purely computational, no I/O. Without early stopping a finished trial is its final objective (as
a loss) and a failed one an observation without a loss; active trials are pending.

With early stopping, trials end at different steps, and a value at epoch 1 is not a value at
epoch 27: put side by side, slow starters that end high look bad and the model settles on what
learns fast. So the model is fitted at one fidelity, as BOHB does (Falkner et al., ICML 2018):

* the *levels* are the steps the rule compares trials at (asha's rungs; for the median rule
  ``minSteps · 3^k``) and, above them, the trials' final objective;
* the level used is the highest one that at least ``d + 2`` trials reached (``d`` parameters;
  BOHB's minimum for a model): the final objective as soon as that many succeeded, else the
  highest rung;
* every trial that reached that level is an observation of its objective as of that level (a
  succeeded trial at the final level: its final objective); a failed trial is an observation
  without a loss, as always; a stopped trial below the level is not evidence at that fidelity,
  and is passed as pending instead, so it is not proposed again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from kubetune import curves
from kubetune.api import EarlyStopping, EarlyStoppingRule, Experiment, Params, Trial, TrialPhase
from kubetune.space import Space, SpaceError
from kubetune.suggest import Observation

#: The level of the final objective (above every step).
FINAL = math.inf


def levels(settings: EarlyStopping, trials: Sequence[Trial]) -> list[float]:
    """The steps trials are compared at, lowest first, then :data:`FINAL`."""
    if settings.rule is EarlyStoppingRule.ASHA:
        steps = [float(s) for s in settings.rungs()]
    else:
        top = max((t.status.last_step or 0 for t in trials), default=0)
        steps, step = [], settings.min_steps
        while step <= top:
            steps.append(float(step))
            step *= 3
    return [*steps, FINAL]


def _loss_at(trial: Trial, experiment: Experiment, level: float) -> float | None:
    """The trial's loss as of ``level``, when it got there; None when it did not (or has no value)."""
    objective = experiment.spec.objective
    if level == FINAL:
        if trial.status.phase is TrialPhase.SUCCEEDED and trial.status.objective_value is not None:
            return objective.loss(trial.status.objective_value)
        return None
    points = list(curves.values(trial.status.curve, objective.metric))
    if not points or points[-1][0] < level:
        if trial.status.phase is TrialPhase.SUCCEEDED and trial.status.objective_value is not None and not points:
            return objective.loss(trial.status.objective_value)  # reported no curve: its result stands
        return None
    value = next((v for s, v in reversed(points) if s <= level), points[0][1])
    return objective.loss(value) if math.isfinite(value) else None


def _level(experiment: Experiment, trials: Sequence[Trial], space: Space) -> float:
    settings = experiment.spec.early_stopping
    if settings is None:
        return FINAL
    enough = space.dim + 2
    done = [t for t in trials if t.status.phase in (TrialPhase.SUCCEEDED, TrialPhase.EARLY_STOPPED)]
    for level in reversed(levels(settings, trials)):
        if sum(1 for t in done if _loss_at(t, experiment, level) is not None) >= enough:
            return level
    return FINAL


def suggester_view(space: Space, trials: Sequence[Trial], experiment: Experiment) -> tuple[
        list[Observation], list[Params]]:
    """(observations, pending) for the suggester; see the module docstring."""
    level = _level(experiment, trials, space)
    observations: list[Observation] = []
    pending: list[Params] = []
    for t in sorted(trials, key=lambda t: t.spec.index):
        try:
            params = space.validate(t.spec.params)
        except SpaceError:
            continue  # from an older search space: counted, but it cannot inform this one
        phase = t.status.phase
        if phase is TrialPhase.FAILED:
            observations.append(Observation(params, None))
        elif phase in (TrialPhase.SUCCEEDED, TrialPhase.EARLY_STOPPED):
            loss = _loss_at(t, experiment, level)
            if loss is not None:
                observations.append(Observation(params, loss))
            elif phase is TrialPhase.EARLY_STOPPED:
                pending.append(params)  # not evidence at this fidelity, but tried: not proposed again
            elif level != FINAL and t.status.objective_value is not None:
                observations.append(Observation(params, experiment.spec.objective.loss(t.status.objective_value)))
        elif not phase.finished:
            pending.append(params)
    return observations, pending
