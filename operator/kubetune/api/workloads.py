"""The workload kinds a trial can run as: a batch/v1 Job, or a multi-node one (JobSet, PyTorchJob).

Purely declarative: no I/O. A trial template names its kind (``trialTemplate.kind``, default
Job); each kind here says where its API lives, which of its status conditions mean success and
failure, where its pod templates are (every one gets the parameters and the trial's labels), and
which pod's report carries the metrics when the template does not say (``primaryPodLabels``):
rank 0 of the first replica group.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

Body = dict[str, Any]


class WorkloadKind(StrEnum):
    JOB = "Job"
    JOB_SET = "JobSet"
    PYTORCH_JOB = "PyTorchJob"


@dataclass(frozen=True)
class Workload:
    kind: WorkloadKind
    api_version: str
    plural: str
    #: The status condition (type, status True) that means the workload succeeded / failed.
    success_condition: str
    failure_condition: str
    #: The pod whose report carries the metrics, from the workload's spec, when the template does not say.
    primary_pod_labels: Callable[[Body], dict[str, str]]

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]


def _job_primary(spec: Body) -> dict[str, str]:
    return {}  # a Job's pod is the trial's pod (the newest, when the Job retried)


def _jobset_primary(spec: Body) -> dict[str, str]:
    """Rank 0: job 0 of the first replicated job, completion index 0 (an Indexed Job's first pod)."""
    jobs = spec.get("replicatedJobs") or [{}]
    labels = {"jobset.sigs.k8s.io/job-index": "0"}
    if jobs[0].get("name"):
        labels["jobset.sigs.k8s.io/replicatedjob-name"] = str(jobs[0]["name"])
    job = (jobs[0].get("template") or {}).get("spec") or {}
    if job.get("completionMode", "Indexed") == "Indexed":
        labels["batch.kubernetes.io/job-completion-index"] = "0"
    return labels


def _pytorch_primary(spec: Body) -> dict[str, str]:
    """Rank 0: the Master replica when there is one, else Worker 0."""
    replicas = spec.get("pytorchReplicaSpecs") or {}
    kind = "master" if "Master" in replicas else "worker"
    return {"training.kubeflow.org/replica-type": kind, "training.kubeflow.org/replica-index": "0"}


WORKLOADS: dict[WorkloadKind, Workload] = {
    WorkloadKind.JOB: Workload(WorkloadKind.JOB, "batch/v1", "jobs", "Complete", "Failed", _job_primary),
    WorkloadKind.JOB_SET: Workload(WorkloadKind.JOB_SET, "jobset.x-k8s.io/v1alpha2", "jobsets", "Completed", "Failed",
                                   _jobset_primary),
    WorkloadKind.PYTORCH_JOB: Workload(WorkloadKind.PYTORCH_JOB, "kubeflow.org/v1", "pytorchjobs", "Succeeded",
                                       "Failed", _pytorch_primary),
}


def pod_templates(spec: Body, path: str = "spec") -> Iterator[tuple[str, Body]]:
    """(path, template) of every pod template (a dict whose ``spec`` has ``containers``) in ``spec``.

    Mutable: the templates are the dicts inside ``spec``, so a renderer can change them in place.
    """
    if isinstance(spec, dict):
        inner = spec.get("spec")
        if isinstance(inner, dict) and isinstance(inner.get("containers"), list):
            yield path, spec
            return
        for key, value in spec.items():
            yield from pod_templates(value, f"{path}.{key}")
    elif isinstance(spec, list):
        for i, value in enumerate(spec):
            yield from pod_templates(value, f"{path}[{i}]")
