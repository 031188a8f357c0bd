"""The tuning loop as one pure decision: :func:`plan`.

From an Experiment (spec, metadata and its last status) and the Trials that exist, decide — with
no I/O — which trials to create next (index, name, params), which active trials to stop (early
stopping, :mod:`kubetune.stopping`, or the experiment's end) and which asha rungs they passed, and
the Experiment's new status: counts, best trial, trial time, phase and conditions, and why it
ended. Both runners (the operator in :mod:`kubetune.kube`, the laptop runner in
:mod:`kubetune.local`) execute these decisions and write the status back; neither decides
anything itself. What a single trial amounts to is :mod:`kubetune.outcomes`' to say.

Level-based, as in Katib's reconciler: the status is recomputed from the Trials on every pass, so
a pass that repeats after a crash decides the same thing again. Trials are the record of truth:
their names are ``<experiment>-<index>`` and a new index is always one past the highest seen.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from kubetune import pareto
from kubetune.api import (
    MAX_PARETO_FRONT,
    BestTrial,
    Condition,
    ConditionStatus,
    Experiment,
    ExperimentPhase,
    ExperimentStatus,
    Objective,
    Params,
    ParetoTrial,
    Rung,
    SuggesterStatus,
    Trial,
    TrialCounts,
    TrialPhase,
    WarmStartStatus,
    seconds_between,
    trial_name,
)
from kubetune.observations import suggester_view
from kubetune.priors import PriorSource, fill_slots, initial_slots, warm_start
from kubetune.space import Space
from kubetune.stopping import Stop, plan_stops
from kubetune.suggest import SuggesterError, SuggestRequest, get_suggester

log = logging.getLogger(__name__)

# Condition types, one per phase an Experiment can be in.
RUNNING = "Running"
SUSPENDED = "Suspended"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
CONDITION_TYPES = (RUNNING, SUSPENDED, SUCCEEDED, FAILED)
#: Not a phase: whether every spec.warmStart source was found (True) or one is missing (False).
WARM_START = "WarmStart"
#: Not a phase: True while trials wait for a queue's quota (their Jobs suspended, e.g. by Kueue).
QUEUED = "Queued"

# Why an experiment ended (``reason`` of its Succeeded/Failed condition).
GOAL_REACHED = "GoalReached"
MAX_TRIALS_REACHED = "MaxTrialsReached"
SPACE_EXHAUSTED = "SearchSpaceExhausted"
TOO_MANY_FAILED = "TooManyFailedTrials"
NO_SUCCESSFUL_TRIAL = "NoSuccessfulTrial"
INVALID_SPEC = "InvalidSpec"
PLAN_FAILED = "PlanFailed"

TERMINAL = (ExperimentPhase.SUCCEEDED, ExperimentPhase.FAILED)


@dataclass(frozen=True)
class NewTrial:
    index: int
    name: str
    params: Params


@dataclass(frozen=True)
class Event:
    """A Kubernetes-style event about the Experiment: ``type`` is Normal or Warning."""

    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class Plan:
    status: ExperimentStatus
    create: list[NewTrial] = field(default_factory=list)
    #: Names of active trials to stop because the experiment ended before they finished.
    kill: list[str] = field(default_factory=list)
    #: Running trials to stop early (their stop request is recorded first, then they are stopped).
    stop: list[Stop] = field(default_factory=list)
    #: trial name → its asha rungs, where a trial passed a new one (to record on the trial).
    rungs: dict[str, list[Rung]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.status.phase in TERMINAL


def experiment_seed(experiment: Experiment) -> int:
    """The algorithm's seed: the one given, else derived from the name (stable across restarts)."""
    if experiment.spec.algorithm.seed is not None:
        return experiment.spec.algorithm.seed
    return zlib.crc32(experiment.metadata.name.encode()) & 0x7FFFFFFF


def count_trials(trials: Sequence[Trial], experiment: Experiment | None = None) -> TrialCounts:
    counts = TrialCounts(created=len(trials))
    objective = experiment.spec.objective if experiment is not None else None
    for t in trials:
        name = t.status.phase.counter
        setattr(counts, name, getattr(counts, name) + 1)
        if objective is not None and t.status.phase is TrialPhase.SUCCEEDED and not feasible(objective, t):
            counts.infeasible += 1
        if t.status.queued and t.status.phase is TrialPhase.PENDING:
            counts.queued += 1
    return counts


def feasible(objective: Objective, trial: Trial) -> bool:
    """A Succeeded trial whose metrics keep every constraint (always, without constraints)."""
    return not objective.constraints or objective.feasible(trial.status.metrics)


def trial_seconds(trials: Sequence[Trial]) -> int:
    """The run time of the finished trials, summed, in whole seconds."""
    total = 0.0
    for t in trials:
        if t.status.phase.finished:
            total += seconds_between(t.status.start_time, t.status.completion_time) or 0.0
    return round(total)


def format_duration(seconds: int) -> str:
    """``45s``, ``12m05s``, ``3h02m``, ``2d04h``: the printer column's spelling."""
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def best_trial(experiment: Experiment, trials: Sequence[Trial],
               front: Sequence[ParetoTrial] | None = None) -> BestTrial | None:
    """The feasible succeeded trial with the best objective (the lower index wins a tie); with
    several objectives, the best of the Pareto ``front`` on the first one (so a trial another beats
    on every objective is never the best, even when it ties on the first)."""
    objective = experiment.spec.objective
    on_front = {p.name for p in front} if front else None
    best: Trial | None = None
    for t in sorted(trials, key=lambda t: t.spec.index):
        value = t.status.objective_value
        if t.status.phase is not TrialPhase.SUCCEEDED or value is None or not feasible(objective, t):
            continue
        if on_front is not None and t.metadata.name not in on_front:
            continue
        if best is None or objective.better(value, best.status.objective_value or 0.0):
            best = t
    if best is None or best.status.objective_value is None:
        return None
    return BestTrial(
        name=best.metadata.name,
        params=dict(best.spec.params),
        objective_value=best.status.objective_value,
        metrics=dict(best.status.metrics),
    )


def pareto_front(experiment: Experiment, trials: Sequence[Trial]) -> tuple[list[ParetoTrial], int | None]:
    """With additionalObjectives: the non-dominated feasible Succeeded trials (at most MAX_PARETO_FRONT, a
    spread kept by crowding distance) and how many there are; ``([], None)`` with one objective."""
    objective = experiment.spec.objective
    if not objective.several:
        return [], None
    done = [(t, objective.losses(t.status.metrics)) for t in sorted(trials, key=lambda t: t.spec.index)
            if t.status.phase is TrialPhase.SUCCEEDED and feasible(objective, t)]
    scored = [(t, losses) for t, losses in done if losses is not None]
    front = [scored[i] for i in pareto.non_dominated([losses for _, losses in scored])]
    kept = [front[i] for i in pareto.spread([losses for _, losses in front], MAX_PARETO_FRONT)]
    names = objective.objective_metrics
    return ([ParetoTrial(name=t.metadata.name, values={m: t.status.metrics[m] for m in names}) for t, _ in kept],
            len(front))


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    *,
    now: str,
    generation: int | None,
) -> list[Condition]:
    """Conditions with ``type_`` set; ``lastTransitionTime`` moves only when the status changes."""
    old = next((c for c in conditions if c.type == type_), None)
    since = old.last_transition_time if old is not None and old.status is status else now
    new = Condition(type=type_, status=status, reason=reason, message=message,
                    last_transition_time=since, observed_generation=generation)
    others = [c for c in conditions if c.type != type_]
    return sorted([*others, new], key=lambda c: CONDITION_TYPES.index(c.type) if c.type in CONDITION_TYPES else 99)


def _with_phase(status: ExperimentStatus, phase: ExperimentPhase, reason: str, message: str,
                *, now: str, generation: int | None) -> ExperimentStatus:
    """The status in ``phase``: its own condition True, the other phase conditions False."""
    own = {
        ExperimentPhase.PENDING: RUNNING,
        ExperimentPhase.RUNNING: RUNNING,
        ExperimentPhase.SUSPENDED: SUSPENDED,
        ExperimentPhase.SUCCEEDED: SUCCEEDED,
        ExperimentPhase.FAILED: FAILED,
    }[phase]
    conditions = list(status.conditions)
    for type_ in CONDITION_TYPES:
        if type_ == own:
            truth = ConditionStatus.FALSE if phase is ExperimentPhase.PENDING else ConditionStatus.TRUE
            conditions = set_condition(conditions, type_, truth, reason, message, now=now, generation=generation)
        elif any(c.type == type_ for c in conditions) or type_ in (SUCCEEDED, FAILED):
            conditions = set_condition(conditions, type_, ConditionStatus.FALSE, reason, message,
                                       now=now, generation=generation)
    update: dict[str, object] = {"phase": phase, "conditions": conditions}
    if phase in TERMINAL:
        update["completion_time"] = status.completion_time or now
    else:
        update["completion_time"] = None
    return status.model_copy(update=update)


def _end_reason(experiment: Experiment, counts: TrialCounts, best: BestTrial | None) -> tuple[
        ExperimentPhase, str, str] | None:
    """Why the experiment is over before any new trial is considered, or None."""
    spec = experiment.spec
    if best is not None and spec.objective.reached(best.objective_value):
        return ExperimentPhase.SUCCEEDED, GOAL_REACHED, (
            f"trial {best.name} reached {spec.objective.metric}={best.objective_value:g} "
            f"(target {spec.objective.target:g})")
    if spec.max_failed_trials is not None and counts.failed > spec.max_failed_trials:
        return ExperimentPhase.FAILED, TOO_MANY_FAILED, (
            f"{counts.failed} trials failed, more than maxFailedTrials={spec.max_failed_trials}")
    if counts.created >= spec.max_trials and counts.active == 0:
        why = f"all {counts.created} trials of maxTrials={spec.max_trials} finished"
        return _budget_end(best, MAX_TRIALS_REACHED, why)
    return None


def _budget_end(best: BestTrial | None, reason: str, why: str) -> tuple[ExperimentPhase, str, str]:
    """The end of a budget (trials or search space): Succeeded with a best trial, else Failed."""
    if best is None:
        return ExperimentPhase.FAILED, NO_SUCCESSFUL_TRIAL, f"{why}, and none succeeded (or kept the constraints)"
    return ExperimentPhase.SUCCEEDED, reason, f"{why}; best {best.name} = {best.objective_value:g}"


def spec_problems(experiment: Experiment) -> list[str]:
    """What the models' validation cannot see: the algorithm's own checks against the space.

    (For instance a grid of more points than grid search enumerates.) ``kubetune validate``
    refuses these up front; on a cluster the first pass ends the experiment ``InvalidSpec``.
    """
    spec = experiment.spec
    try:
        get_suggester(spec.algorithm.name.value).check_settings(spec.algorithm.settings, Space(spec.parameters))
    except SuggesterError as err:
        return [f"spec.algorithm: {err}"]
    return []


def plan(experiment: Experiment, trials: Sequence[Trial], *, now: str, prior: Sequence[PriorSource] = ()) -> Plan:
    """Decide the next step of ``experiment`` given all its ``trials``; see the module docstring.

    Never raises: a bug in here ends the experiment Failed (``PlanFailed``) with the error's
    message, rather than a runner retrying the same pass forever.
    """
    try:
        return _plan(experiment, trials, now=now, prior=prior)
    except Exception as err:
        log.exception("planning experiment %s failed", experiment.metadata.name)
        old = experiment.status or ExperimentStatus()
        message = f"planning the next step failed ({type(err).__name__}: {err}); fix the spec or report a bug"
        status = _with_phase(old.model_copy(update={"start_time": old.start_time or now}),
                             ExperimentPhase.FAILED, PLAN_FAILED, message[:1000], now=now,
                             generation=experiment.metadata.generation)
        return _finish(old, status, [], kill=_active_names(trials))


def _plan(experiment: Experiment, trials: Sequence[Trial], *, now: str, prior: Sequence[PriorSource]) -> Plan:
    spec = experiment.spec
    old = experiment.status or ExperimentStatus()
    generation = experiment.metadata.generation
    counts = count_trials(trials, experiment)
    front, front_size = pareto_front(experiment, trials)
    best = best_trial(experiment, trials, front)
    seconds = trial_seconds(trials)
    status = old.model_copy(update={
        "trials": counts,
        "retries": sum(t.status.retries for t in trials),
        "best_trial": best,
        "pareto_front": front,
        "pareto_size": front_size,
        "progress": f"{counts.finished}/{spec.max_trials}",
        "trial_seconds": seconds,
        "trial_time": format_duration(seconds),
        "observed_generation": generation,
        "start_time": old.start_time or now,
    })
    events: list[Event] = []
    if counts.queued or any(c.type == QUEUED for c in old.conditions):
        status = status.model_copy(update={"conditions": _queued_condition(
            status.conditions, counts, now=now, generation=generation)})
    space = Space(spec.parameters)
    prior_observations, warm = warm_start(experiment, space, prior)
    if warm is not None:
        status = status.model_copy(update={"warm_start": warm, "conditions": _warm_condition(
            status.conditions, warm, now=now, generation=generation)})
        was_missing = next((c for c in old.conditions if c.type == WARM_START and c.status is ConditionStatus.FALSE),
                           None)
        if warm.missing and was_missing is None:
            events.append(Event("Warning", "WarmStartSourceMissing", _warm_message(warm)))
    algorithm = spec.algorithm.name.value
    try:
        suggester = get_suggester(algorithm)
        suggester.check_settings(spec.algorithm.settings, space)
    except SuggesterError as err:
        status = _with_phase(status, ExperimentPhase.FAILED, INVALID_SPEC, str(err), now=now, generation=generation)
        return _finish(old, status, events, kill=_active_names(trials))

    ended = _end_reason(experiment, counts, best)
    if ended is not None:
        phase, reason, message = ended
        status = _with_phase(status, phase, reason, message, now=now, generation=generation)
        return _finish(old, status, events, kill=_active_names(trials))

    stopping = plan_stops(spec.early_stopping, spec.objective, trials)
    if spec.suspend:
        message = f"suspended; {counts.active} trial(s) still finishing" if counts.active else "suspended"
        status = _with_phase(status, ExperimentPhase.SUSPENDED, "Suspended", message, now=now, generation=generation)
        return _finish(old, status, events, stop=stopping.stop, rungs=stopping.rungs)

    wanted = max(0, min(spec.parallel_trials - counts.active, spec.max_trials - counts.created))
    create: list[NewTrial] = []
    if wanted:
        observations, pending = suggester_view(space, trials, experiment)
        observations = [*prior_observations, *observations]
        next_index = max((t.spec.index for t in trials), default=-1) + 1
        previous_state = old.suggester.state if old.suggester and old.suggester.algorithm == algorithm else {}
        slots = initial_slots(spec, space, next_index, wanted)
        complete = [space.validate(point) for point in slots if point is not None and space.is_complete(point)]
        request = SuggestRequest(
            space=space, observations=observations, pending=[*pending, *complete],
            n=sum(point is None or not space.is_complete(point) for point in slots),
            seed=experiment_seed(experiment), start_index=next_index,
            state=previous_state, settings=spec.algorithm.settings,
            constraints=[(c.min, c.max) for c in spec.objective.constraints], prior=len(prior_observations),
        )
        suggested: list[Params] = []
        state = dict(previous_state)
        if request.n:
            try:
                suggestion = suggester.suggest(request)
                state = suggestion.state
                suggested = suggestion.params[:request.n]
            except Exception as err:  # a suggester bug must never stall the experiment: fall back to random
                log.exception("suggester %s failed; falling back to random search", algorithm)
                events.append(Event("Warning", "SuggesterFailed", f"{algorithm} failed ({err}); used random search"))
                suggested = get_suggester("random").suggest(request).params
        params_list = fill_slots(slots, suggested, space)
        for offset, params in enumerate(params_list):
            index = next_index + offset
            create.append(NewTrial(index, trial_name(experiment.metadata.name, index),
                                   space.project(space.validate(params))))
        status = status.model_copy(update={"suggester": SuggesterStatus(algorithm=algorithm, state=state)})
        if not create and counts.active == 0:
            phase, reason, message = _budget_end(
                best, SPACE_EXHAUSTED, f"the search space has no untried point left after {counts.created} trials")
            status = _with_phase(status, phase, reason, message, now=now, generation=generation)
            return _finish(old, status, events)

    active_after = counts.active + len(create)
    phase = ExperimentPhase.RUNNING if active_after or counts.created else ExperimentPhase.PENDING
    message = f"{active_after} trial(s) running, {counts.finished} finished of maxTrials={spec.max_trials}"
    status = _with_phase(status, phase, "TrialsRunning", message, now=now, generation=generation)
    for new in create:
        events.append(created_event(new.name, new.params))
    return _finish(old, status, events, create=create, stop=stopping.stop, rungs=stopping.rungs)


def _warm_message(warm: WarmStartStatus) -> str:
    used = ", ".join(f"{s.experiment} ({s.observations})" for s in warm.sources) or "none"
    text = f"{warm.observations} prior observation(s) from {used}"
    if warm.missing:
        text = f"warm start: {'; '.join(warm.missing)}; " + text
    return text


def _warm_condition(conditions: Sequence[Condition], warm: WarmStartStatus, *, now: str,
                    generation: int | None) -> list[Condition]:
    if warm.missing:
        return set_condition(conditions, WARM_START, ConditionStatus.FALSE, "SourceMissing", _warm_message(warm),
                             now=now, generation=generation)
    return set_condition(conditions, WARM_START, ConditionStatus.TRUE, "SourcesLoaded", _warm_message(warm),
                         now=now, generation=generation)


def _queued_condition(conditions: Sequence[Condition], counts: TrialCounts, *, now: str,
                      generation: int | None) -> list[Condition]:
    if counts.queued:
        message = (f"{counts.queued} of {counts.active} active trial(s) waiting for quota: their Jobs are suspended "
                   "until a queue admits them")
        return set_condition(conditions, QUEUED, ConditionStatus.TRUE, "WaitingForQuota", message,
                             now=now, generation=generation)
    return set_condition(conditions, QUEUED, ConditionStatus.FALSE, "Admitted", "no trial is waiting for quota",
                         now=now, generation=generation)


def _active_names(trials: Sequence[Trial]) -> list[str]:
    return [t.metadata.name for t in sorted(trials, key=lambda t: t.spec.index) if not t.status.phase.finished]


def _format_params(params: Params) -> str:
    # numbers as %.8g, so a value that came back from the API server as 1 (sent as 1.0) reads the same
    # in name order: the API server gives an object's keys back sorted, whatever order they were sent in
    return ", ".join(f"{k}={v:.8g}" if isinstance(v, int | float) else f"{k}={v}" for k, v in sorted(params.items()))


# --- events -------------------------------------------------------------------------------------
# Each builder makes the same Event from the same state, so a runner that lost an Event (killed
# before posting it) can post it again from what it reads; the operator names Events by a hash of
# their content, which makes the repeat of one already posted a no-op.


def created_event(name: str, params: Params) -> Event:
    return Event("Normal", "TrialCreated", f"trial {name} created with {_format_params(params)}")


def best_event(best: BestTrial) -> Event:
    return Event("Normal", "NewBestTrial", f"trial {best.name} is the new best: {best.objective_value:g}")


def phase_event(status: ExperimentStatus) -> Event:
    condition = next((c for c in status.conditions if c.status is ConditionStatus.TRUE), None)
    detail = f" ({condition.reason}: {condition.message})" if condition else ""
    kind = "Warning" if status.phase is ExperimentPhase.FAILED else "Normal"
    return Event(kind, f"Experiment{status.phase.value}", f"experiment is {status.phase.value}{detail}")


def standing_events(status: ExperimentStatus) -> list[Event]:
    """The Events the status stands for and that no later state rewrites: a final phase, the best trial."""
    events = [best_event(status.best_trial)] if status.best_trial is not None else []
    if status.phase in TERMINAL:
        events.append(phase_event(status))
    return events


def _finish(old: ExperimentStatus, new: ExperimentStatus, events: list[Event], *,
            create: list[NewTrial] | None = None, kill: list[str] | None = None,
            stop: list[Stop] | None = None, rungs: dict[str, list[Rung]] | None = None) -> Plan:
    """Add the events that the change from ``old`` to ``new`` calls for."""
    if new.best_trial is not None and (old.best_trial is None or old.best_trial.name != new.best_trial.name):
        events.append(best_event(new.best_trial))
    if new.phase is not old.phase:
        events.append(phase_event(new))
    return Plan(status=new, create=create or [], kill=kill or [], stop=stop or [], rungs=rungs or {},
                events=events)
