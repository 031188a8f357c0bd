"""What a person watching an experiment sees: a live progress bar and one line per finished trial.

Only output, no decisions: ``kubetune run`` feeds it from the local runner, ``kubetune watch`` and
:meth:`kubetune.client.Client.wait` from the API server. rich's ``Progress`` renders in a terminal
and in Jupyter alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from kubetune.api import Experiment, ExperimentStatus, Objective, Trial, TrialPhase

if TYPE_CHECKING:
    from kubetune.lifecycle import Event  # only a type: the cluster commands need not load the suggesters


class ConsoleDisplay:
    """Live progress (trials done / running / failed, best so far) and one line per finished trial."""

    def __init__(self, console: Console, experiment: Experiment) -> None:
        self.console = console
        self.objective = experiment.spec.objective
        # In Jupyter the bar is an ipywidgets Output that rich clears and redraws on each refresh; a
        # refresh thread would race the trial lines (one printed while the widget captures output
        # lands in the widget and is wiped by the next frame), so there the bar is redrawn on each
        # change, from the caller's thread, and never at the same time as a line.
        self.auto_refresh = not console.is_jupyter
        self.progress = Progress(
            TextColumn("[bold]{task.fields[name]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[summary]}"), TimeElapsedColumn(), console=console, transient=False,
            auto_refresh=self.auto_refresh,
        )
        self.task = self.progress.add_task("trials", total=experiment.spec.max_trials,
                                           name=experiment.metadata.name, summary="starting")

    def __enter__(self) -> ConsoleDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def event(self, event: Event) -> None:
        if event.reason in ("TrialCreated", "NewBestTrial"):
            return  # shown by trial_finished and the summary
        style = "red" if event.type == "Warning" else "cyan"
        self.console.print(f"[{style}]{event.reason}[/]: {event.message}")

    def trial_finished(self, trial: Trial, best: float | None) -> None:
        self.console.print(trial_line(trial, self.objective))

    def status(self, status: ExperimentStatus, *, max_trials: int | None = None) -> None:
        """Show ``status``; ``max_trials`` when the budget changed since the start (an extended experiment)."""
        if max_trials is not None:
            self.progress.update(self.task, total=max_trials)
        self.progress.update(self.task, completed=status.trials.finished,
                             summary=status_summary(status, self.objective))
        if not self.auto_refresh:
            self.progress.refresh()


def trial_line(trial: Trial, objective: Objective) -> str:
    """``✓ quad-3 score=0.91  x=0.3 y=0.7`` (rich markup): the line printed when a trial finishes."""
    params = " ".join(f"{k}={v}" for k, v in trial.spec.params.items())
    if trial.status.phase is TrialPhase.SUCCEEDED:
        value = trial.status.objective_value
        shown = "-" if value is None else f"{value:.6g}"
        return f"  [green]✓[/] {trial.metadata.name} {objective.metric}={shown}  {params}"
    if trial.status.phase in (TrialPhase.EARLY_STOPPED, TrialPhase.KILLED):
        return f"  [yellow]■[/] {trial.metadata.name} {trial.status.reason}: {trial.status.message}  {params}"
    return f"  [red]✗[/] {trial.metadata.name} {trial.status.reason}: {trial.status.message}  {params}"


def status_summary(status: ExperimentStatus, objective: Objective) -> str:
    """``running 2  failed 0  best score=0.91``: the text beside the progress bar."""
    t = status.trials
    best = f"{status.best_trial.objective_value:.6g}" if status.best_trial else "-"
    stopped = f"  stopped {t.early_stopped}" if t.early_stopped else ""
    return f"running {t.running + t.pending}{stopped}  failed {t.failed}  best {objective.metric}={best}"
