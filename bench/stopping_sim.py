"""A simulated runner: kubetune's own decisions (``lifecycle.plan``, ``outcomes``) on simulated time.

A discrete-event loop with ``parallelTrials`` workers in which one epoch of one running trial is
one time unit (one simulated minute on the trials' clocks). At each instant it does what
kubetune's runners do, in their order:

1. ``lifecycle.plan(experiment, trials, now=...)``, with the Experiment's last status;
2. the plan's rungs are recorded on the trials (``status.rungs``), its stops and kills as stop
   requests (``outcomes.stop_requested``); a stopped trial ends at once (it is sent SIGTERM, as the
   local runner does, and judged ``outcomes.judge(observed=Exited(signal=SIGTERM))``: EarlyStopped),
   freeing its worker; a trial stopped before it started is judged ``Ended`` with the stop's
   reason, like ``LocalRunner._begin_stop``;
3. the plan's new trials start (``outcomes.running``);
4. when a trial ended in 2., plan again at the same instant (the runners replan at once when a
   trial ends), so a freed worker gets a new trial without waiting.

Then time advances by one epoch: every running trial trains its next epoch, whose progress point
(``epoch=e`` plus the metrics) is merged into its curve with ``outcomes.progressed(...,
protect=stopping.rung_points(...))``, as ``LocalRunner._read_progress`` does. A trial whose epoch
is not finite exits 3 (``train.py``'s code for a diverged run, the point is not reported), one
that reports ``maxSteps`` exits 0 with its last metrics as the report; both are judged with
``outcomes.judge`` and the loop plans again.

What is not modelled: the runners' latency (a real runner notices a point up to a polling
interval late, so a stopped trial may have begun its next epoch), trial start-up time, and the
stop grace period. The simulation ends when the plan says the experiment is over, or when the
optional epoch budget is spent (the trials still running are then abandoned; at most
``parallelTrials - 1`` epochs over the budget are counted).

``epochs`` counts every epoch any trial trained (also those of failed and stopped trials): the
compute the run consumed. ``trace`` holds, after each instant, (time, epochs consumed so far,
best objective among the Succeeded trials, as ``lifecycle.best_trial`` picks it).
"""

from __future__ import annotations

import datetime as dt
import json
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubetune import outcomes
from kubetune.api import CurvePoint, Experiment, ObjectMeta, Params, Trial, TrialPhase, TrialSpec
from kubetune.lifecycle import Plan, best_trial, plan
from kubetune.stopping import rung_points

#: ``epoch(params, e)``: the metrics a trial with ``params`` reports after epoch ``e`` (1-based),
#: or None when its loss is not finite at that epoch (the trial diverged: it exits 3).
EpochFn = Callable[[Params, int], Mapping[str, float] | None]

EPOCH = dt.timedelta(minutes=1)
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
DIVERGED_EXIT = 3


def clock(t: int) -> str:
    return (START + t * EPOCH).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class TrialRecord:
    """One trial as the run left it (what the report needs, in plain values)."""

    index: int
    params: Params
    phase: str
    reason: str | None
    epochs: int
    #: Its objective: the reported value when Succeeded, the last point's when stopped.
    value: float | None
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "params": dict(self.params), "phase": self.phase, "reason": self.reason,
                "epochs": self.epochs, "value": self.value}


@dataclass
class RunResult:
    epochs: int
    time: int
    trials: list[TrialRecord]
    #: (time, epochs consumed, best objective so far or None) after each instant
    trace: list[tuple[int, int, float | None]] = field(default_factory=list)
    #: Why the run ended: the Experiment's condition reason, or "EpochBudget".
    ended: str = ""
    trial_seconds: int = 0
    plans: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "time": self.time, "ended": self.ended, "trial_seconds": self.trial_seconds,
                "plans": self.plans, "trials": [t.to_json() for t in self.trials],
                "trace": [list(p) for p in self.trace]}


class Simulation:
    """One experiment run on simulated workers; :meth:`run` returns its :class:`RunResult`."""

    def __init__(self, experiment: Experiment, epoch: EpochFn, *, max_steps: int,
                 epoch_budget: int | None = None) -> None:
        self.experiment = experiment
        self.epoch_fn = epoch
        self.max_steps = max_steps
        self.epoch_budget = epoch_budget
        self.spec = experiment.spec
        self.trials: list[Trial] = []
        self.status = experiment.status
        self.trained: dict[str, int] = {}  # trial name → epochs it trained
        self.running: list[str] = []
        self.t = 0
        self.epochs = 0
        self.plans = 0
        self.last: Plan | None = None

    # --- one instant -------------------------------------------------------------------------

    def _trial(self, name: str) -> Trial:
        return next(t for t in self.trials if t.metadata.name == name)

    def _plan(self) -> Plan:
        current = self.experiment.model_copy(update={"status": self.status})
        decision = plan(current, self.trials, now=clock(self.t))
        self.plans += 1
        self.status = decision.status
        for new in decision.create:
            self.trials.append(Trial(metadata=ObjectMeta(name=new.name),
                                     spec=TrialSpec(index=new.index, params=new.params)))
        return decision

    def _execute(self, decision: Plan) -> bool:
        """Record rungs and stop requests, then stop; True when a trial ended."""
        now = clock(self.t)
        for name, rungs in decision.rungs.items():
            trial = self._trial(name)
            trial.status = trial.status.model_copy(update={"rungs": rungs})
        requests = {s.trial: outcomes.early_stop(s.reason, s.message, now) for s in decision.stop}
        requests.update({name: outcomes.experiment_finished(now) for name in decision.kill})
        ended = False
        for name, request in requests.items():
            trial = self._trial(name)
            trial.status = outcomes.stop_requested(trial.status, request)
            if trial.status.phase.finished or trial.status.stop is None:
                continue
            if name in self.running:
                self.running.remove(name)
                self._judge(trial, outcomes.Exited(signal=int(signal.SIGTERM)))
            else:
                self._judge(trial, outcomes.Ended(trial.status.stop.reason, trial.status.stop.message))
            ended = True
        return ended

    def _start_pending(self) -> None:
        for trial in self.trials:
            if trial.status.phase is TrialPhase.PENDING and trial.status.stop is None \
                    and trial.metadata.name not in self.running:
                trial.status = outcomes.running(trial.status, clock(self.t))
                self.running.append(trial.metadata.name)
                self.trained.setdefault(trial.metadata.name, 0)

    def _judge(self, trial: Trial, observed: outcomes.Observation) -> None:
        trial.status = outcomes.judge(objective=self.spec.objective, source=self.spec.metrics_source,
                                      status=trial.status, observed=observed, now=clock(self.t))

    def _settle(self) -> Plan:
        """Plan and execute until no trial ends at this instant."""
        while True:
            decision = self._plan()
            ended = self._execute(decision)
            self._start_pending()
            self.last = decision
            if not ended:
                return decision

    # --- time --------------------------------------------------------------------------------

    def _advance(self) -> None:
        """Every running trial trains one epoch."""
        self.t += 1
        metric_names = set(self.spec.objective.metric_names)
        for name in list(self.running):
            trial = self._trial(name)
            step = self.trained[name] + 1
            self.trained[name] = step
            self.epochs += 1
            metrics = self.epoch_fn(trial.spec.params, step)
            if metrics is None:
                self.running.remove(name)
                self._judge(trial, outcomes.Exited(
                    exit_code=DIVERGED_EXIT, output=f"train.py: diverged at epoch {step}: non-finite loss\n"))
                continue
            point = CurvePoint(step=step, metrics={k: float(v) for k, v in metrics.items() if k in metric_names})
            steps = [p.step for p in trial.status.curve] + [step]
            trial.status = outcomes.progressed(trial.status, [point],
                                               protect=rung_points(self.spec.early_stopping, steps))
            if step >= self.max_steps:
                self.running.remove(name)
                report = json.dumps({k: float(v) for k, v in metrics.items()})
                self._judge(trial, outcomes.Exited(exit_code=0, report=report))

    def _best(self) -> float | None:
        best = best_trial(self.experiment, self.trials)
        return best.objective_value if best is not None else None

    def run(self) -> RunResult:
        trace: list[tuple[int, int, float | None]] = []
        ended = ""
        while True:
            decision = self._settle()
            trace.append((self.t, self.epochs, self._best()))
            if decision.finished:
                condition = next((c for c in decision.status.conditions if c.status.value == "True"), None)
                ended = condition.reason if condition is not None else decision.status.phase.value
                break
            if self.epoch_budget is not None and self.epochs >= self.epoch_budget:
                ended = "EpochBudget"
                break
            if not self.running:  # nothing to wait for and nothing created: the plan is stuck
                ended = "Idle"
                break
            self._advance()
        return RunResult(epochs=self.epochs, time=self.t, trials=self._records(), trace=trace, ended=ended,
                         trial_seconds=self.status.trial_seconds if self.status else 0, plans=self.plans)

    def _records(self) -> list[TrialRecord]:
        records = []
        objective = self.spec.objective
        for trial in sorted(self.trials, key=lambda t: t.spec.index):
            status = trial.status
            value = status.objective_value
            if value is None and status.curve:
                value = status.curve[-1].metrics.get(objective.metric)
            records.append(TrialRecord(index=trial.spec.index, params=dict(trial.spec.params),
                                       phase=status.phase.value, reason=status.reason.value if status.reason else None,
                                       epochs=self.trained.get(trial.metadata.name, 0), value=value,
                                       message=status.message))
        return records


def simulate(experiment: Experiment, epoch: EpochFn, *, max_steps: int, epoch_budget: int | None = None) -> RunResult:
    return Simulation(experiment, epoch, max_steps=max_steps, epoch_budget=epoch_budget).run()


def epochs_to_reach(trace: list[tuple[int, int, float | None]], target: float, *, maximize: bool = True) -> int | None:
    """Epochs consumed when the best-so-far first reaches ``target`` (None: never)."""
    for _, epochs, best in trace:
        if best is not None and (best >= target if maximize else best <= target):
            return epochs
    return None


def best_at(trace: list[tuple[int, int, float | None]], epochs: float) -> float | None:
    """The best-so-far once ``epochs`` epochs had been consumed (the last instant at or below it)."""
    found = None
    for _, used, best in trace:
        if used > epochs:
            break
        found = best
    return found
