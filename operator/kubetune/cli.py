"""Command line: ``kubetune run | validate | status | crd | operator`` (also ``kubectl tune``).

The edge of the program: files are read and validated here, then typed values go inward.
Exit codes: 0 the experiment Succeeded, 1 it Failed, 2 bad input, 3 it is suspended (no trial
left running; set ``suspend: false`` and run again to continue), 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kubetune.api import Experiment, ExperimentPhase, ExperimentStatus, Trial, TrialPhase, validation_problems
from kubetune.crds import crd_files, render_all
from kubetune.documents import load_all
from kubetune.lifecycle import Event, spec_problems
from kubetune.local import LocalRunner
from kubetune.local_state import LocalState, StateError, default_state_path, load_state

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_SUSPENDED = 3
EXIT_INTERRUPTED = 130


class InputError(Exception):
    """Bad input from the user: printed as it is, exit code 2."""


def format_validation_error(err: ValidationError) -> str:
    """One line per problem, each with its path: ``spec.parameters[1].max: must be greater than min``."""
    return "\n".join(validation_problems(err))


def load_experiment(path: Path) -> Experiment:
    try:
        text = path.read_text()
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror})") from None
    try:
        documents = load_all(text)
    except yaml.YAMLError as err:
        raise InputError(f"{path}: not valid YAML: {err}") from None
    experiments = [d for d in documents if isinstance(d, dict) and d.get("kind") == "Experiment"]
    if len(experiments) != 1:
        raise InputError(f"{path}: expected exactly one document of kind Experiment, found {len(experiments)}")
    try:
        experiment = Experiment.model_validate(experiments[0])
    except ValidationError as err:
        raise InputError(f"{path}: invalid Experiment:\n{format_validation_error(err)}") from None
    problems = spec_problems(experiment)
    if problems:
        raise InputError(f"{path}: invalid Experiment:\n" + "\n".join(problems))
    return experiment


class ConsoleDisplay:
    """Live progress (trials done / running / failed, best so far) and one line per finished trial."""

    def __init__(self, console: Console, experiment: Experiment) -> None:
        self.console = console
        self.objective = experiment.spec.objective
        self.progress = Progress(
            TextColumn("[bold]{task.fields[name]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[summary]}"), TimeElapsedColumn(), console=console, transient=False,
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
        params = " ".join(f"{k}={v}" for k, v in trial.spec.params.items())
        if trial.status.phase is TrialPhase.SUCCEEDED:
            value = trial.status.objective_value
            self.console.print(f"  [green]✓[/] {trial.metadata.name} {self.objective.metric}={value:.6g}  {params}")
        elif trial.status.phase in (TrialPhase.EARLY_STOPPED, TrialPhase.KILLED):
            self.console.print(f"  [yellow]■[/] {trial.metadata.name} {trial.status.reason}: "
                               f"{trial.status.message}  {params}", markup=True)
        else:
            self.console.print(f"  [red]✗[/] {trial.metadata.name} {trial.status.reason}: "
                               f"{trial.status.message}  {params}")

    def status(self, status: ExperimentStatus) -> None:
        t = status.trials
        best = f"{status.best_trial.objective_value:.6g}" if status.best_trial else "-"
        stopped = f"  stopped {t.early_stopped}" if t.early_stopped else ""
        summary = (f"running {t.running + t.pending}{stopped}  failed {t.failed}  "
                   f"best {self.objective.metric}={best}")
        self.progress.update(self.task, completed=t.finished, summary=summary)


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    path = Path(args.file)
    experiment = load_experiment(path)
    state_path = Path(args.state) if args.state else default_state_path(path, experiment)
    try:
        runner_display = ConsoleDisplay(console, experiment)
        runner = LocalRunner(experiment, state_path=state_path, workdir=path.resolve().parent,
                             display=runner_display, fresh=args.fresh)
    except StateError as err:
        raise InputError(str(err)) from None
    if runner.resumed:
        console.print(f"Resuming from {state_path}: {runner.resumed} trial(s) already finished")
    try:
        with runner_display:
            status = runner.run()
    except KeyboardInterrupt:
        console.print(f"\nInterrupted. State kept in {state_path}; run the same command again to resume.")
        return EXIT_INTERRUPTED
    except StateError as err:
        raise InputError(str(err)) from None
    print_outcome(console, status, experiment)
    console.print(f"State: {state_path}")
    if status.phase is ExperimentPhase.SUSPENDED:
        console.print("Suspended: no trial is running. Set suspend: false and run the same command to continue.")
        return EXIT_SUSPENDED
    return 0 if status.phase is ExperimentPhase.SUCCEEDED else EXIT_FAILED


def print_outcome(console: Console, status: ExperimentStatus, experiment: Experiment) -> None:
    condition = next((c for c in status.conditions if c.type == status.phase.value), None)
    why = f" ({condition.reason}: {condition.message})" if condition else ""
    console.print(f"Experiment {experiment.metadata.name}: [bold]{status.phase.value}[/]{why}")
    if status.best_trial:
        b = status.best_trial
        params = ", ".join(f"{k}={v}" for k, v in b.params.items())
        console.print(f"Best trial {b.name}: {experiment.spec.objective.metric}={b.objective_value:.6g} with {params}")


def cmd_validate(args: argparse.Namespace, console: Console) -> int:
    experiment = load_experiment(Path(args.file))
    console.print(f"{args.file}: valid Experiment {experiment.metadata.name!r} "
                  f"({len(experiment.spec.parameters)} parameters, maxTrials={experiment.spec.max_trials})")
    return 0


def cmd_status(args: argparse.Namespace, console: Console) -> int:
    try:
        state = load_state(Path(args.state))
    except StateError as err:
        raise InputError(str(err)) from None
    if state is None:
        raise InputError(f"{args.state}: no such state file")
    console.print(status_table(state))
    best = state.status.best_trial
    console.print(f"Phase: {state.status.phase.value}; best: "
                  + (f"{best.name} = {best.objective_value:.6g}" if best else "none yet"))
    return 0


def status_table(state: LocalState) -> Table:
    table = Table(title=f"Experiment {state.experiment}")
    for column in ("Trial", "Phase", "Objective", "Params", "Reason"):
        table.add_column(column)
    best = state.status.best_trial.name if state.status.best_trial else None
    for t in sorted(state.trials, key=lambda t: t.spec.index):
        value = "" if t.status.objective_value is None else f"{t.status.objective_value:.6g}"
        name = t.metadata.name + (" *" if t.metadata.name == best else "")
        params = " ".join(f"{k}={v}" for k, v in t.spec.params.items())
        reason = "" if t.status.phase is TrialPhase.SUCCEEDED else (t.status.reason or "")
        table.add_row(name, t.status.phase.value, value, params, reason)
    return table


def cmd_crd(args: argparse.Namespace, console: Console) -> int:
    if args.write:
        out = Path(args.write)
        out.mkdir(parents=True, exist_ok=True)
        for name, content in crd_files().items():
            (out / name).write_text(content)
        console.print(f"wrote {', '.join(sorted(crd_files()))} to {out}")
    else:
        sys.stdout.write(render_all())
    return 0


def cmd_operator(args: argparse.Namespace, console: Console) -> int:
    from kubetune.kube import run_operator  # imported late: the local commands need no Kubernetes client

    run_operator(namespaces=args.namespace, metrics_port=args.metrics_port, health_port=args.health_port)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kubetune", description="Bayesian hyperparameter tuning of training jobs.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run an Experiment locally, trials as processes; resumes after a stop")
    run.add_argument("file", help="Experiment YAML file")
    run.add_argument("--state", help="state file (default: <experiment>.state.yaml next to the file)")
    run.add_argument("--fresh", action="store_true",
                     help="start anew: move an existing state file (and trial outputs) aside to *.bak")
    run.set_defaults(func=cmd_run)

    validate = sub.add_parser("validate", help="check an Experiment file")
    validate.add_argument("file")
    validate.set_defaults(func=cmd_validate)

    status = sub.add_parser("status", help="show the trials and the best one from a state file")
    status.add_argument("state")
    status.set_defaults(func=cmd_status)

    crd = sub.add_parser("crd", help="print the CustomResourceDefinitions (or --write DIR)")
    crd.add_argument("--write", metavar="DIR", help="write one file per CRD into DIR")
    crd.set_defaults(func=cmd_crd)

    op = sub.add_parser("operator", help="run the Kubernetes operator (uses KUBECONFIG or in-cluster config)")
    op.add_argument("--namespace", "-n", action="append", default=[],
                    help="namespace to watch (repeat); default: all namespaces")
    op.add_argument("--metrics-port", type=int, default=8080, help="Prometheus metrics port (0 disables)")
    op.add_argument("--health-port", type=int, default=8081, help="/healthz port (0 disables)")
    op.set_defaults(func=cmd_operator)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    console = Console(highlight=False, soft_wrap=True)
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        code: Any = args.func(args, console)
    except InputError as err:
        errors.print(f"error: {err}", markup=False)
        return EXIT_USAGE
    return int(code)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
