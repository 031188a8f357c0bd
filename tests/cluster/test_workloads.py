"""Real GPU-cluster machinery on the offline cluster: a two-replica JobSet trial, and Kueue's quota.

The JobSet and Kueue controllers are built from the Go module proxy at pinned versions and run as
pods (``hack/addons``), webhooks and all; the operator runs with ``KUBETUNE_TRIAL_KINDS=JobSet``.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster.conftest import ROOT, Kubectl, OperatorProcess, wait_for
from tests.cluster.manifests import experiment, score
from tests.cluster.test_experiment import finished

pytestmark = pytest.mark.cluster

ADDONS = ROOT / "hack" / "addons"


def _addon(kube: Kubectl, name: str) -> None:
    """Build (cached) and install the add-on on the offline cluster; loudly, never skipped."""
    for script in ("build.sh", "install.sh"):
        done = subprocess.run(["bash", str(ADDONS / script), name], capture_output=True, text=True, timeout=1800,
                              env={**os.environ, "KUBECONFIG": kube.kubeconfig})
        if done.returncode != 0:
            pytest.fail(f"hack/addons/{script} {name} failed:\n{done.stderr[-3000:]}", pytrace=False)


@pytest.fixture(scope="session")
def jobset(crds: Kubectl) -> Kubectl:
    _addon(crds, "jobset")
    return crds


@pytest.fixture(scope="session")
def kueue(jobset: Kubectl) -> Kubectl:
    _addon(jobset, "kueue")
    return jobset


#: Each replica prints its rank and parameters; rank 0 reports the score, rank 1 a decoy.
RANKED = (
    "import json, os, time\n"
    "rank = os.environ['JOB_COMPLETION_INDEX']\n"
    "x = float(os.environ['KUBETUNE_PARAM_X']); y = float(os.environ['KUBETUNE_PARAM_Y'])\n"
    "print(f'rank {rank} of {os.environ[\"KUBETUNE_TRIAL\"]}: x={x} y={y}', flush=True)\n"
    "time.sleep(2)\n"
    "score = 1.0 - (x - 0.3) ** 2 - (y - 0.7) ** 2 if rank == '0' else -100.0\n"
    "open('/dev/termination-log', 'w').write(json.dumps({'score': score, 'x2': x * x}))\n"
)


def jobset_experiment(name: str, **spec: Any) -> dict[str, Any]:
    body = experiment(name, RANKED, **spec)
    pod = body["spec"]["trialTemplate"]["spec"]["template"]
    body["spec"]["trialTemplate"] = {"kind": "JobSet", "spec": {"replicatedJobs": [{
        "name": "trainer", "replicas": 1,
        "template": {"spec": {"parallelism": 2, "completions": 2, "completionMode": "Indexed", "backoffLimit": 0,
                              "template": pod}},
    }]}}
    return body


def test_a_two_replica_jobset_trial_runs_and_rank_zero_reports_the_metrics(
        operator: OperatorProcess, jobset: Kubectl, namespace: str) -> None:
    jobset.apply(jobset_experiment("multi", max_trials=2, parallel=1), namespace)
    body = wait_for(lambda: finished(jobset, namespace, "multi"), timeout=300, what="the JobSet experiment to end")
    assert body["status"]["phase"] == "Succeeded", body["status"]
    assert (body["status"]["trials"]["created"], body["status"]["trials"]["succeeded"]) == (2, 2)
    for trial in jobset.items("trials", namespace):
        status, name = trial["status"], trial["metadata"]["name"]
        assert status["reason"] == "Completed", status
        assert status["objectiveValue"] == pytest.approx(score(trial["spec"]["params"]))  # rank 0's, not -100
        owned = jobset.get("jobset", name, namespace) or {}
        assert owned["metadata"]["ownerReferences"][0]["uid"] == trial["metadata"]["uid"]
        assert owned["metadata"]["annotations"]["kubetune.io/attempt"] == "0"
        pods = jobset.items("pods", namespace, selector=f"kubetune.io/trial={name}")
        assert sorted(p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] for p in pods) == ["0", "1"]
        for pod in pods:  # the parameters reach every replica
            env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
            assert float(env["KUBETUNE_PARAM_X"]) == trial["spec"]["params"]["x"]
            rank = pod["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"]
            log = jobset.run("logs", "-n", namespace, pod["metadata"]["name"]).stdout
            assert log.startswith(f"rank {rank} of {name}: x=")


def test_a_jobset_kind_the_operator_was_not_given_ends_invalid_spec(
        operator: OperatorProcess, crds: Kubectl, namespace: str) -> None:
    body = jobset_experiment("nokind", max_trials=1, parallel=1)
    body["spec"]["trialTemplate"]["kind"] = "PyTorchJob"
    body["spec"]["trialTemplate"]["spec"] = {"pytorchReplicaSpecs": {"Master": {
        "replicas": 1, "template": body["spec"]["trialTemplate"]["spec"]["replicatedJobs"][0]["template"]["spec"][
            "template"]}}}
    crds.apply(body, namespace)
    done = wait_for(lambda: finished(crds, namespace, "nokind"), timeout=60, what="the experiment to be refused")
    condition = next(c for c in done["status"]["conditions"] if c["type"] == "Failed")
    assert condition["reason"] == "InvalidSpec"
    assert "PyTorchJob is not enabled in this operator" in condition["message"]
    assert crds.items("trials", namespace) == []


def _ended(job: dict[str, Any]) -> bool:
    return any(c["type"] in ("Complete", "Failed") and c["status"] == "True"
               for c in (job.get("status") or {}).get("conditions") or [])


@pytest.fixture
def cluster_queue(kueue: Kubectl, namespace: str) -> Iterator[str]:
    """A ClusterQueue with room for one trial at a time (15m CPU; each trial asks 10m), and its LocalQueue."""
    name = f"kt-{uuid.uuid4().hex[:6]}"
    for manifest in (
        {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "ResourceFlavor", "metadata": {"name": "kt-default"}},
        {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "ClusterQueue", "metadata": {"name": name},
         "spec": {"namespaceSelector": {}, "resourceGroups": [{
             "coveredResources": ["cpu", "memory"],
             "flavors": [{"name": "kt-default", "resources": [{"name": "cpu", "nominalQuota": "15m"},
                                                              {"name": "memory", "nominalQuota": "1Gi"}]}]}]}},
        {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "LocalQueue",
         "metadata": {"name": "team", "namespace": namespace}, "spec": {"clusterQueue": name}},
    ):
        kueue.run("apply", "-f", "-", input=json.dumps(manifest))
    try:
        yield name
    finally:
        kueue.run("delete", "localqueue", "team", "-n", namespace, "--wait=false", check=False)
        kueue.run("delete", "clusterqueue", name, "--wait=false", check=False)


def test_kueue_admits_one_trial_at_a_time_and_the_others_wait_as_queued(
        operator: OperatorProcess, kueue: Kubectl, namespace: str, cluster_queue: str) -> None:
    body = experiment("quota", max_trials=3, parallel=2, sleep=3)
    body["spec"]["trialTemplate"]["metadata"] = {"labels": {"kueue.x-k8s.io/queue-name": "team"}}
    body["spec"]["trialTemplate"]["spec"]["suspend"] = True
    kueue.apply(body, namespace)
    seen: dict[str, Any] = {"queued": 0, "running": 0, "active": 0}

    def watch() -> dict[str, Any] | None:
        exp = kueue.get("experiment", "quota", namespace) or {}
        counts = (exp.get("status") or {}).get("trials") or {}
        seen["queued"] = max(seen["queued"], counts.get("queued", 0))
        seen["running"] = max(seen["running"], counts.get("running", 0))
        seen["active"] = max(seen["active"], counts.get("pending", 0) + counts.get("running", 0))
        admitted = [j["metadata"]["name"] for j in kueue.items("jobs", namespace)
                    if not j["spec"].get("suspend") and not _ended(j)]
        assert len(admitted) <= 1, admitted  # the quota holds one
        conditions = (exp.get("status") or {}).get("conditions") or []
        seen["condition"] = seen.get("condition") or any(c["type"] == "Queued" and c["status"] == "True"
                                                         for c in conditions)
        return finished(kueue, namespace, "quota")

    done = wait_for(watch, timeout=300, what="the queued experiment to end", interval=0.5)
    assert done["status"]["phase"] == "Succeeded" and done["status"]["trials"]["succeeded"] == 3
    assert seen["queued"] >= 1 and seen.get("condition"), seen  # a trial waited for quota, and said so
    assert seen["active"] <= 2 and seen["running"] <= 1, seen  # parallelTrials=2 held; one ran at a time
    workloads = kueue.items("workloads", namespace)
    assert len(workloads) == 3  # Kueue itself queued every trial's Job
    condition = next(c for c in done["status"]["conditions"] if c["type"] == "Queued")
    assert condition["status"] == "False"
