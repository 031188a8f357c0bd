"""The CRDs on a real API server: installed, rejecting bad Experiments, keeping every status field."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.cluster.conftest import Kubectl
from tests.cluster.manifests import experiment

pytestmark = pytest.mark.cluster

Mutation = Callable[[dict[str, Any]], None]


def _param(index: int, **changes: Any) -> Mutation:
    def mutate(body: dict[str, Any]) -> None:
        body["spec"]["parameters"][index].update(changes)
        for key in [k for k, v in changes.items() if v is None]:
            del body["spec"]["parameters"][index][key]
    return mutate


def _spec(**changes: Any) -> Mutation:
    def mutate(body: dict[str, Any]) -> None:
        for key, value in changes.items():
            if value is None:
                body["spec"].pop(key, None)
            else:
                body["spec"][key] = value
    return mutate


def _objective(**changes: Any) -> Mutation:
    def mutate(body: dict[str, Any]) -> None:
        body["spec"]["objective"].update(changes)
    return mutate


def _name(name: str) -> Mutation:
    def mutate(body: dict[str, Any]) -> None:
        body["metadata"]["name"] = name
    return mutate


def _no_containers(body: dict[str, Any]) -> None:
    body["spec"]["trialTemplate"]["spec"]["template"]["spec"]["containers"] = []


def _duplicate_parameter(body: dict[str, Any]) -> None:
    body["spec"]["parameters"].append(dict(body["spec"]["parameters"][0]))


# (case, mutation, words the server's message must contain: the field and what is wrong)
INVALID: list[tuple[str, Mutation, list[str]]] = [
    ("max below min", _param(0, min=2.0, max=1.0), ["spec.parameters[0]", "max must be greater than min"]),
    ("log scale with min 0", _param(0, scale="log"), ["spec.parameters[0]", "log scale needs min > 0"]),
    ("categorical without values", _param(0, type="categorical", min=None, max=None),
     ["spec.parameters[0]", "categorical parameters need at least one value"]),
    ("values on a double", _param(0, values=["a", "b"]),
     ["spec.parameters[0]", "values is only for categorical parameters"]),
    ("double without max", _param(0, max=None), ["spec.parameters[0]", "need both min and max"]),
    ("int with fractional bounds", _param(0, type="int", min=0.5, max=3.0),
     ["spec.parameters[0]", "whole-number"]),
    ("bad parameter name", _param(0, name="learning-rate"), ["spec.parameters[0].name"]),
    ("duplicate parameter names", _duplicate_parameter, ["spec.parameters[2]", "Duplicate value"]),
    ("parallelTrials above maxTrials", _spec(parallelTrials=9, maxTrials=3),
     ["spec", "parallelTrials must not exceed maxTrials"]),
    ("maxTrials 0", _spec(maxTrials=0, parallelTrials=0), ["spec.maxTrials"]),
    ("unknown goal", _objective(goal="maximise"), ["spec.objective.goal", "maximise"]),
    ("bad metric name", _objective(metric="9 lives"), ["spec.objective.metric"]),
    ("additionalMetrics repeats the metric", _objective(additionalMetrics=["score"]),
     ["spec.objective", "additionalMetrics must not repeat the objective metric"]),
    ("unknown algorithm", _spec(algorithm={"name": "hyperband"}), ["spec.algorithm.name", "hyperband"]),
    ("missing trialTemplate", _spec(trialTemplate=None), ["spec.trialTemplate", "Required"]),
    ("no containers", _no_containers, ["spec.trialTemplate.spec.template.spec.containers"]),
    ("unknown metricsSource", _spec(metricsSource="Stderr"), ["spec.metricsSource", "Stderr"]),
    ("negative maxFailedTrials", _spec(maxFailedTrials=-1), ["spec.maxFailedTrials"]),
    ("name too long", _name("e" * 60), ["metadata.name", "52"]),
]


@pytest.mark.parametrize(("case", "mutate", "words"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_experiments_are_rejected_by_the_api_server(
        crds: Kubectl, namespace: str, case: str, mutate: Mutation, words: list[str]) -> None:
    body = experiment("invalid")
    mutate(body)
    result = crds.apply(body, namespace, check=False)
    assert result.returncode != 0, f"{case}: accepted"
    for word in words:
        assert word in result.stderr, f"{case}: {word!r} not in: {result.stderr}"


def test_the_crds_are_established(crds: Kubectl) -> None:
    for name in ("experiments.kubetune.io", "trials.kubetune.io"):
        crd = crds.json("get", "crd", name)
        established = [c for c in crd["status"]["conditions"] if c["type"] == "Established"]
        assert established and established[0]["status"] == "True"
        assert crd["spec"]["versions"][0]["subresources"] == {"status": {}}


def test_a_valid_experiment_is_accepted(crds: Kubectl, namespace: str) -> None:
    crds.run("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=json.dumps(experiment("valid")))


FULL_EXPERIMENT_STATUS: dict[str, Any] = {
    "phase": "Running",
    "conditions": [{"type": "Running", "status": "True", "reason": "TrialsRunning", "message": "1 running",
                    "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}],
    "observedGeneration": 1,
    "trials": {"created": 3, "pending": 1, "running": 1, "succeeded": 1, "failed": 0, "killed": 0},
    "progress": "1/8",
    "bestTrial": {"name": "keep-0", "params": {"x": 0.25, "y": 0.5, "opt": "adam", "layers": 3},
                  "objectiveValue": 0.93, "metrics": {"score": 0.93, "x2": 0.0625}},
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


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value
