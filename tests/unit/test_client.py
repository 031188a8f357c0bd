"""The client's pure parts and the cluster commands' edges, without a cluster."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetune import cli
from kubetune.api import (
    Condition,
    ConditionStatus,
    Experiment,
    ExperimentPhase,
    ExperimentStatus,
    TrialCounts,
    TrialPhase,
    TrialReason,
)
from kubetune.client import (
    Client,
    ClientError,
    ExperimentNotFound,
    NotFound,
    extend_problem,
    reached,
)
from kubetune.local_state import LocalState, save_state
from kubetune.results.history import History
from kubetune.results.rows import trial_columns, trial_rows
from kubetune.validation import InvalidExperiment, experiment_from_input
from tests.unit.factories import experiment, experiment_dict, trial

FINAL = frozenset({ExperimentPhase.SUCCEEDED, ExperimentPhase.FAILED, ExperimentPhase.SUSPENDED})


# -- trials_frame's rows --------------------------------------------------------------------------------


def test_one_row_per_trial_by_index_with_params_metrics_and_duration() -> None:
    spec = experiment(objective={"metric": "accuracy", "goal": "maximize", "additionalMetrics": ["loss"]}).spec
    trials = [
        trial(1, TrialPhase.FAILED, reason=TrialReason.NON_ZERO_EXIT, start_time="2026-01-01T00:00:00Z"),
        trial(0, value=0.9, start_time="2026-01-01T00:00:00Z", completion_time="2026-01-01T00:01:30Z",
              reason=TrialReason.COMPLETED),
    ]
    rows = trial_rows(trials, spec)
    assert list(rows[0]) == trial_columns(spec, trials) == [
        "name", "index", "phase", "reason", "objective", "params_lr", "params_layers", "params_opt",
        "metrics_accuracy", "metrics_loss", "start_time", "completion_time", "duration_seconds"]
    assert rows[0] == {
        "name": "exp-0", "index": 0, "phase": "Succeeded", "reason": "Completed", "objective": 0.9,
        "params_lr": 0.01, "params_layers": 2, "params_opt": "sgd", "metrics_accuracy": 0.9, "metrics_loss": None,
        "start_time": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        "completion_time": dt.datetime(2026, 1, 1, 0, 1, 30, tzinfo=dt.UTC), "duration_seconds": 90.0}
    assert rows[1]["phase"] == "Failed" and rows[1]["reason"] == "NonZeroExit"
    assert rows[1]["objective"] is None and rows[1]["duration_seconds"] is None


def test_metrics_not_declared_get_columns_after_the_declared_ones() -> None:
    spec = experiment().spec
    t = trial(0, value=0.5)
    t.status.metrics["epochs"] = 3.0
    assert trial_columns(spec, [t])[-5:] == ["metrics_accuracy", "metrics_epochs", "start_time", "completion_time",
                                            "duration_seconds"]
    assert trial_rows([t], spec)[0]["metrics_epochs"] == 3.0


def test_an_empty_frame_still_has_its_columns() -> None:
    pandas = pytest.importorskip("pandas")
    spec = experiment().spec
    frame = pandas.DataFrame(trial_rows([], spec), columns=trial_columns(spec))
    assert len(frame) == 0 and "params_lr" in frame.columns


# -- extend, wait ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("new", "current", "created", "problem"), [
    (10, 6, 6, None),
    (6, 6, 6, None),
    (5, 6, 2, "experiment exp: maxTrials can only be raised: 5 is below the current maxTrials 6"),
    (7, 6, 8, "experiment exp: maxTrials 7 is below the 8 trials already created"),
])
def test_extend_only_raises_the_budget(new: int, current: int, created: int, problem: str | None) -> None:
    assert extend_problem("exp", new, current=current, created=created) == problem


def observed(phase: ExperimentPhase, *, generation: int = 2, seen: int | None = 2, running: int = 0) -> Experiment:
    body = experiment_dict()
    body["metadata"]["generation"] = generation
    status = ExperimentStatus(phase=phase, observed_generation=seen, trials=TrialCounts(running=running))
    return Experiment.model_validate({**body, "status": status.to_wire()})


@pytest.mark.parametrize(("exp", "wanted", "expected"), [
    (observed(ExperimentPhase.SUCCEEDED), FINAL, ExperimentPhase.SUCCEEDED),
    (observed(ExperimentPhase.FAILED), FINAL, ExperimentPhase.FAILED),
    (observed(ExperimentPhase.RUNNING, running=2), FINAL, None),
    # suspended with a trial still finishing is not an end yet; with none left it is
    (observed(ExperimentPhase.SUSPENDED, running=1), FINAL, None),
    (observed(ExperimentPhase.SUSPENDED), FINAL, ExperimentPhase.SUSPENDED),
    (observed(ExperimentPhase.SUSPENDED), frozenset({ExperimentPhase.SUCCEEDED}), None),
    # a status written before the spec changed (resume, extend) does not count
    (observed(ExperimentPhase.SUCCEEDED, generation=3, seen=2), FINAL, None),
    (observed(ExperimentPhase.SUSPENDED, generation=3, seen=None), FINAL, None),
    (experiment(), FINAL, None),
])
def test_wait_ends_on_a_current_final_phase(exp: Experiment, wanted: frozenset[ExperimentPhase],
                                            expected: ExperimentPhase | None) -> None:
    assert reached(exp, wanted) is expected


# -- create's inputs ------------------------------------------------------------------------------------


def test_create_takes_a_dict_yaml_text_a_file_or_a_model(tmp_path: Path) -> None:
    body = experiment_dict()
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(body))
    for given in (body, yaml.safe_dump(body), path, str(path), Experiment.model_validate(body)):
        assert experiment_from_input(given) == Experiment.model_validate(body)


@pytest.mark.parametrize(("given", "message"), [
    (experiment_dict(maxTrials=1, parallelTrials=2), "experiment exp: invalid Experiment:\nspec: parallelTrials"),
    ("kind: Experiment\nmetadata: {name: a}\nmetadata: {name: b}\n", "<yaml text>: not valid YAML"),
    ("kind: Deployment\n", "<yaml text>: expected exactly one document of kind Experiment, found 0"),
    ("/nonexistent/exp.yaml", "/nonexistent/exp.yaml: cannot read"),
])
def test_create_refuses_what_validate_refuses(given: Any, message: str) -> None:
    with pytest.raises(InvalidExperiment) as caught:
        experiment_from_input(given)
    assert str(caught.value).startswith(message), str(caught.value)


def test_the_algorithms_own_checks_apply_to_a_model_too() -> None:
    grid = experiment(algorithm={"name": "grid", "settings": {"gridPoints": 1000}},
                      parameters=[{"name": f"p{i}", "type": "double", "min": 0, "max": 1} for i in range(4)])
    with pytest.raises(InvalidExperiment, match="experiment exp: invalid Experiment"):
        experiment_from_input(grid)


# -- errors and configuration ---------------------------------------------------------------------------


def test_a_missing_experiment_is_a_key_error_with_a_plain_message() -> None:
    err = ExperimentNotFound("team", "quad")
    assert isinstance(err, KeyError) and isinstance(err, NotFound) and isinstance(err, ClientError)
    assert str(err) == 'experiment "quad" not found in namespace "team"'


def kubeconfig(path: Path, namespaces: dict[str, str | None], current: str) -> Path:
    contexts = [{"name": name, "context": {"cluster": "c", "user": "u", **({"namespace": ns} if ns else {})}}
                for name, ns in namespaces.items()]
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": current, "contexts": contexts,
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}]}))
    return path


def test_the_namespace_is_the_contexts_then_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = kubeconfig(tmp_path / "config", {"a": "team-a", "b": None}, current="a")
    monkeypatch.setenv("KUBECONFIG", str(path))
    assert Client().namespace == "team-a"
    assert Client(context="b").namespace == "default"
    assert Client("mine", context="b").namespace == "mine"
    assert Client(kubeconfig=path).host == "https://127.0.0.1:1"


def test_no_kubeconfig_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ClientError, match=f"no kubeconfig: {tmp_path / 'none'} does not exist"):
        Client()
    with pytest.raises(ClientError, match="kubeconfig /nonexistent does not exist"):
        Client(kubeconfig="/nonexistent")


def test_an_unknown_context_is_a_clear_error(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", {"a": None}, current="a")
    with pytest.raises(ClientError, match=f"kubeconfig {path}: .*nope"):
        Client(context="nope", kubeconfig=path)


def test_cluster_commands_turn_client_errors_into_one_line_and_exit_2(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["get", "--kubeconfig", "/nonexistent"]) == cli.EXIT_USAGE
    assert capsys.readouterr().err == "error: kubeconfig /nonexistent does not exist\n"


# -- kubetune report: a state file, else an Experiment's name ---------------------------------------------


@pytest.fixture
def report_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, History, Path | None]]:
    """markdown_summary and write_report replaced by recorders (their own tests are theirs)."""
    from kubetune.results import page

    calls: list[tuple[str, History, Path | None]] = []

    def summary(history: History) -> str:
        calls.append(("md", history, None))
        return f"# {history.name} from {history.source}"

    def write(history: History, out: Path) -> list[Path]:
        calls.append(("html", history, out))
        return [out / f"{history.name}.html", out / "a.png"]

    monkeypatch.setattr(page, "markdown_summary", summary)
    monkeypatch.setattr(page, "write_report", write)
    return calls


def test_report_of_a_state_file(tmp_path: Path, report_calls: list[tuple[str, History, Path | None]],
                                capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "exp.state.yaml"
    save_state(state, LocalState(experiment="exp", spec=experiment().spec, trials=[trial(1), trial(0)]))
    assert cli.main(["report", str(state), "--format", "md"]) == 0
    assert capsys.readouterr().out == f"# exp from {state}\n"
    (kind, history, _), = report_calls
    assert kind == "md" and [t.spec.index for t in history.trials] == [0, 1]


def test_report_html_defaults_to_a_folder_named_after_the_experiment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, report_calls: list[tuple[str, History, Path | None]],
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    save_state(tmp_path / "s.yaml", LocalState(experiment="exp", spec=experiment().spec))
    assert cli.main(["report", "s.yaml"]) == 0
    assert report_calls[0][2] == Path("exp-report")
    assert capsys.readouterr().out.splitlines() == ["exp-report/exp.html", "exp-report/a.png"]
    assert cli.main(["report", "s.yaml", "--out", "elsewhere"]) == 0
    assert report_calls[1][2] == Path("elsewhere")


def test_report_of_a_name_reads_the_cluster(monkeypatch: pytest.MonkeyPatch,
                                            report_calls: list[tuple[str, History, Path | None]],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    import kubetune.client

    made: list[tuple[str | None, str | None, str | None]] = []

    class FakeClient:
        def __init__(self, namespace: str | None = None, *, context: str | None = None,
                     kubeconfig: str | None = None) -> None:
            made.append((namespace, context, kubeconfig))

        def __enter__(self) -> FakeClient:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def history(self, name: str) -> History:
            return History.of(name, experiment().spec, ExperimentStatus(), [trial(0)], source=f"team/{name}")

    monkeypatch.setattr(kubetune.client, "Client", FakeClient)
    assert cli.main(["report", "quad", "-n", "team", "--context", "c", "--format", "md"]) == 0
    assert made == [("team", "c", None)]
    assert capsys.readouterr().out == "# quad from team/quad\n"


def test_report_of_an_experiment_file_reads_its_state_file_and_lends_an_old_one_its_spec(
        tmp_path: Path, report_calls: list[tuple[str, History, Path | None]]) -> None:
    manifest = tmp_path / "exp.yaml"
    manifest.write_text(yaml.safe_dump(experiment_dict()))
    assert cli.main(["report", str(manifest), "--format", "md"]) == cli.EXIT_USAGE  # not run yet
    save_state(tmp_path / "exp.state.yaml", LocalState(experiment="exp", trials=[trial(0)]))  # no spec recorded
    assert cli.main(["report", str(manifest), "--format", "md"]) == 0
    (_, history, _), = report_calls
    assert history.source == str(tmp_path / "exp.state.yaml") and history.spec == experiment().spec


def test_report_without_matplotlib_says_which_extra_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from kubetune.results import figures

    def missing() -> None:
        raise figures.PlottingUnavailable("the HTML report draws with matplotlib: pip install 'kubetune[report]' "
                                          "(or use --format md)")

    monkeypatch.setattr(figures, "_pyplot", missing)
    state = tmp_path / "exp.state.yaml"
    save_state(state, LocalState(experiment="exp", spec=experiment().spec, trials=[trial(0)]))
    assert cli.main(["report", str(state), "--out", str(tmp_path / "out")]) == cli.EXIT_USAGE
    assert capsys.readouterr().err.strip() == ("error: the HTML report draws with matplotlib: "
                                               "pip install 'kubetune[report]' (or use --format md)")


def test_report_of_a_missing_file(capsys: pytest.CaptureFixture[str],
                                  report_calls: list[tuple[str, History, Path | None]]) -> None:
    assert cli.main(["report", "nowhere/exp.state.yaml"]) == cli.EXIT_USAGE
    assert "nowhere/exp.state.yaml: no such state file" in capsys.readouterr().err
    assert report_calls == []


# -- what the cluster commands print ----------------------------------------------------------------------


@pytest.mark.parametrize(("seconds", "shown"), [(5, "5s"), (119, "119s"), (120, "2m"), (7199, "119m"),
                                                (7200, "2h"), (2 * 86400, "2d")])
def test_age_as_kubectl_writes_it(seconds: int, shown: str) -> None:
    body = experiment_dict()
    body["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)
    assert cli.age(Experiment.model_validate(body), now=now) == shown


def test_describe_summarises_spec_and_status() -> None:
    body = experiment_dict()
    status = ExperimentStatus(
        phase=ExperimentPhase.SUCCEEDED, progress="6/6", trial_time="1m",
        trials=TrialCounts(created=6, succeeded=5, failed=1),
        conditions=[Condition(type="Succeeded", status=ConditionStatus.TRUE, reason="MaxTrialsReached",
                              message="all 6 trials finished", last_transition_time="2026-01-01T00:00:00Z")])
    lines = cli.describe_lines(Experiment.model_validate({**body, "status": status.to_wire()}), "team")
    assert "Namespace:   team" in lines
    assert "Objective:   maximize accuracy" in lines
    assert "Algorithm:   random, seed 1" in lines
    assert "  lr           double       [0.001, 0.1] log" in lines
    assert "  opt          categorical  sgd, adam" in lines
    assert ("Trials:      6/6 finished; created 6, pending 0, running 0, succeeded 5, failed 1, killed 0, "
            "early stopped 0") in lines
    assert "  Succeeded  True   MaxTrialsReached (2026-01-01T00:00:00Z): all 6 trials finished" in lines
    assert "Best trial:  none yet" in lines
