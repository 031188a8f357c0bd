"""Conditional parameters (``when``): which are active, what trials get, and every suggester on such a space."""

from __future__ import annotations

from typing import Any

import pytest

from kubetune.api import Trial, TrialPhase
from kubetune.lifecycle import plan
from kubetune.space import Space, SpaceError
from kubetune.trial import render_job, render_process
from tests.unit.factories import experiment, trial

NOW = "2026-01-01T00:00:00Z"
PARAMETERS: list[dict[str, Any]] = [
    {"name": "model", "type": "categorical", "values": ["svm", "forest", "mlp"]},
    {"name": "C", "type": "double", "min": 0.01, "max": 100, "scale": "log", "when": {"model": ["svm"]}},
    {"name": "kernel", "type": "categorical", "values": ["rbf", "poly"], "when": {"model": ["svm"]}},
    {"name": "degree", "type": "int", "min": 2, "max": 5, "when": {"kernel": ["poly"]}},  # a chain: svm and poly
    {"name": "trees", "type": "int", "min": 10, "max": 500, "when": {"model": ["forest"]}},
    {"name": "lr", "type": "double", "min": 0.0001, "max": 0.1, "scale": "log", "when": {"model": ["mlp"]}},
]
COMMAND = ["python", "train.py", "--model", "${params.model}", "--C=${params.C}", "--trees=${params.trees}"]


def spec(**changes: Any) -> dict[str, Any]:
    template = {"spec": {"template": {"spec": {"containers": [
        {"name": "train", "image": "trainer:1", "command": COMMAND,
         "env": [{"name": "DEGREE", "value": "${params.degree}"}, {"name": "PLAIN", "value": "x"}]}]}}}}
    return {"parameters": PARAMETERS, "trialTemplate": template, **changes}


SPACE = Space(experiment(**spec()).spec.parameters)


@pytest.mark.parametrize(("params", "active"), [
    ({"model": "svm", "kernel": "rbf"}, {"model", "C", "kernel"}),
    ({"model": "svm", "kernel": "poly"}, {"model", "C", "kernel", "degree"}),
    ({"model": "forest", "kernel": "poly"}, {"model", "trees"}),  # kernel is inactive, so degree is too
    ({"model": "mlp"}, {"model", "lr"}),
])
def test_active_parameters_follow_the_conditions_and_their_chains(params: dict[str, Any], active: set[str]) -> None:
    assert SPACE.active(params) == active


def test_an_inactive_parameter_is_absent_from_the_trial_and_filled_only_for_the_models() -> None:
    full = SPACE.validate({"model": "forest", "trees": 50})
    assert set(full) == set(SPACE.names) and full["trees"] == 50  # models see a full vector
    assert SPACE.project(full) == {"model": "forest", "trees": 50}
    assert SPACE.key(full) == SPACE.key({**full, "C": 7.0})  # a value where inactive is no new point
    with pytest.raises(SpaceError, match="missing parameter"):
        SPACE.validate({"model": "forest"})
    assert SPACE.is_complete({"model": "mlp", "lr": 0.01}) and not SPACE.is_complete({"model": "svm", "C": 1.0})


@pytest.mark.parametrize("algorithm", ["random", "sobol", "bayes", "tpe", "grid"])
def test_every_algorithm_gives_trials_only_their_active_parameters(algorithm: str) -> None:
    settings = {"gridPoints": 2} if algorithm == "grid" else {}
    exp = experiment(**spec(maxTrials=40, parallelTrials=4, algorithm={"name": algorithm, "seed": 3,
                                                                         "settings": settings}))
    trials: list[Trial] = []
    while len(trials) < 24:
        decision = plan(exp, trials, now=NOW)
        if not decision.create:
            break
        for new in decision.create:
            assert set(new.params) == SPACE.active(new.params), new.params
            value = 1.0 if new.params["model"] == "forest" else 0.5
            trials.append(trial(new.index, TrialPhase.SUCCEEDED, value=value, params=new.params))
    models = {t.spec.params["model"] for t in trials}
    assert models == {"svm", "forest", "mlp"}, models
    keys = [SPACE.key(SPACE.validate(t.spec.params)) for t in trials]
    assert len(set(keys)) == len(keys)  # no repeats, even of points that differ only where inactive


def test_grid_enumerates_each_distinct_point_once() -> None:
    exp = experiment(**spec(maxTrials=500, parallelTrials=500, algorithm={"name": "grid",
                                                                           "settings": {"gridPoints": 2}}))
    created = [new.params for new in plan(exp, [], now=NOW).create]
    # svm: 2 C × (rbf + poly × 2 degrees) = 6; forest: 2 trees; mlp: 2 lr
    assert len(created) == 10 == len({tuple(sorted(p.items())) for p in created})


def test_a_reference_to_an_inactive_parameter_leaves_its_argument_and_env_entry_out() -> None:
    exp = experiment(**spec())
    forest = trial(0, TrialPhase.PENDING, params={"model": "forest", "trees": 50})
    container = render_job(exp, forest)["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "train.py", "--model", "forest", "--trees=50"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert "DEGREE" not in env and env["PLAIN"] == "x" and "KUBETUNE_PARAM_C" not in env
    assert env["KUBETUNE_PARAM_TREES"] == "50"
    local = render_process(exp, forest, workdir=".", metrics_file="m.json", base_env={})
    assert local.argv == ["python", "train.py", "--model", "forest", "--trees=50"]
    assert "DEGREE" not in local.env and "KUBETUNE_PARAM_C" not in local.env


@pytest.mark.parametrize(("when", "words"), [
    ({"modle": ["svm"]}, "'modle' is not another categorical parameter"),
    ({"lr": ["1"]}, "'lr' is not another categorical parameter"),
    ({"model": ["knn"]}, "'knn' is not one of ['svm', 'forest', 'mlp']"),
])
def test_a_bad_condition_is_refused_naming_it(when: dict[str, list[str]], words: str) -> None:
    parameters = [*PARAMETERS[:5], {**PARAMETERS[5], "when": when}]
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        experiment(**spec(parameters=parameters))


def test_a_cycle_of_conditions_is_refused() -> None:
    parameters = [{"name": "a", "type": "categorical", "values": ["x", "y"], "when": {"b": ["x"]}},
                  {"name": "b", "type": "categorical", "values": ["x", "y"], "when": {"a": ["x"]}},
                  {"name": "c", "type": "double", "min": 0, "max": 1}]
    with pytest.raises(ValueError, match="depend on it again"):
        experiment(parameters=parameters)


def test_an_initial_point_that_sets_an_inactive_parameter_is_refused() -> None:
    with pytest.raises(ValueError, match=r"initialPoints\[0\].trees: inactive in this point \(it needs model in"):
        experiment(**spec(initialPoints=[{"model": "svm", "trees": 20}]))
    ok = experiment(**spec(initialPoints=[{"model": "forest", "trees": 20}], parallelTrials=1))
    (first,) = plan(ok, [], now=NOW).create
    assert first.params == {"model": "forest", "trees": 20}
