"""The two custom resources as whole objects: ``Experiment`` and ``Trial``.

Purely declarative: no I/O.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from kubetune.api.base import API_VERSION, MAX_EXPERIMENT_NAME, OBJECT_NAME_PATTERN, OpenModel
from kubetune.api.base import Model as _Model
from kubetune.api.spec import ExperimentSpec
from kubetune.api.status import ExperimentStatus
from kubetune.api.trial import TrialSpec, TrialStatus


class ObjectMeta(OpenModel):
    name: str = Field(pattern=OBJECT_NAME_PATTERN, max_length=63)
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    labels: dict[str, str] | None = None


class Experiment(_Model):
    api_version: Literal["kubetune.io/v1alpha1"] = Field(description="kubetune.io/v1alpha1")
    kind: Literal["Experiment"]
    metadata: ObjectMeta
    spec: ExperimentSpec
    status: ExperimentStatus | None = None

    @model_validator(mode="after")
    def _check_name(self) -> Self:
        if len(self.metadata.name) > MAX_EXPERIMENT_NAME:
            raise ValueError(
                f"metadata.name must be at most {MAX_EXPERIMENT_NAME} characters (trial names append -<index>)"
            )
        if self.spec.warm_start and self.metadata.name in self.spec.warm_start.experiments:
            raise ValueError("spec.warmStart.experiments must not name the experiment itself")
        return self


class Trial(_Model):
    api_version: Literal["kubetune.io/v1alpha1"] = API_VERSION
    kind: Literal["Trial"] = "Trial"
    metadata: ObjectMeta
    spec: TrialSpec
    status: TrialStatus = Field(default_factory=TrialStatus)
