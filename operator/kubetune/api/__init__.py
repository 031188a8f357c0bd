"""The contract: pydantic models of the ``Experiment`` and ``Trial`` custom resources.

Purely declarative: no I/O, no Kubernetes client. Every other module takes these typed values;
raw dicts stop at the edge (the CLI's file loader, the operator's handlers).

Field names are snake_case in Python and camelCase on the wire (YAML, the API server). Unknown
fields are rejected (``extra="forbid"``) and types are strict (no ``"2"`` for 2), except inside
the Job template, which belongs to Kubernetes and is validated by the API server when the Job is
created.

Every cross-field rule checked here by a validator is also written as a CEL rule
(``x-kubernetes-validations``) in the model's JSON schema, so ``kubectl apply`` rejects the same
Experiments that ``kubetune validate`` does (see :mod:`kubetune.crds`).

========== ==================================================================================
module     holds
========== ==================================================================================
base       base models (strict, camelCase), names, labels, timestamps, error formatting
settings   the settings table of each algorithm (validation, CEL rules and defaults from one place)
spec       the Experiment spec: parameters, objective, algorithm, earlyStopping, initial points, warm start
template   the trial template: a Job, JobSet or PyTorchJob, its pod templates and ``${params.x}``
workloads  each workload kind's defaults (API version, conditions, primary pod) and pod templates
status     the Experiment status: phase, conditions, counts, best trial, suggester state
trial      the Trial: phases, reasons, learning curves, stop requests
resources  the two objects, Experiment and Trial
========== ==================================================================================
"""

from kubetune.api.base import (
    API_VERSION,
    ATTEMPT_ANNOTATION,
    ATTEMPT_LABEL,
    EXPERIMENT_LABEL,
    GROUP,
    MAX_EXPERIMENT_NAME,
    METRIC_PATTERN,
    NAME_PATTERN,
    OBJECT_NAME_PATTERN,
    PRESERVE_UNKNOWN,
    TRIAL_LABEL,
    VERSION,
    Model,
    OpenModel,
    Params,
    ParamValue,
    now_rfc3339,
    parse_rfc3339,
    seconds_between,
    trial_name,
    validation_problems,
)
from kubetune.api.parameters import (
    SIGNIFICANT_DIGITS,
    Parameter,
    ParameterType,
    Scale,
    active_parameters,
    round_significant,
)
from kubetune.api.resources import Experiment, ObjectMeta, Trial
from kubetune.api.settings import ALGORITHM_SETTINGS, Setting, SettingValue, setting, settings_problems
from kubetune.api.spec import (
    AdditionalObjective,
    Algorithm,
    AlgorithmName,
    Constraint,
    EarlyStopping,
    EarlyStoppingRule,
    ExperimentSpec,
    Goal,
    MetricsSource,
    Objective,
    WarmStart,
)
from kubetune.api.status import (
    MAX_PARETO_FRONT,
    BestTrial,
    Condition,
    ConditionStatus,
    ExperimentPhase,
    ExperimentStatus,
    ParetoTrial,
    SuggesterStatus,
    TrialCounts,
    WarmStartSource,
    WarmStartStatus,
)
from kubetune.api.template import (
    PARAM_REFERENCE,
    Container,
    JobSpec,
    PodSpec,
    PodTemplate,
    TemplateMetadata,
    TrialTemplate,
)
from kubetune.api.trial import (
    FINISHED_PHASES,
    MAX_CURVE_POINTS,
    MAX_DISRUPTIONS,
    PARAMETER_FAILURES,
    PLATFORM_FAILURES,
    TRIAL_REASONS,
    CurvePoint,
    Disruption,
    Rung,
    StopRequest,
    TrialPhase,
    TrialReason,
    TrialSpec,
    TrialStatus,
)
from kubetune.api.workloads import WORKLOADS, Workload, WorkloadKind

__all__ = [
    "ALGORITHM_SETTINGS",
    "API_VERSION",
    "ATTEMPT_ANNOTATION",
    "ATTEMPT_LABEL",
    "EXPERIMENT_LABEL",
    "FINISHED_PHASES",
    "GROUP",
    "MAX_CURVE_POINTS",
    "MAX_DISRUPTIONS",
    "MAX_EXPERIMENT_NAME",
    "MAX_PARETO_FRONT",
    "METRIC_PATTERN",
    "NAME_PATTERN",
    "OBJECT_NAME_PATTERN",
    "PARAMETER_FAILURES",
    "PARAM_REFERENCE",
    "PLATFORM_FAILURES",
    "PRESERVE_UNKNOWN",
    "SIGNIFICANT_DIGITS",
    "TRIAL_LABEL",
    "TRIAL_REASONS",
    "VERSION",
    "WORKLOADS",
    "AdditionalObjective",
    "Algorithm",
    "AlgorithmName",
    "BestTrial",
    "Condition",
    "ConditionStatus",
    "Constraint",
    "Container",
    "CurvePoint",
    "Disruption",
    "EarlyStopping",
    "EarlyStoppingRule",
    "Experiment",
    "ExperimentPhase",
    "ExperimentSpec",
    "ExperimentStatus",
    "Goal",
    "JobSpec",
    "MetricsSource",
    "Model",
    "ObjectMeta",
    "Objective",
    "OpenModel",
    "ParamValue",
    "Parameter",
    "ParameterType",
    "Params",
    "ParetoTrial",
    "PodSpec",
    "PodTemplate",
    "Rung",
    "Scale",
    "Setting",
    "SettingValue",
    "StopRequest",
    "SuggesterStatus",
    "TemplateMetadata",
    "Trial",
    "TrialCounts",
    "TrialPhase",
    "TrialReason",
    "TrialSpec",
    "TrialStatus",
    "TrialTemplate",
    "WarmStart",
    "WarmStartSource",
    "WarmStartStatus",
    "Workload",
    "WorkloadKind",
    "active_parameters",
    "now_rfc3339",
    "parse_rfc3339",
    "round_significant",
    "seconds_between",
    "setting",
    "settings_problems",
    "trial_name",
    "validation_problems",
]
