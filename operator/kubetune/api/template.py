"""The trial template: the workload one trial runs as (a Job, or a multi-node JobSet or PyTorchJob).

Its pods, images, resources (GPUs) and deadline belong to Kubernetes and are kept as written
(``OpenModel``); only what kubetune reads or renders is typed: the containers' command, args and
env (where ``${params.x}`` is substituted), the pod templates of every replica, and how the
workload's outcome and metrics are found (:mod:`kubetune.api.workloads` has each kind's defaults).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any, Self

from pydantic import ConfigDict, Field, model_validator

from kubetune.api.base import PRESERVE_UNKNOWN, Model, OpenModel, cel
from kubetune.api.workloads import WORKLOADS, Workload, WorkloadKind, pod_templates

#: ``${params.<name>}`` in a container's command, args or env values.
PARAM_REFERENCE = re.compile(r"\$\{params\.([A-Za-z_][A-Za-z0-9_]*)\}")


class Container(OpenModel):
    """A container of the trial's pod; fields beyond these are Kubernetes' own and kept as written."""

    name: str = Field(max_length=63)
    image: str | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    env: list[dict[str, Any]] | None = None
    working_dir: str | None = None


class PodSpec(OpenModel):
    containers: Annotated[list[Container], Field(min_length=1)]
    restart_policy: str | None = None


class PodTemplate(OpenModel):
    metadata: dict[str, Any] | None = Field(default=None, json_schema_extra=PRESERVE_UNKNOWN)
    spec: PodSpec


class JobSpec(OpenModel):
    """The workload's spec: a batch/v1 Job's (``template`` is its pod), or a JobSet's or a
    PyTorchJob's (their pod templates are inside their replicas); kept as written."""

    template: PodTemplate | None = None
    backoff_limit: int | None = Field(default=None, ge=0)
    active_deadline_seconds: int | None = Field(default=None, ge=1)


class TemplateMetadata(Model):
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class TrialTemplate(Model):
    """The workload of one trial: a batch/v1 Job (default), or a multi-node JobSet or PyTorchJob.

    Its training containers, images, resources (GPUs) and deadline are kept as written; every pod
    template gets the trial's parameters and labels.
    """

    model_config = ConfigDict(
        json_schema_extra=cel(
            ("(has(self.kind) && self.kind != 'Job') != has(self.spec.template)",
             "a Job template has its pod in spec.template; a JobSet or PyTorchJob template has its pod templates "
             "inside its replicas, and no spec.template"),
        )
    )

    api_version: str | None = Field(default=None, max_length=253, description=(
        "The workload's API version; default by kind: batch/v1, jobset.x-k8s.io/v1alpha2, kubeflow.org/v1."))
    kind: WorkloadKind = Field(default=WorkloadKind.JOB, strict=False, description=(
        "Job, JobSet or PyTorchJob (the operator must have the kind enabled: Helm value trialKinds)."))
    metadata: TemplateMetadata | None = None
    success_condition: str | None = Field(default=None, max_length=63, description=(
        "The status condition (True) that means the workload succeeded; default by kind: Complete, Completed, "
        "Succeeded."))
    failure_condition: str | None = Field(default=None, max_length=63, description=(
        "The status condition (True) that means the workload failed; default Failed."))
    primary_pod_labels: dict[str, str] | None = Field(default=None, description=(
        "Labels of the pod whose report carries the metrics; default rank 0 of the first replica group."))
    primary_container_name: str | None = Field(default=None, max_length=63, description=(
        "The container of that pod whose report carries the metrics; default its first."))
    spec: JobSpec

    @model_validator(mode="after")
    def _pods_where_the_kind_has_them(self) -> Self:
        if self.kind is WorkloadKind.JOB and self.spec.template is None:
            raise ValueError("a Job template needs spec.template (the trial's pod)")
        if self.kind is not WorkloadKind.JOB:
            if self.spec.template is not None:
                raise ValueError(f"a {self.kind} template has its pod templates inside its replicas, "
                                 "not in spec.template")
            if not self.pods():
                raise ValueError(f"the {self.kind} template has no pod template (a template with spec.containers)")
        return self

    @property
    def workload(self) -> Workload:
        return WORKLOADS[self.kind]

    @property
    def resolved_api_version(self) -> str:
        return self.api_version or self.workload.api_version

    @property
    def resolved_success_condition(self) -> str:
        return self.success_condition or self.workload.success_condition

    @property
    def resolved_failure_condition(self) -> str:
        return self.failure_condition or self.workload.failure_condition

    def primary_labels(self) -> dict[str, str]:
        if self.primary_pod_labels is not None:
            return dict(self.primary_pod_labels)
        return self.workload.primary_pod_labels(self.spec.to_wire())

    def pods(self) -> list[tuple[str, PodTemplate]]:
        """(path, pod template) of every pod template of the workload, in the spec's order."""
        if self.spec.template is not None:
            return [("spec.template", self.spec.template)]
        return [(path, PodTemplate.model_validate(body)) for path, body in pod_templates(self.spec.to_wire())]

    def references(self) -> Iterator[tuple[str, str]]:
        """(where, parameter name) of every ``${params.<name>}`` the renderers substitute."""
        for path, pod in self.pods():
            for i, c in enumerate(pod.spec.containers):
                for key in ("command", "args"):
                    for j, arg in enumerate(getattr(c, key) or []):
                        for name in PARAM_REFERENCE.findall(arg):
                            yield f"{path}.spec.containers[{i}].{key}[{j}]", name
                for j, entry in enumerate(c.env or []):
                    value = entry.get("value")
                    if isinstance(value, str):
                        for name in PARAM_REFERENCE.findall(value):
                            yield f"{path}.spec.containers[{i}].env[{j}].value", name
