"""The Python client and ``kubectl tune`` against a real API server and node, with the operator running."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetune.api import Experiment, ExperimentPhase, Trial, TrialPhase
from kubetune.client import Client, ExperimentNotFound, ExtendRefused, LogsUnavailable
from kubetune.results.history import History
from kubetune.validation import InvalidExperiment
from tests.cluster.conftest import Kubectl, OperatorProcess, wait_for
from tests.cluster.manifests import experiment, score

pytestmark = pytest.mark.cluster

VENV_BIN = Path(sys.executable).parent  # holds kubectl-tune, the plugin kubectl finds on PATH


def as_yaml(manifest: dict[str, Any]) -> str:
    # quoted: kubectl (and so kubetune) reads an unquoted y as a boolean, and PyYAML does not quote it
    return yaml.safe_dump(manifest).replace("name: y\n", "name: 'y'\n")


@pytest.fixture
def client(crds: Kubectl, namespace: str) -> Client:
    return Client(namespace, kubeconfig=crds.kubeconfig)


def test_the_client_creates_waits_and_reads_typed_results(
        operator: OperatorProcess, crds: Kubectl, namespace: str, client: Client, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    created = client.create(experiment("quad", max_trials=4, parallel=2))
    assert isinstance(created, Experiment) and created.metadata.namespace == namespace
    # the other three ways in: YAML text, a YAML file, a model (suspended, so they run nothing)
    client.create(as_yaml(experiment("from-text", max_trials=3, suspend=True)))
    path = tmp_path / "exp.yaml"
    path.write_text(as_yaml(experiment("from-file", max_trials=3, suspend=True)))
    client.create(path)
    client.create(Experiment.model_validate(experiment("from-model", max_trials=3, suspend=True)))
    assert [e.metadata.name for e in client.list()] == ["from-file", "from-model", "from-text", "quad"]

    done = client.wait("quad", timeout=120, progress=True)
    out = capsys.readouterr().out
    assert done.status is not None and done.status.phase is ExperimentPhase.SUCCEEDED
    assert "4/4" in out and all(f"quad-{i} score=" in out for i in range(4)), out

    trials = client.trials("quad")
    assert [t.spec.index for t in trials] == [0, 1, 2, 3] and all(isinstance(t, Trial) for t in trials)
    for t in trials:
        assert t.status.phase is TrialPhase.SUCCEEDED
        assert t.status.objective_value == pytest.approx(score(t.spec.params), abs=1e-12)
    best = client.best_trial("quad")
    assert best is not None and done.status.best_trial is not None
    assert best.metadata.name == done.status.best_trial.name
    assert best.status.objective_value == done.status.best_trial.objective_value

    history = client.history("quad")
    assert isinstance(history, History) and history.source == f"{namespace}/quad"
    assert [t.metadata.name for t in history.trials] == [t.metadata.name for t in trials]

    assert "kubetune: score=" in client.logs("quad-0")
    crds.run("delete", "job", "quad-0", "-n", namespace, "--cascade=foreground", "--wait=true")
    wait_for(lambda: not crds.items("pods", namespace, "kubetune.io/trial=quad-0"), timeout=60,
             what="the pods of quad-0 to go")
    with pytest.raises(LogsUnavailable, match=r"trial .*/quad-0 \(Succeeded, Completed\) has no pod left"):
        client.logs("quad-0")

    # a suspended experiment with nothing running is an end for wait, unless asked for others
    suspended = client.wait("from-text", timeout=60, progress=False)
    assert suspended.status is not None and suspended.status.phase is ExperimentPhase.SUSPENDED
    with pytest.raises(TimeoutError, match=f"{namespace}/from-text .* last phase Suspended"):
        client.wait("from-text", timeout=1, progress=False, phases=("Succeeded",))

    client.delete("from-file")
    with pytest.raises(ExperimentNotFound, match=f'experiment "from-file" not found in namespace "{namespace}"'):
        client.get("from-file")
    with pytest.raises(KeyError):
        client.trials("nope")
    bad = experiment("bad", max_trials=2, parallel=3)
    with pytest.raises(InvalidExperiment, match="parallelTrials"):
        client.create(bad)


def test_trials_frame_has_a_row_per_trial(operator: OperatorProcess, client: Client) -> None:
    pytest.importorskip("pandas")
    client.create(experiment("frame", max_trials=3, parallel=3))
    client.wait("frame", timeout=120, progress=False)
    frame = client.trials_frame("frame")
    assert list(frame["name"]) == ["frame-0", "frame-1", "frame-2"]
    assert {"params_x", "params_y", "metrics_score", "metrics_x2", "duration_seconds"} <= set(frame.columns)
    for _, row in frame.iterrows():
        assert row["objective"] == pytest.approx(score({"x": row["params_x"], "y": row["params_y"]}), abs=1e-12)
        assert row["phase"] == "Succeeded" and row["duration_seconds"] >= 0


def test_suspend_resume_and_extend(operator: OperatorProcess, client: Client) -> None:
    client.create(experiment("flow", max_trials=3, parallel=1, sleep=1.0))
    wait_for(lambda: client.trials("flow"), timeout=60, what="the first trial of flow")
    client.suspend("flow")
    suspended = client.wait("flow", timeout=60, progress=False)
    assert suspended.status is not None and suspended.status.phase is ExperimentPhase.SUSPENDED
    created = suspended.status.trials.created
    assert created < 3 and suspended.status.trials.active == 0
    assert len(client.trials("flow")) == created, "a trial was created while suspended"

    client.resume("flow")
    done = client.wait("flow", timeout=120, progress=False)
    assert done.status is not None and done.status.phase is ExperimentPhase.SUCCEEDED
    assert len(client.trials("flow")) == 3

    with pytest.raises(ExtendRefused, match="maxTrials can only be raised: 2 is below the current maxTrials 3"):
        client.extend("flow", 2)
    assert client.extend("flow", 4).spec.max_trials == 4
    # the Succeeded status of before the extend does not end the wait: it is older than the spec
    extended = client.wait("flow", timeout=120, progress=False)
    assert extended.status is not None and extended.status.phase is ExperimentPhase.SUCCEEDED
    assert [t.spec.index for t in client.trials("flow")] == [0, 1, 2, 3]


def kubectl_tune(kube: Kubectl, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``kubectl tune ...`` as a user runs it: the pinned kubectl finding the venv's plugin on PATH."""
    env = {**kube.env, "PATH": f"{VENV_BIN}:{kube.env.get('PATH', '')}", "COLUMNS": "200"}
    return subprocess.run([kube.binary, "tune", *args], capture_output=True, text=True, env=env, timeout=timeout)


def test_kubectl_tune(operator: OperatorProcess, crds: Kubectl, namespace: str) -> None:
    crds.apply(experiment("cli", max_trials=3, parallel=3), namespace)
    watched = kubectl_tune(crds, "watch", "cli", "-n", namespace)
    assert watched.returncode == 0, watched.stderr
    assert "Experiment cli: Succeeded (MaxTrialsReached" in watched.stdout and "cli-2 score=" in watched.stdout

    listed = kubectl_tune(crds, "get", "-n", namespace)
    header, row = listed.stdout.splitlines()[:2]
    assert header.split() == ["NAME", "PHASE", "TRIALS", "RUNNING", "STOPPED", "BEST", "PARETO", "TRIAL-TIME", "AGE"]
    assert row.split()[:5] == ["cli", "Succeeded", "3/3", "0", "0"]
    one = kubectl_tune(crds, "get", "cli", "-n", namespace).stdout
    assert all(f"cli-{i}" in one for i in range(3))
    assert sum("*" in line for line in one.splitlines() if "cli-" in line) == 1, one

    described = kubectl_tune(crds, "describe", "cli", "-n", namespace)
    assert described.returncode == 0, described.stderr
    for words in ("Objective:   maximize score", "Algorithm:   sobol, seed 7", "Succeeded  True   MaxTrialsReached",
                  "Best trial:  cli-", "Events:", "ExperimentSucceeded"):
        assert words in described.stdout, (words, described.stdout)

    logs = kubectl_tune(crds, "logs", "cli-1", "-n", namespace)
    assert logs.returncode == 0 and logs.stdout.startswith("kubetune: score="), logs
    followed = kubectl_tune(crds, "logs", "cli-1", "-f", "-n", namespace)
    assert followed.returncode == 0 and "kubetune: score=" in followed.stdout, followed

    assert kubectl_tune(crds, "suspend", "cli", "-n", namespace).returncode == 0
    assert kubectl_tune(crds, "extend", "cli", "--max-trials", "4", "-n", namespace).returncode == 0
    suspended = kubectl_tune(crds, "watch", "cli", "-n", namespace)
    assert suspended.returncode == 3 and "Suspended" in suspended.stdout, suspended
    assert len(crds.items("trials", namespace)) == 3
    assert kubectl_tune(crds, "resume", "cli", "-n", namespace).returncode == 0
    resumed = kubectl_tune(crds, "watch", "cli", "-n", namespace)
    assert resumed.returncode == 0 and "all 4 trials of maxTrials=4" in resumed.stdout, resumed

    for args, message in ((("extend", "cli", "--max-trials", "2"), "maxTrials can only be raised"),
                          (("get", "nope"), f'experiment "nope" not found in namespace "{namespace}"'),
                          (("watch", "nope"), "not found"),
                          (("logs", "cli-9"), f'trial "cli-9" not found in namespace "{namespace}"')):
        failed = kubectl_tune(crds, *args, "-n", namespace)
        assert failed.returncode == 2 and message in failed.stderr, (args, failed)
        assert len(failed.stderr.strip().splitlines()) == 1, failed.stderr


def test_kubectl_tune_unreachable_api_server_is_one_line(crds: Kubectl, tmp_path: Path) -> None:
    config = yaml.safe_load(Path(crds.kubeconfig).read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = "https://127.0.0.1:1"
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    result = kubectl_tune(crds, "get", "--kubeconfig", str(path), "-n", "x")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: listing experiments in namespace x: cannot reach the API server at https://127.0.0.1:1 "
        "(Failed to establish a new connection: [Errno 111] Connection refused)"]


def test_kubectl_tune_report_prints_a_markdown_summary(operator: OperatorProcess, crds: Kubectl,
                                                       namespace: str) -> None:
    """Needs kubetune.results.page.markdown_summary (being written: fails until it exists)."""
    crds.apply(experiment("rep", max_trials=3, parallel=3), namespace)
    assert kubectl_tune(crds, "watch", "rep", "-n", namespace).returncode == 0
    result = kubectl_tune(crds, "report", "rep", "--format", "md", "-n", namespace)
    assert result.returncode == 0, result.stderr
    assert "rep" in result.stdout and "score" in result.stdout
