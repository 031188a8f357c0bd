"""Lifecycle controls: delete cascades, suspend and resume, extend a finished experiment."""

from __future__ import annotations

import functools
import json
import time
from typing import Any

import pytest

from kubetune.api import EXPERIMENT_LABEL
from tests.cluster.conftest import Kubectl, OperatorProcess, wait_for
from tests.cluster.manifests import SLEEP, experiment
from tests.cluster.test_experiment import check_succeeded_experiment, finished

pytestmark = pytest.mark.cluster


def running_trials(kube: Kubectl, namespace: str, name: str) -> int:
    trials = kube.items("trials", namespace, f"{EXPERIMENT_LABEL}={name}")
    return sum(1 for t in trials if (t.get("status") or {}).get("phase") == "Running")


def phase_is(kube: Kubectl, namespace: str, name: str, phase: str) -> dict[str, Any] | None:
    body = kube.get("experiment", name, namespace)
    return body if ((body or {}).get("status") or {}).get("phase") == phase else None


def finished_with(kube: Kubectl, namespace: str, name: str, *, created: int) -> dict[str, Any] | None:
    body = finished(kube, namespace, name)
    return body if body is not None and body["status"]["trials"]["created"] == created else None


def gone(kube: Kubectl, kind: str, namespace: str) -> bool:
    return not kube.items(kind, namespace)


def test_deleting_an_experiment_deletes_its_trials_jobs_and_pods(
        operator: OperatorProcess, crds: Kubectl, namespace: str) -> None:
    crds.apply(experiment("doomed", SLEEP, max_trials=4, parallel=2), namespace)
    wait_for(lambda: running_trials(crds, namespace, "doomed") == 2, timeout=120, what="two running trials")
    assert len(crds.items("pods", namespace)) == 2
    crds.run("delete", "experiment", "doomed", "-n", namespace, "--wait=true", timeout=120)
    for kind in ("trials", "jobs", "pods"):
        wait_for(functools.partial(gone, crds, kind, namespace), timeout=120, what=f"all {kind} to be gone")


def test_a_suspended_experiment_starts_nothing_until_resumed(
        operator: OperatorProcess, crds: Kubectl, namespace: str) -> None:
    crds.apply(experiment("nap", max_trials=4, parallel=2, suspend=True), namespace)
    body = wait_for(lambda: phase_is(crds, namespace, "nap", "Suspended"), timeout=60, what="phase Suspended")
    assert body["status"]["trials"]["created"] == 0
    time.sleep(2)  # a suspended experiment must stay idle: nothing to await but the absence of trials
    assert crds.items("trials", namespace) == []
    resume = {"spec": {"suspend": False}}
    crds.run("patch", "experiment", "nap", "-n", namespace, "--type=merge", "-p", json.dumps(resume))
    body = wait_for(lambda: finished(crds, namespace, "nap"), timeout=180, what="the resumed experiment to finish",
                    interval=0.5)
    check_succeeded_experiment(crds, namespace, "nap", body, 4)
    assert not [c for c in body["status"]["conditions"] if c["type"] == "Suspended" and c["status"] == "True"]


def test_raising_max_trials_continues_a_finished_experiment(
        operator: OperatorProcess, crds: Kubectl, namespace: str) -> None:
    crds.apply(experiment("more", max_trials=2, parallel=2), namespace)
    body = wait_for(lambda: finished(crds, namespace, "more"), timeout=120, what="the first 2 trials", interval=0.5)
    check_succeeded_experiment(crds, namespace, "more", body, 2)
    patch = {"spec": {"maxTrials": 5}}
    crds.run("patch", "experiment", "more", "-n", namespace, "--type=merge", "-p", json.dumps(patch))
    body = wait_for(lambda: finished_with(crds, namespace, "more", created=5), timeout=180,
                    what="the extended experiment to finish", interval=0.5)
    check_succeeded_experiment(crds, namespace, "more", body, 5)
