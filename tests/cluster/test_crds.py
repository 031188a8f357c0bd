"""The CRDs on a real API server: installed, rejecting bad Experiments, keeping every status field."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from kubetune.kube.admission import WEBHOOK_NAME
from tests.bad_experiments import BY_WHERE, Case
from tests.cluster.conftest import WEBHOOK_LABEL, Kubectl, OperatorProcess, wait_for
from tests.cluster.manifests import experiment

pytestmark = pytest.mark.cluster


@pytest.mark.parametrize("case", BY_WHERE["both"], ids=[c.name for c in BY_WHERE["both"]])
def test_bad_experiments_are_refused_by_kubectl_apply(crds: Kubectl, namespace: str, case: Case) -> None:
    result = crds.run("apply", "-n", namespace, "-f", "-", input=case.yaml, check=False)
    assert result.returncode != 0, f"{case.name}: accepted"
    for words in case.cluster:
        assert words in result.stderr, f"{case.name}: {words!r} not in: {result.stderr}"


@pytest.fixture
def judged(webhook: OperatorProcess, crds: Kubectl, namespace: str) -> str:
    """The test's namespace, judged by the operator's admission webhook."""
    crds.run("label", "namespace", namespace, f"{WEBHOOK_LABEL}=true")
    return namespace


@pytest.mark.parametrize("case", BY_WHERE["webhook"], ids=[c.name for c in BY_WHERE["webhook"]])
def test_what_cel_cannot_check_the_webhook_refuses_at_apply_time(crds: Kubectl, judged: str, case: Case) -> None:
    result = crds.run("apply", "-n", judged, "-f", "-", input=case.yaml, check=False)
    assert result.returncode != 0, f"{case.name}: accepted"
    assert f'admission webhook "{WEBHOOK_NAME}" denied the request: invalid Experiment: ' in result.stderr, \
        result.stderr
    for words in case.local:
        assert words in result.stderr, f"{case.name}: {words!r} not in: {result.stderr}"
    assert crds.get("experiment", "bad", judged) is None  # nothing stored


def test_the_webhook_judges_a_change_of_the_spec_and_lets_everything_else_through(
        crds: Kubectl, judged: str) -> None:
    body = experiment("judged", max_trials=2, parallel=2)
    crds.run("apply", "-n", judged, "-f", "-", input=json.dumps(body))
    bad = crds.run("patch", "experiment", "judged", "-n", judged, "--type=merge", "-p",
                   json.dumps({"spec": {"initialPoints": [{"x": 9.5}]}}), check=False)
    assert bad.returncode != 0 and "initialPoints[0].x: 9.5 is outside [0, 1]" in bad.stderr, bad.stderr
    crds.run("label", "experiment", "judged", "-n", judged, "team=vision")
    # the operator's own writes (its annotations, the Trials' creation) pass the webhook: the run ends
    done = wait_for(lambda: (crds.get("experiment", "judged", judged) or {}).get("status", {}).get("phase")
                    in ("Succeeded", "Failed") and crds.get("experiment", "judged", judged), timeout=180,
                    what="the judged experiment to finish")
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert done["status"]["trials"]["succeeded"] == 2


def test_a_trial_kind_the_operator_was_not_given_is_refused_at_apply_time(crds: Kubectl, judged: str) -> None:
    body = experiment("torch")
    template = body["spec"]["trialTemplate"]["spec"]["template"]
    body["spec"]["trialTemplate"] = {"kind": "PyTorchJob", "spec": {"pytorchReplicaSpecs": {
        "Master": {"replicas": 1, "template": template}}}}
    result = crds.run("apply", "-n", judged, "-f", "-", input=json.dumps(body), check=False)
    assert result.returncode != 0
    assert "spec.trialTemplate.kind: PyTorchJob is not enabled in this operator (enabled: Job, JobSet" \
        in result.stderr, result.stderr


@pytest.mark.parametrize("case", BY_WHERE["webhook"], ids=[c.name for c in BY_WHERE["webhook"]])
def test_without_the_webhook_what_cel_cannot_check_fails_the_experiment_before_any_trial(
        operator: OperatorProcess, crds: Kubectl, namespace: str, case: Case) -> None:
    crds.run("apply", "-n", namespace, "-f", "-", input=case.yaml)

    def failed() -> dict[str, Any] | None:
        body = crds.get("experiment", "bad", namespace)
        conditions = ((body or {}).get("status") or {}).get("conditions") or []
        return next((c for c in conditions if c["type"] == "Failed" and c["status"] == "True"), None)

    condition = wait_for(failed, timeout=60, what=f"{case.name}: the Experiment to fail")
    assert condition["reason"] == "InvalidSpec"
    for words in case.local:
        assert words in condition["message"], f"{case.name}: {words!r} not in {condition['message']!r}"
    assert crds.items("trials", namespace) == []  # no trial, no budget spent


def test_a_key_given_twice_is_what_kubectl_cannot_see(crds: Kubectl, namespace: str) -> None:
    # the one "local" case: kubectl keeps the last key, so the API server sees a valid Experiment
    (case,) = BY_WHERE["local"]
    result = crds.run("apply", "--dry-run=server", "-n", namespace, "-f", "-", "-o", "json", input=case.yaml)
    assert json.loads(result.stdout)["spec"]["maxTrials"] == 40


def test_the_crds_are_established(crds: Kubectl) -> None:
    for name in ("experiments.kubetune.io", "trials.kubetune.io"):
        crd = crds.json("get", "crd", name)
        established = [c for c in crd["status"]["conditions"] if c["type"] == "Established"]
        assert established and established[0]["status"] == "True"
        assert crd["spec"]["versions"][0]["subresources"] == {"status": {}}


def test_a_valid_experiment_is_accepted(crds: Kubectl, namespace: str) -> None:
    crds.run("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=json.dumps(experiment("valid")))


def test_valid_initial_points_are_accepted_and_kept_as_written(crds: Kubectl, namespace: str) -> None:
    body = experiment("points", max_trials=4, parameters=[
        {"name": "x", "type": "double", "min": 0.0, "max": 1.0},
        {"name": "y", "type": "double", "min": 0.0, "max": 1.0},
        {"name": "k", "type": "int", "min": 1, "max": 8},
        {"name": "opt", "type": "categorical", "values": ["sgd", "adam"]}])
    points = [{"x": 0.3, "y": 1, "k": 4, "opt": "sgd"}, {"opt": "adam"}, {"k": 2.0}, {}]
    body["spec"]["initialPoints"] = points
    crds.run("apply", "-n", namespace, "-f", "-", input=json.dumps(body))
    kept = crds.get("experiment", "points", namespace)
    assert kept is not None and kept["spec"]["initialPoints"] == points


FULL_EXPERIMENT_STATUS: dict[str, Any] = {
    "phase": "Running",
    "conditions": [{"type": "Running", "status": "True", "reason": "TrialsRunning", "message": "1 running",
                    "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}],
    "observedGeneration": 1,
    "trials": {"created": 3, "pending": 1, "running": 1, "succeeded": 1, "failed": 0, "killed": 0,
               "earlyStopped": 0, "infeasible": 1, "queued": 1},
    "retries": 2,
    "progress": "1/8",
    "trialSeconds": 3725,
    "trialTime": "1h02m",
    "bestTrial": {"name": "keep-0", "params": {"x": 0.25, "y": 0.5, "opt": "adam", "layers": 3},
                  "objectiveValue": 0.93, "metrics": {"score": 0.93, "x2": 0.0625}},
    "paretoFront": [{"name": "keep-0", "values": {"score": 0.93, "x2": 0.0625}}],
    "paretoSize": 1,
    "suggester": {"algorithm": "bayes", "state": {"lengthscales": [0.1, 0.2], "nested": {"a": [1, {"b": None}]}}},
    "startTime": "2026-01-01T00:00:00Z",
    "completionTime": "2026-01-01T01:00:00Z",
    "kopf": {"progress": {"experiment_changed": {"started": "2026-01-01T00:00:00.000000", "retries": 1}},
             "dummy": "2026-01-01T00:00:00"},
}

FULL_TRIAL_STATUS: dict[str, Any] = {
    "phase": "Failed", "metrics": {"score": 0.5, "x2": 0.1}, "objectiveValue": 0.5, "reason": "NonZeroExit",
    "message": "exited with code 1: boom", "startTime": "2026-01-01T00:00:00Z",
    "completionTime": "2026-01-01T00:01:00Z", "kopf": {"progress": {"h": {"success": True}}},
    # a learning curve with a non-finite report (null), the log cursor, asha rungs and a stop request
    "curve": [{"step": 1, "metrics": {"score": 0.25, "x2": 0.1}}, {"step": 2, "metrics": {}, "nonFinite": ["score"]}],
    "logCursor": "2026-01-01T00:00:30.123456789Z",
    "rungs": [{"step": 1, "value": 0.25, "ranked": False}],
    "stop": {"phase": "EarlyStopped", "reason": "AshaRung", "message": "stopped at rung 3", "time":
             "2026-01-01T00:00:59Z"},
    # a retry after a disruption, and a queue's wait
    "retries": 1, "attemptTime": "2026-01-01T00:00:40Z", "queued": True,
    "disruptions": [{"pod": "keep-0-abcde", "reason": "EvictionByEvictionAPI", "message": "evicted",
                     "time": "2026-01-01T00:00:39Z"}],
}


@pytest.mark.parametrize(("kind", "status"), [("experiment", FULL_EXPERIMENT_STATUS), ("trial", FULL_TRIAL_STATUS)])
def test_every_status_field_survives_the_schema(crds: Kubectl, namespace: str, kind: str,
                                                status: dict[str, Any]) -> None:
    if kind == "experiment":
        body = experiment("keep", suspend=True)
    else:  # no experiment label: the operator leaves such a Trial alone
        body = {"apiVersion": "kubetune.io/v1alpha1", "kind": "Trial", "metadata": {"name": "keep-0"},
                "spec": {"index": 0, "params": {"x": 0.25, "opt": "adam"}}}
    crds.apply(body, namespace)
    # a server-side dry run returns the object as it would be stored, after pruning, and races no
    # operator pass that might rewrite the status meanwhile
    patch = json.dumps({"status": status})
    result = crds.run("patch", kind, body["metadata"]["name"], "-n", namespace, "--subresource=status",
                      "--type=merge", "-p", patch, "--dry-run=server", "-o", "json")
    stored = json.loads(result.stdout)["status"]
    assert _without_nulls(stored) == _without_nulls(copy.deepcopy(status))
    if kind == "trial":  # a non-finite report stays in the curve, by name
        assert stored["curve"][1]["nonFinite"] == ["score"]


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value
