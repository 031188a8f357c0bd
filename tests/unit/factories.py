"""Small builders of valid API objects for the unit tests."""

from __future__ import annotations

import copy
from typing import Any

from kubetune.api import Experiment, ObjectMeta, Trial, TrialPhase, TrialSpec, TrialStatus


def experiment_dict(**spec_overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "objective": {"metric": "accuracy", "goal": "maximize"},
        "algorithm": {"name": "random", "seed": 1},
        "maxTrials": 6,
        "parallelTrials": 2,
        "parameters": [
            {"name": "lr", "type": "double", "min": 0.001, "max": 0.1, "scale": "log"},
            {"name": "layers", "type": "int", "min": 1, "max": 4},
            {"name": "opt", "type": "categorical", "values": ["sgd", "adam"]},
        ],
        "trialTemplate": {"spec": {"template": {"spec": {"containers": [
            {"name": "train", "image": "trainer:1", "command": ["python", "train.py", "--lr", "${params.lr}"]},
        ]}}}},
    }
    spec.update(copy.deepcopy(spec_overrides))
    if not any(p.get("name") == "lr" for p in spec["parameters"]):  # the template names lr: keep it valid
        for container in spec["trialTemplate"]["spec"]["template"]["spec"]["containers"]:
            container["command"] = [arg for arg in container.get("command", []) if arg not in ("--lr", "${params.lr}")]
    return {"apiVersion": "kubetune.io/v1alpha1", "kind": "Experiment", "metadata": {"name": "exp"}, "spec": spec}


def experiment(**spec_overrides: Any) -> Experiment:
    return Experiment.model_validate(experiment_dict(**spec_overrides))


def trial(index: int, phase: TrialPhase = TrialPhase.SUCCEEDED, value: float | None = None,
          params: dict[str, Any] | None = None, name: str = "exp", **status: Any) -> Trial:
    if value is None and phase is TrialPhase.SUCCEEDED:
        value = 0.5
    return Trial(
        metadata=ObjectMeta(name=f"{name}-{index}"),
        spec=TrialSpec(index=index, params=params or {"lr": 0.01, "layers": 2, "opt": "sgd"}),
        status=TrialStatus(phase=phase, objective_value=value,
                           metrics={"accuracy": value} if value is not None else {}, **status),
    )
