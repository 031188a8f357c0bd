"""The ``Experiment`` spec: search space, objective, algorithm, budget, early stopping, trial template.

Purely declarative: no I/O. Every cross-field rule checked here by a validator is also written as
a CEL rule (``x-kubernetes-validations``) in the model's JSON schema, so ``kubectl apply``
rejects the same Experiments that ``kubetune validate`` does (see :mod:`kubetune.crds`). The few
rules CEL cannot express are listed in ``VALIDATE_ONLY`` of ``tests/unit/bad_experiments.py``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import ConfigDict, Field, field_validator, model_validator

from kubetune.api.base import (
    MAX_EXPERIMENT_NAME,
    METRIC_PATTERN,
    OBJECT_NAME_PATTERN,
    PRESERVE_UNKNOWN,
    Model,
    Params,
    cel,
)
from kubetune.api.parameters import (
    Parameter,
    ParameterType,
    active_parameters,
    finite_or_none,
)
from kubetune.api.settings import SettingValue, settings_cel_rules, settings_problems, settings_schema
from kubetune.api.template import TrialTemplate


class Goal(StrEnum):
    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


class AdditionalObjective(Model):
    """Another metric to optimize at the same time: the experiment then keeps a Pareto front."""

    metric: str = Field(pattern=METRIC_PATTERN, max_length=128, description="Metric the trials report.")
    goal: Goal = Field(strict=False, description="maximize or minimize.")


#: At most this many objectives besides the first (hypervolume and the front's size grow fast).
MAX_ADDITIONAL_OBJECTIVES = 3
MAX_CONSTRAINTS = 8


class Constraint(Model):
    """A metric a trial's result must keep within bounds to count (``min`` ≤ value ≤ ``max``)."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            ("has(self.min) || has(self.max)", "a constraint needs min or max"),
            ("!has(self.min) || !has(self.max) || self.min <= self.max", "a constraint's min must not exceed its max"),
        )
    )

    metric: str = Field(pattern=METRIC_PATTERN, max_length=128, description="Metric the trials report.")
    min: float | None = Field(default=None, description="The smallest value a feasible trial may report.")
    max: float | None = Field(default=None, description="The largest value a feasible trial may report.")

    @field_validator("min", "max")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        return finite_or_none(value)

    @model_validator(mode="after")
    def _check_bounds(self) -> Self:
        if self.min is None and self.max is None:
            raise ValueError("a constraint needs min or max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"a constraint's min must not exceed its max ({self.min:g} > {self.max:g})")
        return self

    def violation(self, value: float) -> str | None:
        """How ``value`` breaks this constraint (None: it does not)."""
        if self.min is not None and not value >= self.min:
            return f"{self.metric}={value:g} below min {self.min:g}"
        if self.max is not None and not value <= self.max:
            return f"{self.metric}={value:g} above max {self.max:g}"
        return None


class Objective(Model):
    model_config = ConfigDict(
        json_schema_extra=cel(
            ("!has(self.additionalMetrics) || !(self.metric in self.additionalMetrics)",
             "additionalMetrics must not repeat the objective metric"),
            ("!has(self.additionalObjectives) || self.additionalObjectives.all(o, o.metric != self.metric && "
             "(!has(self.additionalMetrics) || !(o.metric in self.additionalMetrics)))",
             "additionalObjectives must not repeat the objective metric or an additionalMetrics name"),
            ("!has(self.constraints) || self.constraints.all(c, c.metric != self.metric && "
             "(!has(self.additionalObjectives) || self.additionalObjectives.all(o, o.metric != c.metric)))",
             "a constraint must not be on an objective metric"),
        )
    )

    metric: str = Field(pattern=METRIC_PATTERN, max_length=128, description="Metric the trials report.")
    goal: Goal = Field(strict=False, description="maximize or minimize.")
    target: float | None = Field(
        default=None, description="Stop the experiment once a trial reaches this value."
    )
    additional_metrics: Annotated[list[Annotated[str, Field(pattern=METRIC_PATTERN, max_length=128)]],
                                  Field(max_length=32)] = Field(
        default_factory=list,
        description="Other metrics to record (not optimized).",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    additional_objectives: Annotated[list[AdditionalObjective], Field(max_length=MAX_ADDITIONAL_OBJECTIVES)] = Field(
        default_factory=list,
        description="More metrics to optimize with the first: the experiment keeps the Pareto front of the trials "
                    "(status.paretoFront); target and bestTrial stay about the first metric.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["metric"]},
    )

    constraints: Annotated[list[Constraint], Field(max_length=MAX_CONSTRAINTS)] = Field(
        default_factory=list,
        description="Bounds on other metrics: a trial that breaks one is infeasible, and neither the best trial "
                    "nor on the Pareto front.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["metric"]},
    )

    @field_validator("target")
    @classmethod
    def _finite_target(cls, value: float | None) -> float | None:
        return finite_or_none(value)

    @model_validator(mode="after")
    def _check_metrics(self) -> Self:
        if self.metric in self.additional_metrics:
            raise ValueError("additionalMetrics must not repeat the objective metric")
        if len(set(self.additional_metrics)) != len(self.additional_metrics):
            raise ValueError("additionalMetrics must be unique")
        others = [o.metric for o in self.additional_objectives]
        if len(set(others)) != len(others):
            raise ValueError("additionalObjectives must name each metric once")
        clash = [m for m in others if m == self.metric or m in self.additional_metrics]
        if clash:
            raise ValueError(f"additionalObjectives must not repeat the objective metric or an additionalMetrics "
                             f"name: {', '.join(clash)}")
        bounded = [c.metric for c in self.constraints]
        if len(set(bounded)) != len(bounded):
            raise ValueError("constraints must name each metric once")
        on_objective = [m for m in bounded if m in self.objective_metrics]
        if on_objective:
            raise ValueError(f"a constraint must not be on an objective metric: {', '.join(on_objective)}")
        return self

    @property
    def constraint_metrics(self) -> list[str]:
        return [c.metric for c in self.constraints]

    def violations(self, metrics: dict[str, float]) -> list[str]:
        """How ``metrics`` break the constraints (a missing or non-finite value breaks its constraint)."""
        out = []
        for c in self.constraints:
            value = metrics.get(c.metric)
            if value is None or not math.isfinite(value):
                out.append(f"{c.metric} not reported")
            elif (problem := c.violation(value)) is not None:
                out.append(problem)
        return out

    def feasible(self, metrics: dict[str, float]) -> bool:
        return not self.violations(metrics)

    @property
    def metric_names(self) -> list[str]:
        """Every declared metric: the objectives first, then the constrained and the recorded ones."""
        names = [*self.objective_metrics, *self.constraint_metrics, *self.additional_metrics]
        return list(dict.fromkeys(names))

    @property
    def objective_metrics(self) -> list[str]:
        """The metrics optimized, the first one first."""
        return [self.metric, *(o.metric for o in self.additional_objectives)]

    @property
    def several(self) -> bool:
        return bool(self.additional_objectives)

    def losses(self, metrics: dict[str, float]) -> tuple[float, ...] | None:
        """Every objective of ``metrics`` as a loss, in order; None when one is missing or not finite."""
        goals = [self.goal, *(o.goal for o in self.additional_objectives)]
        out = []
        for name, goal in zip(self.objective_metrics, goals, strict=True):
            value = metrics.get(name)
            if value is None or not math.isfinite(value):
                return None
            out.append(-value if goal is Goal.MAXIMIZE else value)
        return tuple(out)

    def loss(self, value: float) -> float:
        """The objective as a quantity to minimize (what suggesters and stopping rules see)."""
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


def _settings_schema(schema: dict[str, Any]) -> None:
    """The settings map's JSON schema replaced by the typed one of :mod:`kubetune.api.settings`."""
    description = schema.get("description")
    schema.clear()
    schema.update(settings_schema())
    if description:
        schema["description"] = description


class Algorithm(Model):
    model_config = ConfigDict(json_schema_extra=cel(*settings_cel_rules()))

    name: AlgorithmName = Field(default=AlgorithmName.BAYES, strict=False,
                                description="bayes, tpe, random, grid or sobol.")
    seed: int | None = Field(
        default=None, ge=0, le=2**31 - 1,
        description="Random seed; default derived from the Experiment's name, so reruns repeat.",
    )
    settings: dict[str, SettingValue] = Field(
        default_factory=dict,
        description="Algorithm settings, e.g. {initialTrials: 10} for bayes or {gridPoints: 5} for grid.",
        json_schema_extra=_settings_schema,
    )

    @model_validator(mode="after")
    def _check_settings(self) -> Self:
        problems = settings_problems(self.name.value, self.settings)
        if problems:
            raise ValueError("; ".join(f"settings.{key}: {problem}" for key, problem in problems))
        return self


class MetricsSource(StrEnum):
    TERMINATION_MESSAGE = "TerminationMessage"
    STDOUT = "Stdout"
    BOTH = "Both"


class EarlyStoppingRule(StrEnum):
    MEDIAN = "median"
    ASHA = "asha"


class EarlyStopping(Model):
    """Stop trials whose learning curve is behind the others' (see :mod:`kubetune.stopping`)."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            ("self.rule != 'asha' || has(self.maxSteps)", "asha needs maxSteps (the step an unstopped trial reaches)"),
            ("self.rule == 'asha' || !has(self.maxSteps)", "maxSteps is only for asha"),
            ("self.rule == 'asha' || !has(self.reductionFactor)", "reductionFactor is only for asha"),
            ("!has(self.maxSteps) || (has(self.minSteps) ? self.minSteps : 1) < self.maxSteps",
             "minSteps must be less than maxSteps"),
        )
    )

    rule: EarlyStoppingRule = Field(strict=False, description="median (Vizier's median stopping rule) or asha.")
    min_steps: int = Field(default=1, ge=1, le=1_000_000,
                           description="Grace period: no trial is stopped before it has reported this step.")
    max_steps: int | None = Field(default=None, ge=2, le=10_000_000,
                                  description="asha: the step a trial that is never stopped reaches.")
    reduction_factor: int | None = Field(default=None, ge=2, le=100,
                                         description="asha: keep the best 1/reductionFactor at each rung (default 3).")
    min_trials: int = Field(default=3, ge=1, le=10_000,
                            description="Trials (the one judged included) that must have reached a step before "
                                        "anything is compared there.")

    @model_validator(mode="after")
    def _check_rule(self) -> Self:
        if self.rule is EarlyStoppingRule.ASHA:
            if self.max_steps is None:
                raise ValueError("asha needs maxSteps (the step an unstopped trial reaches)")
            if self.min_steps >= self.max_steps:
                raise ValueError(f"minSteps ({self.min_steps}) must be less than maxSteps ({self.max_steps})")
        else:
            if self.max_steps is not None:
                raise ValueError("maxSteps is only for asha")
            if self.reduction_factor is not None:
                raise ValueError("reductionFactor is only for asha")
        return self

    @property
    def eta(self) -> int:
        """ASHA's reduction factor η."""
        return self.reduction_factor or 3

    def rungs(self) -> list[int]:
        """ASHA's rungs: ``minSteps · η^k`` below ``maxSteps`` (the last step is not a rung)."""
        if self.rule is not EarlyStoppingRule.ASHA or self.max_steps is None:
            return []
        found, step = [], self.min_steps
        while step < self.max_steps:
            found.append(step)
            step *= self.eta
        return found


class WarmStart(Model):
    """Earlier Experiments whose finished trials inform the suggester before this one's first trial."""

    experiments: Annotated[list[Annotated[str, Field(pattern=OBJECT_NAME_PATTERN, max_length=MAX_EXPERIMENT_NAME)]],
                           Field(min_length=1, max_length=10)] = Field(
        description="Experiments in the same namespace (locally: <name>.state.yaml next to the Experiment file).",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


#: The most ``initialPoints`` an Experiment may list (a bound the CEL cost estimate needs).
MAX_INITIAL_POINTS = 100

#: What ``kubectl apply`` checks of ``initialPoints``. The names and values are checked by
#: :meth:`ExperimentSpec.initial_point_problems` (``kubetune validate``, and the operator's first
#: pass, before any trial): a value may be a number or a string, a type a structural schema can only
#: keep as unknown fields, which CEL cannot read.
INITIAL_POINT_RULES: tuple[tuple[str, str], ...] = (
    ("!has(self.initialPoints) || size(self.initialPoints) <= self.maxTrials",
     "initialPoints must not list more points than maxTrials"),
)


#: The most retries a trial may get after disruptions (a Trial keeps its last disruptions).
MAX_TRIAL_RETRIES = 20


class ExperimentSpec(Model):
    model_config = ConfigDict(
        json_schema_extra=cel(
            ("self.parallelTrials <= self.maxTrials", "parallelTrials must not exceed maxTrials"),
            ("self.parameters.all(p, self.parameters.filter(q, q.name.lowerAscii() == p.name.lowerAscii())"
             ".size() == 1)",
             "parameter names must be unique ignoring case (each is the env var KUBETUNE_PARAM_<NAME>)"),
            *INITIAL_POINT_RULES,
            ("self.parameters.all(p, !has(p.when) || p.when.all(k, self.parameters.exists(q, q.name == k && "
             "q.type == 'categorical' && q.name != p.name)))",
             "a parameter's when may only name other categorical parameters of spec.parameters"),
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
    max_trial_retries: int = Field(
        default=3, ge=0, le=MAX_TRIAL_RETRIES,
        description="How many times a trial whose pod was disrupted (preempted, evicted, its node lost, deleted by "
                    "someone else) is run again, same index and params, before it fails Disrupted. Retries count "
                    "neither toward maxTrials nor maxFailedTrials.",
    )
    suspend: bool = Field(default=False, description="Start no new trials while true; running ones finish.")
    metrics_source: MetricsSource = Field(
        default=MetricsSource.BOTH, strict=False,
        description="Where trial metrics are read: TerminationMessage, Stdout, or Both (message first).",
    )
    early_stopping: EarlyStopping | None = Field(
        default=None, description="Stop trials whose learning curves are behind (median or asha)."
    )
    initial_points: Annotated[list[Params], Field(max_length=MAX_INITIAL_POINTS)] | None = Field(
        default=None,
        description="Assignments to run first, in order (they count toward maxTrials); a point that leaves "
                    "parameters out is completed by the algorithm.",
        json_schema_extra={"items": {"type": "object", "maxProperties": 64, **PRESERVE_UNKNOWN}},
    )
    warm_start: WarmStart | None = Field(
        default=None,
        description="Finished trials of earlier Experiments become prior observations of the algorithm (they are "
                    "not trials of this one and do not count toward maxTrials).",
    )
    trial_template: TrialTemplate

    def condition_problems(self) -> Iterator[str]:
        """``when`` checked: it names other categorical parameters, values they have, and no cycle."""
        by_name = {p.name: p for p in self.parameters}
        for i, p in enumerate(self.parameters):
            for name, values in (p.when or {}).items():
                other = by_name.get(name)
                if other is None or other.type is not ParameterType.CATEGORICAL or other is p:
                    yield (f"parameters[{i}].when: {name!r} is not another categorical parameter "
                           f"(categorical: {', '.join(q.name for q in self.parameters if q.values) or 'none'})")
                    continue
                unknown = [v for v in values if v not in (other.values or [])]
                if unknown:
                    yield f"parameters[{i}].when.{name}: {unknown[0]!r} is not one of {other.values}"
        for p in self.parameters:  # a cycle: following when from p comes back to p
            seen, frontier = set(), list((p.when or {}).keys())
            while frontier:
                name = frontier.pop()
                if name == p.name:
                    yield f"parameters: the conditions of {p.name!r} depend on it again (a cycle through when)"
                    break
                if name in seen or name not in by_name:
                    continue
                seen.add(name)
                frontier.extend((by_name[name].when or {}).keys())

    def initial_point_problems(self) -> Iterator[str]:
        """``initialPoints`` checked against the space: known names, values each parameter has."""
        points = self.initial_points or []
        if len(points) > self.max_trials:
            yield f"initialPoints has {len(points)} points, more than maxTrials ({self.max_trials})"
        by_name = {p.name: p for p in self.parameters}
        for i, point in enumerate(points):
            for name, value in point.items():
                parameter = by_name.get(name)
                if parameter is None:
                    yield f"initialPoints[{i}].{name}: no such parameter (have: {', '.join(by_name)})"
                elif (problem := parameter.value_problem(value)) is not None:
                    yield f"initialPoints[{i}].{name}: {problem}"
                elif parameter.when and all(k in point for k in parameter.when) and \
                        name not in active_parameters(self.parameters, point):
                    condition = ", ".join(f"{k} in {v}" for k, v in parameter.when.items())
                    yield f"initialPoints[{i}].{name}: inactive in this point (it needs {condition})"

    @model_validator(mode="after")
    def _check_spec(self) -> Self:
        names = [p.name for p in self.parameters]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"parameter names must be unique: {', '.join(duplicates)} repeated")
        folded: dict[str, str] = {}
        for name in names:
            if name.upper() in folded:
                raise ValueError(f"parameter names must be unique ignoring case: {folded[name.upper()]} and {name} "
                                 f"would both be the env var KUBETUNE_PARAM_{name.upper()}")
            folded[name.upper()] = name
        if self.parallel_trials > self.max_trials:
            raise ValueError("parallelTrials must not exceed maxTrials")
        for problem in self.condition_problems():
            raise ValueError(problem)
        for problem in self.initial_point_problems():
            raise ValueError(problem)
        unknown = [(where, name) for where, name in self.trial_template.references() if name not in names]
        if unknown:
            where, name = unknown[0]
            raise ValueError(f"trialTemplate.{where}: ${{params.{name}}} refers to no parameter "
                             f"(have: {', '.join(names)})")
        return self
