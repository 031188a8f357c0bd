"""The Experiment model accepts what it should and names the field of what it rejects."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from kubetune.api import Experiment, Goal, Objective
from kubetune.cli import format_validation_error
from tests.unit.factories import experiment, experiment_dict


def with_parameter(**parameter: Any) -> dict[str, Any]:
    return experiment_dict(parameters=[{"name": "x", **parameter}])


INVALID = [
    (with_parameter(type="double", min=1, max=1), "spec.parameters[0].max: must be greater than min"),
    (with_parameter(type="double", min=0, max=1, scale="log"), "spec.parameters[0].scale: log scale needs min > 0"),
    (with_parameter(type="double", min=1), "double and int parameters need both min and max"),
    (with_parameter(type="categorical"), "categorical parameters need at least one value"),
    (with_parameter(type="categorical", values=[]), "categorical parameters need at least one value"),
    (with_parameter(type="categorical", values=["a", "a"]), "categorical values must be unique"),
    (with_parameter(type="double", min=0, max=1, values=["a"]), "values is only for categorical parameters"),
    (with_parameter(type="int", min=0.5, max=3), "int parameters need whole-number min and max"),
    (with_parameter(type="float", min=0, max=1), "spec.parameters[0].type: Input should be 'double', 'int'"),
    (with_parameter(type="double", min=0, max=1, extra=1), "spec.parameters[0].extra: Extra inputs are not permitted"),
    (experiment_dict(parameters=[]), "spec.parameters: List should have at least 1 item"),
    (experiment_dict(parameters=[{"name": "x", "type": "int", "min": 0, "max": 1}] * 2),
     "parameter names must be unique: x repeated"),
    (experiment_dict(maxTrials=2, parallelTrials=3), "parallelTrials must not exceed maxTrials"),
    (experiment_dict(maxTrials=0), "spec.maxTrials: Input should be greater than or equal to 1"),
    (experiment_dict(objective={"metric": "acc", "goal": "up"}), "spec.objective.goal: Input should be 'maximize'"),
    (experiment_dict(objective={"metric": "acc", "goal": "maximize", "additionalMetrics": ["acc"]}),
     "additionalMetrics must not repeat the objective metric"),
    (experiment_dict(algorithm={"name": "hyperband"}), "spec.algorithm.name: Input should be 'bayes'"),
    (experiment_dict(trialTemplate={"spec": {"template": {"spec": {"containers": []}}}}),
     "spec.trialTemplate.spec.template.spec.containers: List should have at least 1 item"),
    (experiment_dict(parameters=[{"name": "1x", "type": "int", "min": 0, "max": 1}]),
     "spec.parameters[0].name: String should match pattern"),
]


@pytest.mark.parametrize(("document", "expected"), INVALID, ids=[e for _, e in INVALID])
def test_invalid_experiments_are_rejected_with_the_field_named(document: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Experiment.model_validate(document)
    assert expected in format_validation_error(caught.value)


def test_long_experiment_names_are_rejected_because_trial_names_append_an_index() -> None:
    document = experiment_dict()
    document["metadata"]["name"] = "x" * 53
    with pytest.raises(ValidationError, match="at most 52 characters"):
        Experiment.model_validate(document)


def test_defaults_are_filled_and_camel_case_round_trips() -> None:
    exp = experiment()
    assert exp.spec.algorithm.seed == 1
    assert exp.spec.metrics_source.value == "Both"
    assert exp.spec.max_failed_trials is None
    wire = exp.to_wire()
    assert wire["spec"]["maxTrials"] == 6 and "max_trials" not in wire["spec"]
    assert Experiment.model_validate(wire) == exp


def test_unknown_job_template_fields_are_kept_for_kubernetes() -> None:
    document = experiment_dict()
    pod = document["spec"]["trialTemplate"]["spec"]["template"]["spec"]
    pod["nodeSelector"] = {"gpu": "a100"}
    pod["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": 1}}
    wire = Experiment.model_validate(document).to_wire()
    kept = wire["spec"]["trialTemplate"]["spec"]["template"]["spec"]
    assert kept["nodeSelector"] == {"gpu": "a100"}
    assert kept["containers"][0]["resources"] == {"limits": {"nvidia.com/gpu": 1}}


@pytest.mark.parametrize(("goal", "value", "than", "better"), [
    (Goal.MAXIMIZE, 0.9, 0.8, True), (Goal.MAXIMIZE, 0.7, 0.8, False),
    (Goal.MINIMIZE, 0.7, 0.8, True), (Goal.MINIMIZE, 0.9, 0.8, False),
])
def test_objective_direction(goal: Goal, value: float, than: float, better: bool) -> None:
    objective = Objective(metric="m", goal=goal, target=than)
    assert objective.better(value, than) is better
    assert objective.reached(value) is better
    assert (objective.loss(value) < objective.loss(than)) is better
