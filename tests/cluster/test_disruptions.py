"""Disruptions are retried, not judged; a queued trial waits without breaking parallelTrials.

Each disruption is made for real on the offline cluster: an eviction through the Eviction API, a
drain of the node (cordon, then evict), a pod deleted by hand. The experiment still ends with
exactly ``maxTrials`` counted trials, all succeeded, and the disruption recorded on the trial
that was run again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.cluster.conftest import Kubectl, OperatorProcess, wait_for
from tests.cluster.manifests import experiment
from tests.cluster.test_experiment import finished

pytestmark = pytest.mark.cluster


def trial_status(kube: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    return (kube.get("trial", name, namespace) or {}).get("status") or {}


def running_pod(kube: Kubectl, namespace: str, trial: str) -> str | None:
    pods = kube.items("pods", namespace, selector=f"kubetune.io/trial={trial}")
    live = [p for p in pods if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]
    return live[0]["metadata"]["name"] if live else None


def evict(kube: Kubectl, namespace: str, pod: str) -> None:
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod, "namespace": namespace}}
    kube.run("create", "--raw", f"/api/v1/namespaces/{namespace}/pods/{pod}/eviction", "-f", "-",
             input=json.dumps(eviction))


def node(kube: Kubectl) -> str:
    return str(kube.json("get", "nodes")["items"][0]["metadata"]["name"])


def drain(kube: Kubectl, namespace: str, pod: str) -> None:
    """``kubectl drain`` of the one node, limited to the trial's pod (other tests' pods are left be)."""
    trial = pod.rsplit("-", 1)[0]
    kube.run("drain", node(kube), "--ignore-daemonsets", "--delete-emptydir-data", "--force", "--timeout=60s",
             f"--pod-selector=kubetune.io/trial={trial}")


def delete(kube: Kubectl, namespace: str, pod: str) -> None:
    kube.run("delete", "pod", pod, "-n", namespace, "--wait=false")


# (case, how, the disruption reason recorded on the trial)
DISRUPTIONS: list[tuple[str, Callable[[Kubectl, str, str], None], str]] = [
    ("evicted", evict, "EvictionByEvictionAPI"),
    ("drained", drain, "EvictionByEvictionAPI"),
    ("deleted by hand", delete, "PodDeleted"),
]


@pytest.mark.parametrize(("case", "disrupt", "reason"), DISRUPTIONS, ids=[c[0] for c in DISRUPTIONS])
def test_a_disrupted_trial_runs_again_and_is_not_counted_as_failed(
        operator: OperatorProcess, crds: Kubectl, namespace: str, case: str,
        disrupt: Callable[[Kubectl, str, str], None], reason: str) -> None:
    crds.apply(experiment("spot", max_trials=2, parallel=1, sleep=6, maxFailedTrials=0), namespace)
    pod = wait_for(lambda: running_pod(crds, namespace, "spot-0"), timeout=120, what="trial spot-0 to run")
    try:
        disrupt(crds, namespace, pod)
        status = wait_for(lambda: (s := trial_status(crds, namespace, "spot-0")).get("retries") and s,
                          timeout=60, what="the retry to be recorded")
    finally:
        if case == "drained":
            crds.run("uncordon", node(crds))
    assert status["disruptions"][0]["pod"] == pod
    assert status["disruptions"][0]["reason"] == reason, status["disruptions"]
    assert status["message"].startswith("retry 1 of 3: "), status["message"]
    body = wait_for(lambda: finished(crds, namespace, "spot"), timeout=180, what="the experiment to end")
    assert body["status"]["phase"] == "Succeeded", body["status"]
    assert body["status"]["trials"]["created"] == 2
    assert (body["status"]["trials"]["succeeded"], body["status"]["trials"]["failed"]) == (2, 0)
    assert body["status"]["retries"] == 1
    final = trial_status(crds, namespace, "spot-0")
    assert (final["phase"], final["reason"], final["retries"]) == ("Succeeded", "Completed", 1)
    jobs = crds.items("jobs", namespace, selector="kubetune.io/trial=spot-0")
    assert [j["metadata"]["annotations"]["kubetune.io/attempt"] for j in jobs] == ["1"]
    events = [e for e in crds.items("events", namespace) if e["reason"] == "TrialDisrupted"]
    assert len(events) == 1 and pod in events[0]["message"] and "retry 1 of 3" in events[0]["message"]
    assert len(crds.items("trials", namespace)) == 2
    rows = crds.run("get", "trials", "-n", namespace, "-o", "wide").stdout.splitlines()
    header, first = rows[0], next(r for r in rows if r.startswith("spot-0 "))
    at = header.index("RETRIES")
    assert first[at:].split()[0] == "1", rows  # kubectl get trials -o wide shows the retry


def test_an_operator_killed_during_a_retry_makes_it_once(
        operator: OperatorProcess, crds: Kubectl, namespace: str) -> None:
    crds.apply(experiment("spot", max_trials=1, parallel=1, sleep=6), namespace)
    pod = wait_for(lambda: running_pod(crds, namespace, "spot-0"), timeout=120, what="trial spot-0 to run")
    evict(crds, namespace, pod)
    wait_for(lambda: trial_status(crds, namespace, "spot-0").get("retries"), timeout=60, what="the retry")
    operator.kill()  # between recording the retry and deleting the old Job, or making the new one
    operator.start()
    body = wait_for(lambda: finished(crds, namespace, "spot"), timeout=180, what="the experiment to end")
    assert (body["status"]["phase"], body["status"]["retries"]) == ("Succeeded", 1)
    status = trial_status(crds, namespace, "spot-0")
    assert (status["phase"], status["retries"], len(status["disruptions"])) == ("Succeeded", 1, 1)
    events = [e for e in crds.items("events", namespace) if e["reason"] == "TrialDisrupted"]
    assert len(events) == 1, [e["message"] for e in events]


def test_a_trial_disrupted_once_more_than_max_trial_retries_fails_disrupted_and_the_next_one_runs(
        operator: OperatorProcess, crds: Kubectl, namespace: str) -> None:
    crds.apply(experiment("spot", max_trials=2, parallel=1, sleep=6, maxTrialRetries=1), namespace)
    first = wait_for(lambda: running_pod(crds, namespace, "spot-0"), timeout=120, what="trial spot-0 to run")
    evict(crds, namespace, first)
    second = wait_for(lambda: (p := running_pod(crds, namespace, "spot-0")) != first and p, timeout=120,
                      what="the retry of spot-0 to run")
    delete(crds, namespace, second)
    body = wait_for(lambda: finished(crds, namespace, "spot"), timeout=180, what="the experiment to end")
    status = trial_status(crds, namespace, "spot-0")
    assert (status["phase"], status["reason"], status["retries"]) == ("Failed", "Disrupted", 1)
    assert [d["reason"] for d in status["disruptions"]] == ["EvictionByEvictionAPI", "PodDeleted"]
    assert "(after 1 retry maxTrialRetries=1)" in status["message"]
    assert (body["status"]["trials"]["created"], body["status"]["trials"]["failed"],
            body["status"]["trials"]["succeeded"]) == (2, 1, 1)
    assert trial_status(crds, namespace, "spot-1")["phase"] == "Succeeded"
    job = crds.get("job", "spot-0", namespace) or {}  # kept, as a failed trial's Job is, for its logs
    assert job["metadata"]["annotations"]["kubetune.io/attempt"] == "1"


def suspended_job(kube: Kubectl, namespace: str) -> str | None:
    jobs = [j for j in kube.items("jobs", namespace) if j["spec"].get("suspend")]
    return jobs[0]["metadata"]["name"] if jobs else None


def test_a_queued_trial_waits_for_quota_without_breaking_parallel_trials(
        operator: OperatorProcess, crds: Kubectl, namespace: str) -> None:
    """Jobs made suspended, resumed by hand as any queue controller would admit them (Kueue itself:
    tests/cluster/test_workloads.py; its label is left out here, so that Kueue, when installed, keeps out)."""
    body = experiment("queued", max_trials=2, parallel=1)
    body["spec"]["trialTemplate"]["spec"]["suspend"] = True
    body["spec"]["trialTemplate"]["metadata"] = {"labels": {"example.com/queue": "user-queue"}}
    crds.apply(body, namespace)
    for index in range(2):
        name = f"queued-{index}"
        wait_for(lambda n=name: trial_status(crds, namespace, n).get("queued"), timeout=60, what=f"{name} queued")
        exp = wait_for(lambda: (e := crds.get("experiment", "queued", namespace)) and
                       (e.get("status") or {}).get("trials", {}).get("queued") == 1 and e,
                       timeout=60, what="the experiment to count the queued trial")
        condition = next(c for c in exp["status"]["conditions"] if c["type"] == "Queued")
        assert (condition["status"], condition["reason"]) == ("True", "WaitingForQuota")
        assert exp["status"]["trials"]["created"] == index + 1  # parallelTrials=1: nothing else started
        assert trial_status(crds, namespace, name)["phase"] == "Pending"
        job = crds.get("job", name, namespace) or {}
        assert job["metadata"]["labels"]["example.com/queue"] == "user-queue"
        crds.run("patch", "job", name, "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":false}}')
        wait_for(lambda n=name: trial_status(crds, namespace, n).get("phase") == "Succeeded", timeout=120,
                 what=f"{name} to run once admitted")
    body = wait_for(lambda: finished(crds, namespace, "queued"), timeout=60, what="the experiment to end")
    assert body["status"]["phase"] == "Succeeded" and body["status"]["trials"]["succeeded"] == 2
    condition = next(c for c in body["status"]["conditions"] if c["type"] == "Queued")
    assert (condition["status"], condition["reason"]) == ("False", "Admitted")
    assert "TrialQueued" in {e["reason"] for e in crds.items("events", namespace)}
