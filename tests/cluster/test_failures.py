"""Failure classes: each failed Trial says why, with the Kubernetes-level reason."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubetune.api import EXPERIMENT_LABEL
from tests.cluster.conftest import Kubectl, OperatorProcess, wait_for
from tests.cluster.manifests import EXIT_1, GARBAGE, SLEEP, experiment
from tests.cluster.test_experiment import finished

pytestmark = pytest.mark.cluster


def first_trial(kube: Kubectl, namespace: str, name: str) -> dict[str, Any] | None:
    return kube.get("trial", f"{name}-0", namespace)


def trial_finished(kube: Kubectl, namespace: str, name: str) -> dict[str, Any] | None:
    trial = first_trial(kube, namespace, name)
    phase = ((trial or {}).get("status") or {}).get("phase")
    return trial if phase in ("Succeeded", "Failed", "Killed") else None


# (case, experiment overrides, reason, words in the message)
CASES: list[tuple[str, dict[str, Any], str, list[str]]] = [
    ("exit 1", {"script": EXIT_1}, "NonZeroExit", ["exited with code 1", "boom: the trial gave up"]),
    ("garbage metrics", {"script": GARBAGE}, "MetricsInvalid", ["not JSON", "score: very good{"]),
    ("image never pulled", {"image": "local/no-such-image:dev"}, "ImagePullFailed", ["no-such-image"]),
]


@pytest.mark.parametrize(("case", "overrides", "reason", "words"), CASES, ids=[c[0] for c in CASES])
def test_a_failed_trial_says_why(operator: OperatorProcess, crds: Kubectl, namespace: str, case: str,
                                 overrides: dict[str, Any], reason: str, words: list[str]) -> None:
    crds.apply(experiment("fail", max_trials=1, parallel=1, **overrides), namespace)
    trial = wait_for(lambda: trial_finished(crds, namespace, "fail"), timeout=120, what=f"the {case} trial")
    assert trial["status"]["phase"] == "Failed"
    assert trial["status"]["reason"] == reason, trial["status"]
    for word in words:
        assert word in trial["status"]["message"], trial["status"]
    body = wait_for(lambda: finished(crds, namespace, "fail"), timeout=60, what="the experiment to end")
    assert body["status"]["phase"] == "Failed"
    condition = next(c for c in body["status"]["conditions"] if c["type"] == "Failed")
    assert condition["reason"] == "NoSuccessfulTrial"
    assert "TrialFailed" in {e["reason"] for e in crds.items("events", namespace)}


def test_a_deleted_job_fails_its_trial_and_is_not_run_again(
        operator: OperatorProcess, crds: Kubectl, namespace: str) -> None:
    crds.apply(experiment("gone", SLEEP, max_trials=1, parallel=1), namespace)
    wait_for(lambda: ((first_trial(crds, namespace, "gone") or {}).get("status") or {}).get("phase") == "Running",
             timeout=120, what="the trial to run")
    crds.run("delete", "job", "gone-0", "-n", namespace, "--wait=false")
    trial = wait_for(lambda: trial_finished(crds, namespace, "gone"), timeout=60, what="the trial to fail")
    assert (trial["status"]["phase"], trial["status"]["reason"]) == ("Failed", "JobDeleted")
    body = wait_for(lambda: finished(crds, namespace, "gone"), timeout=60, what="the experiment to end")
    assert body["status"]["trials"]["failed"] == 1
    wait_for(lambda: not crds.items("jobs", namespace), timeout=60, what="the Job to be gone for good")
    assert len(crds.items("trials", namespace)) == 1


def test_a_trial_past_its_deadline_fails_with_deadline_exceeded(
        operator: OperatorProcess, crds: Kubectl, namespace: str) -> None:
    body = experiment("slow", SLEEP, max_trials=1, parallel=1)
    body["spec"]["trialTemplate"]["spec"]["activeDeadlineSeconds"] = 3
    crds.apply(body, namespace)
    trial = wait_for(lambda: trial_finished(crds, namespace, "slow"), timeout=120, what="the trial to fail")
    assert (trial["status"]["phase"], trial["status"]["reason"]) == ("Failed", "DeadlineExceeded")
    assert "activeDeadlineSeconds=3" in trial["status"]["message"]


def test_max_failed_trials_ends_the_experiment_failed(
        operator: OperatorProcess, crds: Kubectl, namespace: str) -> None:
    crds.apply(experiment("flaky", EXIT_1, max_trials=10, parallel=1, maxFailedTrials=1), namespace)
    body = wait_for(lambda: finished(crds, namespace, "flaky"), timeout=180, what="the experiment to end",
                    interval=0.5)
    status = body["status"]
    assert status["phase"] == "Failed"
    condition = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert condition["status"] == "True"
    assert condition["reason"] == "TooManyFailedTrials"
    assert "2 trials failed, more than maxFailedTrials=1" in condition["message"]
    trials = crds.items("trials", namespace, f"{EXPERIMENT_LABEL}=flaky")
    assert len(trials) == 2 and all(t["status"]["reason"] == "NonZeroExit" for t in trials)


def test_a_spec_the_schema_accepts_but_the_models_reject_fails_with_invalid_spec(
        operator: OperatorProcess, crds: Kubectl, namespace: str) -> None:
    odd = experiment("odd")
    odd["spec"]["parameters"][1].update(min=1.0, max=1.000000001)  # one value at 8 significant digits
    crds.apply(odd, namespace)
    body = wait_for(lambda: finished(crds, namespace, "odd"), timeout=60, what="the experiment to fail")
    condition = next(c for c in body["status"]["conditions"] if c["type"] == "Failed")
    assert (body["status"]["phase"], condition["reason"]) == ("Failed", "InvalidSpec")
    assert "spec.parameters[1]" in condition["message"] and "8 significant digits" in condition["message"]
    assert crds.items("trials", namespace) == []
    fixed = {"spec": {"parameters": [odd["spec"]["parameters"][0], {**odd["spec"]["parameters"][1], "max": 2.0}],
                      "maxTrials": 2, "parallelTrials": 2}}
    crds.run("patch", "experiment", "odd", "-n", namespace, "--type=merge", "-p", json.dumps(fixed))
    body = wait_for(lambda: succeeded_with(crds, namespace, "odd", 2), timeout=120,
                    what="the fixed experiment to succeed", interval=0.5)
    assert not [c for c in body["status"]["conditions"] if c["type"] == "Failed" and c["status"] == "True"]


def succeeded_with(kube: Kubectl, namespace: str, name: str, trials: int) -> dict[str, Any] | None:
    body = kube.get("experiment", name, namespace)
    status = (body or {}).get("status") or {}
    return body if status.get("phase") == "Succeeded" and status["trials"]["succeeded"] == trials else None


HOG = "chunks = []\nwhile True:\n    chunks.append(bytearray(16 << 20))\n"


@pytest.mark.parametrize(("case", "resources", "script", "reason", "words"), [
    ("over its memory limit", {"limits": {"memory": "48Mi"}, "requests": {"memory": "48Mi", "cpu": "10m"}}, HOG,
     "OOMKilled", ["exceeding its memory limit"]),
    ("requests more CPU than any node has", {"requests": {"cpu": "64", "memory": "16Mi"}}, SLEEP,
     "Unschedulable", ["unschedulable for over 15 s", "Insufficient cpu"]),
], ids=["oom", "unschedulable"])
def test_kubernetes_level_failures_are_classified(
        operator: OperatorProcess, crds: Kubectl, namespace: str, case: str, resources: dict[str, Any], script: str,
        reason: str, words: list[str]) -> None:
    body = experiment("kube", script, max_trials=1, parallel=1)
    body["spec"]["trialTemplate"]["spec"]["template"]["spec"]["containers"][0]["resources"] = resources
    crds.apply(body, namespace)
    trial = wait_for(lambda: trial_finished(crds, namespace, "kube"), timeout=120, what=f"the trial {case}")
    assert (trial["status"]["phase"], trial["status"]["reason"]) == ("Failed", reason), trial["status"]
    for word in words:
        assert word in trial["status"]["message"], trial["status"]
    wait_for(lambda: not crds.items("jobs", namespace) or reason == "OOMKilled", timeout=60,
             what="the unschedulable trial's Job to be deleted")
