"""Command line: ``kubetune run | validate | status | crd | operator | report`` and, on a cluster,
``get | describe | watch | suspend | resume | extend | logs`` (also ``kubectl tune ...``).

The edge of the program: files are read and validated here, then typed values go inward; the
cluster commands go through :mod:`kubetune.client`, imported only when one runs.
Exit codes: 0 the experiment Succeeded, 1 it Failed, 2 bad input (an unreachable API server, a
missing Experiment), 3 it is suspended (no trial left running; set ``suspend: false`` and run
again to continue), 130 interrupted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from kubetune.api import (
    Experiment,
    ExperimentPhase,
    ExperimentStatus,
    Trial,
    TrialPhase,
    parse_rfc3339,
    validation_problems,
)
from kubetune.crds import crd_files, render_all
from kubetune.display import ConsoleDisplay
from kubetune.documents import load_all
from kubetune.local_state import LocalState, StateError, default_state_path, load_state

if TYPE_CHECKING:
    from kubetune.client import Client
    from kubetune.results.history import History

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
    # imported here, as LocalRunner in cmd_run: the cluster commands need not load the suggesters (scipy)
    from kubetune.validation import InvalidExperiment, experiment_from_yaml

    try:
        text = path.read_text()
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror})") from None
    try:
        return experiment_from_yaml(text, str(path))
    except InvalidExperiment as err:
        raise InputError(str(err)) from None


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    from kubetune.local import LocalRunner

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
    console.print(f"State: {state_path}  (plots: kubetune report {args.file})")
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
    best = state.status.best_trial.name if state.status.best_trial else None
    return trials_table(f"Experiment {state.experiment}", state.trials, best)


def trials_table(title: str, trials: Sequence[Trial], best: str | None) -> Table:
    """One row per trial, by index; the best one marked ``*``."""
    table = Table(title=title)
    for column in ("Trial", "Phase", "Objective", "Params", "Reason"):
        table.add_column(column)
    for t in sorted(trials, key=lambda t: t.spec.index):
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
    from kubetune.kube import ConfigError, run_operator  # imported late: the local commands need no Kubernetes client

    try:
        run_operator(namespaces=args.namespace, metrics_port=args.metrics_port, health_port=args.health_port,
                     webhook_port=args.webhook_port, webhook_cert_dir=args.webhook_cert_dir)
    except ConfigError as err:
        raise InputError(str(err)) from None
    return 0


# -- on a cluster: kubectl tune get | describe | watch | suspend | resume | extend | logs ----------


@contextmanager
def cluster(args: argparse.Namespace) -> Iterator[Client]:
    """A client for the command line's namespace, context and kubeconfig; its errors become InputErrors."""
    from kubetune.client import Client, ClientError  # imported late: the local commands need no Kubernetes client

    try:
        with Client(args.namespace, context=args.context, kubeconfig=args.kubeconfig) as client:
            yield client
    except ClientError as err:
        raise InputError(str(err)) from None


def cmd_get(args: argparse.Namespace, console: Console) -> int:
    with cluster(args) as client:
        if args.name is None:
            experiments = client.list()
            if not experiments:
                console.print(f"No experiments in namespace {client.namespace}.")
                return 0
            console.print(experiments_table(experiments))
            return 0
        experiment = client.get(args.name)
        trials = client.trials(args.name)
    console.print(experiments_table([experiment]))
    status = experiment.status or ExperimentStatus()
    console.print(trials_table(f"Trials of {args.name}", trials, status.best_trial.name if status.best_trial else None))
    return 0


def experiments_table(experiments: Sequence[Experiment], *, now: dt.datetime | None = None) -> Table:
    """The columns of ``kubectl get experiments``."""
    table = Table(box=None, pad_edge=False, show_edge=False)
    for column in ("NAME", "PHASE", "TRIALS", "RUNNING", "STOPPED", "BEST", "PARETO", "TRIAL-TIME", "AGE"):
        table.add_column(column, no_wrap=True)
    for e in experiments:
        s = e.status or ExperimentStatus()
        best = f"{s.best_trial.objective_value:.6g}" if s.best_trial else ""
        table.add_row(e.metadata.name, s.phase.value, s.progress or f"0/{e.spec.max_trials}", str(s.trials.running),
                      str(s.trials.early_stopped), best, "" if s.pareto_size is None else str(s.pareto_size),
                      s.trial_time or "", age(e, now=now))
    return table


def age(experiment: Experiment, *, now: dt.datetime | None = None) -> str:
    """How long ago it was created, as kubectl writes it: 42s, 5m, 3h, 2d."""
    created = parse_rfc3339((experiment.metadata.model_extra or {}).get("creationTimestamp"))
    if created is None:
        return ""
    seconds = int(((now or dt.datetime.now(dt.UTC)) - created).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size}{unit}"
    return f"{max(0, seconds)}s"


def cmd_describe(args: argparse.Namespace, console: Console) -> int:
    with cluster(args) as client:
        experiment = client.get(args.name)
        events = client.events(args.name)
        namespace = client.namespace
    for line in describe_lines(experiment, namespace):
        console.print(line, markup=False)
    console.print("Events:" if events else "Events: none (the API server keeps them about an hour)", markup=False)
    for e in events[-args.events:] if args.events > 0 else []:
        count = f" (x{e.count})" if e.count > 1 else ""
        console.print(f"  {e.time}  {e.type:<7} {e.reason}{count}: {e.message}", markup=False)
    return 0


def describe_lines(experiment: Experiment, namespace: str) -> list[str]:
    """The spec in a few lines, then the status: phase, counts, best trial, conditions."""
    spec, status = experiment.spec, experiment.status or ExperimentStatus()
    o, a = spec.objective, spec.algorithm
    objective = f"{o.goal.value} {o.metric}" + (f" (target {o.target:g})" if o.target is not None else "")
    if o.additional_metrics:
        objective += f"; also recorded: {', '.join(o.additional_metrics)}"
    algorithm = a.name.value + (f", seed {a.seed}" if a.seed is not None else "")
    algorithm += "".join(f", {k}={v}" for k, v in a.settings.items())
    failed = "-" if spec.max_failed_trials is None else spec.max_failed_trials
    budget = (f"maxTrials {spec.max_trials}, parallelTrials {spec.parallel_trials}, maxFailedTrials {failed}, "
              f"suspend {str(spec.suspend).lower()}")
    lines = [f"Name:        {experiment.metadata.name}", f"Namespace:   {namespace}",
             f"Objective:   {objective}", f"Algorithm:   {algorithm}", f"Budget:      {budget}"]
    if spec.early_stopping:
        es = spec.early_stopping
        lines.append(f"Early stop:  {es.rule.value}, minSteps {es.min_steps}, minTrials {es.min_trials}"
                     + (f", maxSteps {es.max_steps}" if es.max_steps else "")
                     + (f", reductionFactor {es.reduction_factor}" if es.reduction_factor else ""))
    lines.append("Parameters:")
    for p in spec.parameters:
        if p.values is not None:
            lines.append(f"  {p.name:<12} {p.type.value:<12} {', '.join(p.values)}")
        else:
            lines.append(f"  {p.name:<12} {p.type.value:<12} [{p.min:g}, {p.max:g}]"
                         + (" log" if p.scale.value == "log" else ""))
    t = status.trials
    lines += [f"Phase:       {status.phase.value}",
              f"Trials:      {status.progress or '0/' + str(spec.max_trials)} finished; created {t.created}, "
              f"pending {t.pending}, running {t.running}, succeeded {t.succeeded}, failed {t.failed}, "
              f"killed {t.killed}, early stopped {t.early_stopped}"
              + (f"; {t.queued} waiting for quota" if t.queued else "")
              + (f"; retried after disruptions {status.retries}x (maxTrialRetries={spec.max_trial_retries})"
                 if status.retries else ""),
              f"Trial time:  {status.trial_time or '0s'}"]
    if status.best_trial:
        b = status.best_trial
        params = " ".join(f"{k}={v}" for k, v in b.params.items())
        lines.append(f"Best trial:  {b.name} {o.metric}={b.objective_value:.6g}  {params}")
    else:
        lines.append("Best trial:  none yet")
    lines.append("Conditions:")
    for c in status.conditions:
        lines.append(f"  {c.type:<10} {c.status.value:<6} {c.reason} ({c.last_transition_time})"
                     + (f": {c.message}" if c.message else ""))
    return lines


def cmd_watch(args: argparse.Namespace, console: Console) -> int:
    with cluster(args) as client:
        try:
            experiment = client.wait(args.name, progress=True, console=console)
        except KeyboardInterrupt:
            console.print("\nStopped watching; the experiment goes on.")
            return EXIT_INTERRUPTED
    status = experiment.status or ExperimentStatus()
    print_outcome(console, status, experiment)
    if status.phase is ExperimentPhase.SUSPENDED:
        console.print(f"Suspended: no trial is running. `kubectl tune resume {args.name}` continues it.")
        return EXIT_SUSPENDED
    return 0 if status.phase is ExperimentPhase.SUCCEEDED else EXIT_FAILED


def cmd_suspend(args: argparse.Namespace, console: Console) -> int:
    with cluster(args) as client:
        client.suspend(args.name)
        console.print(f"experiment {client.namespace}/{args.name} suspended: no new trial starts, running ones "
                      f"finish (`kubectl tune resume {args.name}` continues)")
    return 0


def cmd_resume(args: argparse.Namespace, console: Console) -> int:
    with cluster(args) as client:
        client.resume(args.name)
        console.print(f"experiment {client.namespace}/{args.name} resumed")
    return 0


def cmd_extend(args: argparse.Namespace, console: Console) -> int:
    with cluster(args) as client:
        before = client.get(args.name).spec.max_trials
        client.extend(args.name, args.max_trials)
        console.print(f"experiment {client.namespace}/{args.name}: maxTrials {before} → {args.max_trials}")
    return 0


def cmd_logs(args: argparse.Namespace, console: Console) -> int:
    with cluster(args) as client:
        if args.follow:
            for line in client.logs(args.trial, follow=True):
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
        else:
            sys.stdout.write(client.logs(args.trial))
    return 0


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    from kubetune.results.page import markdown_summary, write_report

    history = load_history(args)
    if args.format == "md":
        text = markdown_summary(history)
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return 0
    from kubetune.results.figures import PlottingUnavailable

    try:
        written = write_report(history, Path(args.out or f"{history.name}-report"))
    except PlottingUnavailable as err:
        raise InputError(str(err)) from None
    for path in written:
        console.print(str(path), markup=False)
    return 0


def load_history(args: argparse.Namespace) -> History:
    """SOURCE is a local state file when that path exists, else the name of an Experiment on the cluster."""
    from kubetune.results.history import History

    path = Path(args.source)
    if path.exists():
        spec = None
        if _is_experiment_file(path):  # the Experiment file: its state file is where `kubetune run` keeps it
            experiment = load_experiment(path)
            spec, path = experiment.spec, default_state_path(path, experiment)
        try:
            state = load_state(path)
        except StateError as err:
            raise InputError(str(err)) from None
        if state is None:
            raise InputError(f"{path}: no such state file (has the experiment been run with kubetune run?)")
        if state.spec is None and spec is not None:  # a state file older than the spec it records
            state = state.model_copy(update={"spec": spec})
        try:
            return History.from_state(state, source=str(path))
        except ValueError as err:
            raise InputError(str(err)) from None
    if "/" in args.source or args.source.endswith((".yaml", ".yml")):
        raise InputError(f"{args.source}: no such state file (an Experiment on the cluster is named by its name)")
    with cluster(args) as client:
        return client.history(args.source)


def _is_experiment_file(path: Path) -> bool:
    """A YAML file with a document of kind Experiment (a state file has none)."""
    try:
        documents = load_all(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return any(isinstance(d, dict) and d.get("kind") == "Experiment" for d in documents)


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
    op.add_argument("--webhook-port", type=int, default=0,
                    help="serve the validating admission webhook of Experiments over HTTPS here (0: not served)")
    op.add_argument("--webhook-cert-dir", default=None,
                    help="the webhook's tls.crt and tls.key (default /etc/kubetune/webhook)")
    op.set_defaults(func=cmd_operator)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig context's, else default)")
    common.add_argument("--context", help="kubeconfig context (default: the current one)")
    common.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")

    get = sub.add_parser("get", parents=[common], help="list the Experiments, or one with its trials")
    get.add_argument("name", nargs="?", help="an Experiment: also show its trials")
    get.set_defaults(func=cmd_get)
    describe = sub.add_parser("describe", parents=[common],
                              help="an Experiment's spec, conditions, counts, best trial and recent events")
    describe.add_argument("name")
    describe.add_argument("--events", type=int, default=20, metavar="N", help="show the last N events (20)")
    describe.set_defaults(func=cmd_describe)
    watch = sub.add_parser("watch", parents=[common],
                           help="a live progress bar until the Experiment ends (exit codes as run's)")
    watch.add_argument("name")
    watch.set_defaults(func=cmd_watch)
    for command, func, text in (("suspend", cmd_suspend, "start no new trials (running ones finish)"),
                                ("resume", cmd_resume, "start trials again after suspend")):
        flow = sub.add_parser(command, parents=[common], help=text)
        flow.add_argument("name")
        flow.set_defaults(func=func)
    extend = sub.add_parser("extend", parents=[common], help="raise maxTrials (a finished Experiment continues)")
    extend.add_argument("name")
    extend.add_argument("--max-trials", type=int, required=True, metavar="N", help="the new maxTrials")
    extend.set_defaults(func=cmd_extend)
    logs = sub.add_parser("logs", parents=[common], help="the output of a trial's pod")
    logs.add_argument("trial", help="the trial's name, <experiment>-<index>")
    logs.add_argument("-f", "--follow", action="store_true", help="follow the output as it comes")
    logs.set_defaults(func=cmd_logs)
    report = sub.add_parser("report", parents=[common],
                            help="a report of an experiment: a local state file, or an Experiment on the cluster")
    report.add_argument("source", help="a state file (when that path exists), else an Experiment's name")
    report.add_argument("--out", metavar="DIR", help="html: the folder to write (default ./<name>-report)")
    report.add_argument("--format", choices=("html", "md"), default="html",
                        help="html: a page with its figures; md: a Markdown summary on stdout")
    report.set_defaults(func=cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:  # its retry warnings before an unreachable API server's error would bury the one line
        logging.getLogger("urllib3").setLevel(logging.ERROR)
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
