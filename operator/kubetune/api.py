"""The contract: pydantic models of the ``Experiment`` and ``Trial`` custom resources.

Purely declarative: no I/O, no Kubernetes client. Every other module takes these typed values;
raw dicts stop at the edge (the CLI's file loader, the operator's handlers).

Field names are snake_case in Python and camelCase on the wire (YAML, the API server). Unknown
fields are rejected (``extra="forbid"``), except inside the Job template, which belongs to
Kubernetes and is validated by the API server when the Job is created.

Every cross-field rule checked here by a validator is also written as a CEL rule
(``x-kubernetes-validations``) in the model's JSON schema, so ``kubectl apply`` rejects the same
Experiments that ``kubetune run`` does (see :mod:`kubetune.crds`).
"""

from __future__ import annotations

import datetime as dt
import math
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

GROUP = "kubetune.io"
VERSION = "v1alpha1"
API_VERSION: Literal["kubetune.io/v1alpha1"] = "kubetune.io/v1alpha1"

#: Label put on every Trial (and its Job and pods) naming the Experiment it belongs to.
EXPERIMENT_LABEL = f"{GROUP}/experiment"
#: Label put on every Job and pod naming its Trial.
TRIAL_LABEL = f"{GROUP}/trial"

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
#: Kubernetes object names (DNS-1123 subdomain, kept short so ``<name>-<index>`` stays valid).
OBJECT_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

#: Trial names are ``<experiment>-<index>`` and must stay valid Job and label values (63 characters).
MAX_EXPERIMENT_NAME = 52

ParamValue = float | int | str
Params = dict[str, ParamValue]


def _cel(*rules: tuple[str, str]) -> dict[str, Any]:
    """JSON-schema extra carrying CEL rules as (rule, message) pairs."""
    return {"x-kubernetes-validations": [{"rule": rule, "message": message} for rule, message in rules]}


PRESERVE_UNKNOWN: dict[str, Any] = {"x-kubernetes-preserve-unknown-fields": True}


class Model(BaseModel):
    """Base of every API model: camelCase aliases, unknown fields forbidden."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        extra="forbid",
        use_enum_values=False,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict as the API server and the YAML files spell it."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class OpenModel(Model):
    """A model that keeps fields it does not know (parts of Kubernetes' own types)."""

    model_config = ConfigDict(extra="allow", json_schema_extra=PRESERVE_UNKNOWN)


# --- Experiment spec -------------------------------------------------------------------------


class ParameterType(StrEnum):
    DOUBLE = "double"
    INT = "int"
    CATEGORICAL = "categorical"


class Scale(StrEnum):
    LINEAR = "linear"
    LOG = "log"


class Parameter(Model):
    """One dimension of the search space."""

    model_config = ConfigDict(
        json_schema_extra=_cel(
            ("self.type == 'categorical' || (has(self.min) && has(self.max))",
             "double and int parameters need both min and max"),
            ("!has(self.min) || !has(self.max) || self.min < self.max", "max must be greater than min"),
            ("self.type != 'categorical' || (has(self.values) && size(self.values) > 0)",
             "categorical parameters need at least one value"),
            ("self.type == 'categorical' || !has(self.values)", "values is only for categorical parameters"),
            ("self.type != 'categorical' || (!has(self.min) && !has(self.max))",
             "categorical parameters take values, not min and max"),
            ("!has(self.scale) || self.scale != 'log' || (has(self.min) && self.min > 0.0)",
             "log scale needs min > 0"),
            ("!has(self.scale) || self.scale != 'log' || self.type != 'categorical'",
             "log scale is only for double and int parameters"),
            ("self.type != 'int' || ((!has(self.min) || self.min == double(int(self.min))) && "
             "(!has(self.max) || self.max == double(int(self.max))))",
             "int parameters need whole-number min and max"),
        )
    )

    name: str = Field(pattern=NAME_PATTERN, max_length=63, description="Parameter name; also the env var suffix.")
    type: ParameterType = Field(description="double, int or categorical.")
    min: float | None = Field(default=None, description="Lower bound (double and int).")
    max: float | None = Field(default=None, description="Upper bound, inclusive (double and int).")
    values: Annotated[list[Annotated[str, Field(max_length=253)]], Field(max_length=1000)] | None = Field(
        default=None,
        description="The choices of a categorical parameter.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    scale: Scale = Field(default=Scale.LINEAR, description="linear or log (log needs min > 0).")

    # Field validators name the offending field in the error path (spec.parameters[1].max).
    @field_validator("max")
    @classmethod
    def _max_above_min(cls, value: float | None, info: ValidationInfo) -> float | None:
        low = info.data.get("min")
        if value is not None and low is not None and value <= low:
            raise ValueError(f"must be greater than min ({low:g})")
        return value

    @field_validator("scale")
    @classmethod
    def _log_needs_positive_min(cls, value: Scale, info: ValidationInfo) -> Scale:
        low = info.data.get("min")
        if value is Scale.LOG and low is not None and low <= 0:
            raise ValueError(f"log scale needs min > 0 (min is {low:g})")
        return value

    @model_validator(mode="after")
    def _check_bounds(self) -> Self:
        if self.type is ParameterType.CATEGORICAL:
            if self.min is not None or self.max is not None:
                raise ValueError("categorical parameters take values, not min and max")
            if not self.values:
                raise ValueError("categorical parameters need at least one value")
            if len(set(self.values)) != len(self.values):
                raise ValueError("categorical values must be unique")
            if self.scale is Scale.LOG:
                raise ValueError("log scale is only for double and int parameters")
            return self
        if self.values is not None:
            raise ValueError("values is only for categorical parameters")
        if self.min is None or self.max is None:
            raise ValueError("double and int parameters need both min and max")
        if not (math.isfinite(self.min) and math.isfinite(self.max)):
            raise ValueError("min and max must be finite")
        if self.min >= self.max:
            raise ValueError("max must be greater than min")
        if self.scale is Scale.LOG and self.min <= 0:
            raise ValueError("log scale needs min > 0")
        if self.type is ParameterType.INT and (self.min != int(self.min) or self.max != int(self.max)):
            raise ValueError("int parameters need whole-number min and max")
        return self


class Goal(StrEnum):
    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


METRIC_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.\-/]*$"


class Objective(Model):
    model_config = ConfigDict(
        json_schema_extra=_cel(
            ("!has(self.additionalMetrics) || !(self.metric in self.additionalMetrics)",
             "additionalMetrics must not repeat the objective metric"),
        )
    )

    metric: str = Field(pattern=METRIC_PATTERN, max_length=128, description="Metric the trials report.")
    goal: Goal = Field(description="maximize or minimize.")
    target: float | None = Field(
        default=None, description="Stop the experiment once a trial reaches this value."
    )
    additional_metrics: Annotated[list[Annotated[str, Field(pattern=METRIC_PATTERN, max_length=128)]],
                                  Field(max_length=32)] = Field(
        default_factory=list,
        description="Other metrics to record (not optimized).",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )

    @model_validator(mode="after")
    def _check_metrics(self) -> Self:
        if self.metric in self.additional_metrics:
            raise ValueError("additionalMetrics must not repeat the objective metric")
        if len(set(self.additional_metrics)) != len(self.additional_metrics):
            raise ValueError("additionalMetrics must be unique")
        if self.target is not None and not math.isfinite(self.target):
            raise ValueError("target must be finite")
        return self

    @property
    def metric_names(self) -> list[str]:
        return [self.metric, *self.additional_metrics]

    def loss(self, value: float) -> float:
        """The objective as a quantity to minimize (what suggesters see)."""
        return -value if self.goal is Goal.MAXIMIZE else value

    def reached(self, value: float) -> bool:
        if self.target is None:
            return False
        return value >= self.target if self.goal is Goal.MAXIMIZE else value <= self.target

    def better(self, value: float, than: float) -> bool:
        return value > than if self.goal is Goal.MAXIMIZE else value < than


class AlgorithmName(StrEnum):
    BAYES = "bayes"
    TPE = "tpe"
    RANDOM = "random"
    GRID = "grid"
    SOBOL = "sobol"


SettingValue = bool | int | float | str


class Algorithm(Model):
    name: AlgorithmName = Field(default=AlgorithmName.BAYES, description="bayes, tpe, random, grid or sobol.")
    seed: int | None = Field(
        default=None, ge=0, le=2**31 - 1,
        description="Random seed; default derived from the Experiment's name, so reruns repeat.",
    )
    settings: dict[str, SettingValue] = Field(
        default_factory=dict,
        description="Algorithm settings, e.g. {initialTrials: 10} for bayes or {gridPoints: 5} for grid.",
    )


class MetricsSource(StrEnum):
    TERMINATION_MESSAGE = "TerminationMessage"
    STDOUT = "Stdout"
    BOTH = "Both"


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
    template: PodTemplate
    backoff_limit: int | None = Field(default=None, ge=0)
    active_deadline_seconds: int | None = Field(default=None, ge=1)


class TemplateMetadata(Model):
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class TrialTemplate(Model):
    """A batch/v1 Job template: the training container, its image, resources (GPUs) and deadline."""

    metadata: TemplateMetadata | None = None
    spec: JobSpec


class ExperimentSpec(Model):
    model_config = ConfigDict(
        json_schema_extra=_cel(
            ("self.parallelTrials <= self.maxTrials", "parallelTrials must not exceed maxTrials"),
        )
    )

    parameters: Annotated[list[Parameter], Field(min_length=1, max_length=64)] = Field(
        description="The search space.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    objective: Objective
    algorithm: Algorithm = Field(default_factory=Algorithm)
    max_trials: int = Field(ge=1, le=100_000, description="Trial budget (every started trial counts).")
    parallel_trials: int = Field(default=1, ge=1, le=1000, description="Trials running at once.")
    max_failed_trials: int | None = Field(
        default=None, ge=0, description="End the experiment Failed when more trials than this fail."
    )
    suspend: bool = Field(default=False, description="Start no new trials while true; running ones finish.")
    metrics_source: MetricsSource = Field(
        default=MetricsSource.BOTH,
        description="Where trial metrics are read: TerminationMessage, Stdout, or Both (message first).",
    )
    trial_template: TrialTemplate

    @model_validator(mode="after")
    def _check_budget(self) -> Self:
        names = [p.name for p in self.parameters]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"parameter names must be unique: {', '.join(duplicates)} repeated")
        if self.parallel_trials > self.max_trials:
            raise ValueError("parallelTrials must not exceed maxTrials")
        return self


class ObjectMeta(OpenModel):
    name: str = Field(pattern=OBJECT_NAME_PATTERN, max_length=63)
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    labels: dict[str, str] | None = None


# --- Experiment status -----------------------------------------------------------------------


class ExperimentPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SUSPENDED = "Suspended"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(Model):
    type: str
    status: ConditionStatus
    reason: str
    message: str = ""
    last_transition_time: str
    observed_generation: int | None = None


class TrialCounts(Model):
    created: int = 0
    pending: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    killed: int = 0

    @property
    def active(self) -> int:
        return self.pending + self.running

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed + self.killed


class BestTrial(Model):
    name: str
    params: Params
    objective_value: float
    metrics: dict[str, float] = Field(default_factory=dict)


class SuggesterStatus(Model):
    algorithm: str
    state: dict[str, Any] = Field(default_factory=dict, json_schema_extra=PRESERVE_UNKNOWN)


class ExperimentStatus(Model):
    phase: ExperimentPhase = ExperimentPhase.PENDING
    conditions: list[Condition] = Field(default_factory=list)
    observed_generation: int | None = None
    trials: TrialCounts = Field(default_factory=TrialCounts)
    progress: str | None = Field(default=None, description="succeeded/maxTrials, for the printer column.")
    best_trial: BestTrial | None = None
    suggester: SuggesterStatus | None = None
    start_time: str | None = None
    completion_time: str | None = None


class Experiment(Model):
    api_version: Literal["kubetune.io/v1alpha1"] = API_VERSION
    kind: Literal["Experiment"] = "Experiment"
    metadata: ObjectMeta
    spec: ExperimentSpec
    status: ExperimentStatus | None = None

    @model_validator(mode="after")
    def _check_name(self) -> Self:
        if len(self.metadata.name) > MAX_EXPERIMENT_NAME:
            raise ValueError(
                f"metadata.name must be at most {MAX_EXPERIMENT_NAME} characters (trial names append -<index>)"
            )
        return self


# --- Trial -----------------------------------------------------------------------------------


class TrialPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    KILLED = "Killed"

    @property
    def finished(self) -> bool:
        return self in (TrialPhase.SUCCEEDED, TrialPhase.FAILED, TrialPhase.KILLED)


class TrialSpec(Model):
    index: int = Field(ge=0, description="Position in the experiment; the name is <experiment>-<index>.")
    params: Params = Field(json_schema_extra={"additionalProperties": PRESERVE_UNKNOWN})


class TrialStatus(Model):
    phase: TrialPhase = TrialPhase.PENDING
    metrics: dict[str, float] = Field(default_factory=dict)
    objective_value: float | None = None
    reason: str | None = None
    message: str | None = None
    start_time: str | None = None
    completion_time: str | None = None


class Trial(Model):
    api_version: Literal["kubetune.io/v1alpha1"] = API_VERSION
    kind: Literal["Trial"] = "Trial"
    metadata: ObjectMeta
    spec: TrialSpec
    status: TrialStatus = Field(default_factory=TrialStatus)


def validation_problems(err: ValidationError) -> list[str]:
    """pydantic's errors as ``field.path: message``, with the path spelled as the YAML spells it.

    e.g. ``spec.parameters[1].max: must be greater than min (1)``.
    """
    lines = []
    for problem in err.errors():
        path = ""
        for part in problem["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: {message}" if path else message)
    return lines


def trial_name(experiment: str, index: int) -> str:
    """The deterministic name of an experiment's ``index``-th trial."""
    return f"{experiment}-{index}"


def now_rfc3339(clock: dt.datetime | None = None) -> str:
    """A timestamp as Kubernetes writes it (UTC, seconds, ``Z``)."""
    moment = clock or dt.datetime.now(dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
