"""One table of bad Experiments, checked by both tiers: ``kubetune validate`` (tests/unit/test_bad_input.py)
and ``kubectl apply`` against a real API server (tests/cluster/test_crds.py).

Each case is the YAML a user would write. Where it is refused:

``both``
    ``kubetune validate`` exits 2 naming the problem, and ``kubectl apply`` is refused by the
    CRD's schema or CEL rules naming it too.
``webhook``
    a rule CEL cannot express (the reason is given): ``kubectl apply`` is refused by the operator's
    validating admission webhook, naming the problem in ``kubetune validate``'s words. Where no
    webhook is installed (``webhook.enabled: false``), the API server accepts the Experiment and
    the operator's first pass ends it Failed with reason InvalidSpec and the same message, before
    any trial is created, so no budget is spent. The cluster tier checks both.
``local``
    a property of the YAML text itself that kubectl's YAML-to-JSON conversion erases before the
    API server sees it (kubectl keeps the last of two duplicate keys): refused locally only.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import yaml

BASE: dict[str, Any] = {
    "apiVersion": "kubetune.io/v1alpha1",
    "kind": "Experiment",
    "metadata": {"name": "bad"},
    "spec": {
        "objective": {"metric": "score", "goal": "maximize"},
        "algorithm": {"name": "sobol", "seed": 1},
        "maxTrials": 4,
        "parallelTrials": 2,
        "parameters": [
            {"name": "x", "type": "double", "min": 0.0, "max": 1.0},
            {"name": "opt", "type": "categorical", "values": ["sgd", "adam"]},
        ],
        "trialTemplate": {"spec": {"template": {"spec": {"containers": [{
            "name": "trial", "image": "local/python-base:dev", "imagePullPolicy": "Never",
            "command": ["python3", "-c", "print('kubetune: score=1')", "${params.x}"],
        }]}}}},
    },
}


@dataclass(frozen=True)
class Case:
    name: str
    yaml: str
    #: words the refusal must contain: ``kubetune validate``'s, then the API server's (``both``)
    local: tuple[str, ...]
    cluster: tuple[str, ...] = ()
    where: str = "both"
    why: str = ""


def _yaml(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False)


def spec(**changes: Any) -> str:
    """BASE with spec keys set (None deletes one)."""
    document = copy.deepcopy(BASE)
    for key, value in changes.items():
        if value is None:
            document["spec"].pop(key, None)
        else:
            document["spec"][key] = value
    return _yaml(document)


def parameter(index: int = 0, **changes: Any) -> str:
    document = copy.deepcopy(BASE)
    target = document["spec"]["parameters"][index]
    for key, value in changes.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    return _yaml(document)


def parameters(*items: dict[str, Any]) -> str:
    document = copy.deepcopy(BASE)
    document["spec"]["parameters"] = list(items)
    command = document["spec"]["trialTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
    command.remove("${params.x}")
    return _yaml(document)


def container(**changes: Any) -> str:
    document = copy.deepcopy(BASE)
    document["spec"]["trialTemplate"]["spec"]["template"]["spec"]["containers"][0].update(changes)
    return _yaml(document)


def top(**changes: Any) -> str:
    document = copy.deepcopy(BASE)
    for key, value in changes.items():
        if value is None:
            document.pop(key, None)
        elif key == "name":
            document["metadata"]["name"] = value
        else:
            document[key] = value
    return _yaml(document)


def algorithm(name: str, **settings: Any) -> str:
    return spec(algorithm={"name": name, "settings": settings})


def job(**changes: Any) -> str:
    document = copy.deepcopy(BASE)
    document["spec"]["trialTemplate"]["spec"].update(changes)
    return _yaml(document)


def objective(**changes: Any) -> str:
    document = copy.deepcopy(BASE)
    document["spec"]["objective"].update(changes)
    return _yaml(document)


def stopping(**settings: Any) -> str:
    return spec(earlyStopping=settings)


def _plain(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


POINT_VALUES = ("an initial point's values are numbers or strings, a type a structural schema can only keep as "
                "unknown fields, which CEL cannot read")

CASES: list[Case] = [
    # --- parameters
    Case("max below min", parameter(min=2.0, max=1.0), ("spec.parameters[0].max: must be greater than min",),
         ("spec.parameters[0]", "max must be greater than min")),
    Case("log scale with min 0", parameter(scale="log"), ("spec.parameters[0].scale: log scale needs min > 0",),
         ("spec.parameters[0]", "log scale needs min > 0")),
    Case("categorical without values", parameter(1, values=None),
         ("categorical parameters need at least one value",),
         ("spec.parameters[1]", "categorical parameters need at least one value")),
    Case("values on a double", parameter(values=["a", "b"]), ("values is only for categorical parameters",),
         ("spec.parameters[0]", "values is only for categorical parameters")),
    Case("double without max", parameter(max=None), ("double and int parameters need both min and max",),
         ("spec.parameters[0]", "need both min and max")),
    Case("int with fractional bounds", parameter(type="int", min=0.5, max=3.0),
         ("int parameters need whole-number min and max",), ("spec.parameters[0]", "whole-number")),
    Case("bad parameter name", parameter(name="learning-rate"), ("spec.parameters[0].name: String should match",),
         ("spec.parameters[0].name",)),
    Case("duplicate parameter names", parameters({"name": "x", "type": "int", "min": 0, "max": 1},
                                                 {"name": "x", "type": "int", "min": 0, "max": 2}),
         ("parameter names must be unique: x repeated",), ("spec.parameters[1]", "Duplicate value")),
    Case("names equal ignoring case", parameters({"name": "x", "type": "int", "min": 0, "max": 1},
                                                 {"name": "X", "type": "int", "min": 0, "max": 2}),
         ("unique ignoring case: x and X would both be the env var KUBETUNE_PARAM_X",),
         ("spec", "parameter names must be unique ignoring case")),
    Case("a range that overflows a double", parameter(min=-1e308, max=1e308),
         ("spec.parameters[0].max: max - min must be a finite number",),
         ("spec.parameters[0]", "max - min must be a finite number")),
    Case("an infinite bound", _plain(parameter(max=2.0), "max: 2.0", "max: .inf"),
         ("spec.parameters[0].max: must be a finite number, got inf",), ("unsupported value: +Inf",)),
    Case("a NaN bound", _plain(parameter(min=-2.0), "min: -2.0", "min: .nan"),
         ("spec.parameters[0].min: must be a finite number, got nan",), ("unsupported value: NaN",)),
    Case("a string bound", _plain(parameter(max=7.0), "max: 7.0", "max: '7'"),
         ("spec.parameters[0].max: Input should be a valid number",), ("spec.parameters[0].max", "number")),
    Case("a parameter named y", _plain(parameters({"name": "k", "type": "int", "min": 0, "max": 1}), "name: k",
                                       "name: y"),
         ("spec.parameters[0].name: Input should be a valid string (YAML reads an unquoted y",),
         ("spec.parameters[0].name", "must be of type string")),
    Case("categorical values y and n", _plain(parameter(1, values=["yes-", "no-"]), "- yes-\n    - no-",
                                              "- y\n    - n"),
         ("spec.parameters[1].values[0]: Input should be a valid string (YAML reads an unquoted y",),
         ("spec.parameters[1].values[0]", "must be of type string")),
    Case("a range too narrow for 8 significant digits", parameter(min=1.0, max=1.000000001),
         ("min and max must differ within 8 significant digits",), where="webhook",
         why="rounding to 8 significant digits is not a CEL function"),
    # --- objective and budget
    Case("an additional objective repeating the metric",
         objective(additionalObjectives=[{"metric": "score", "goal": "minimize"}]),
         ("additionalObjectives must not repeat the objective metric or an additionalMetrics name: score",),
         ("spec.objective", "additionalObjectives must not repeat the objective metric")),
    Case("an additional objective without a goal", objective(additionalObjectives=[{"metric": "latency"}]),
         ("spec.objective.additionalObjectives[0].goal: Field required",),
         ("spec.objective.additionalObjectives[0].goal", "Required value")),
    Case("four additional objectives",
         objective(additionalObjectives=[{"metric": f"m{i}", "goal": "minimize"} for i in range(4)]),
         ("spec.objective.additionalObjectives: List should have at most 3 items",),
         ("spec.objective.additionalObjectives", "must have at most 3 items")),
    Case("parallelTrials above maxTrials", spec(parallelTrials=9, maxTrials=3),
         ("parallelTrials must not exceed maxTrials",), ("spec", "parallelTrials must not exceed maxTrials")),
    Case("maxTrials 0", spec(maxTrials=0, parallelTrials=0), ("spec.maxTrials: Input should be greater",),
         ("spec.maxTrials",)),
    Case("maxTrials as a string", spec(maxTrials="2"), ("spec.maxTrials: Input should be a valid integer",),
         ("spec.maxTrials", "integer")),
    Case("parallelTrials as a boolean", spec(parallelTrials=True),
         ("spec.parallelTrials: Input should be a valid integer",), ("spec.parallelTrials", "integer")),
    Case("suspend as a string", spec(suspend="yes"), ("spec.suspend: Input should be a valid boolean",),
         ("spec.suspend", "boolean")),
    Case("negative maxFailedTrials", spec(maxFailedTrials=-1), ("spec.maxFailedTrials",), ("spec.maxFailedTrials",)),
    Case("unknown goal", objective(goal="maximise"), ("spec.objective.goal: Input should be 'maximize'",),
         ("spec.objective.goal", "maximise")),
    Case("bad metric name", objective(metric="9 lives"), ("spec.objective.metric",), ("spec.objective.metric",)),
    Case("additionalMetrics repeats the metric", objective(additionalMetrics=["score"]),
         ("additionalMetrics must not repeat the objective metric",),
         ("spec.objective", "additionalMetrics must not repeat the objective metric")),
    Case("an infinite target", _plain(objective(target=2.0), "target: 2.0", "target: .inf"),
         ("spec.objective.target: must be a finite number, got inf",), ("unsupported value: +Inf",)),
    Case("unknown metricsSource", spec(metricsSource="Stderr"), ("spec.metricsSource",),
         ("spec.metricsSource", "Stderr")),
    # --- algorithm settings
    Case("unknown algorithm", spec(algorithm={"name": "hyperband"}), ("spec.algorithm.name",),
         ("spec.algorithm.name", "hyperband")),
    Case("random with a setting", algorithm("random", gridPoints=3),
         ("algorithm 'random' has no setting 'gridPoints' (its settings: none)",),
         ("spec.algorithm", "setting gridPoints is only for algorithm grid")),
    Case("gridPoints 0", algorithm("grid", gridPoints=0), ("grid setting 'gridPoints' must be ≥ 1, got 0",),
         ("spec.algorithm.settings.gridPoints", "greater than or equal to 1")),
    Case("gridPoints as a string", algorithm("grid", gridPoints="5"),
         ("grid setting 'gridPoints' must be an integer, got '5'",),
         ("spec.algorithm.settings.gridPoints", "must be of type integer")),
    Case("initialTrials 0", algorithm("bayes", initialTrials=0), ("bayes setting 'initialTrials' must be ≥ 1",),
         ("spec.algorithm.settings.initialTrials", "greater than or equal to 1")),
    Case("an unknown acquisition", algorithm("bayes", acquisition="thompson"),
         ("bayes setting 'acquisition' must be one of hedge, logei, ucb, pi, got 'thompson'",),
         ("spec.algorithm.settings.acquisition", "thompson")),
    Case("tpe gamma of 1", algorithm("tpe", gamma=1.0), ("tpe setting 'gamma' must be in (0, 1), got 1.0",),
         ("spec.algorithm.settings.gamma", "should be less than 1")),
    Case("tpe gamma of 0", algorithm("tpe", gamma=0), ("tpe setting 'gamma' must be in (0, 1), got 0",),
         ("spec.algorithm.settings.gamma", "should be greater than 0")),
    Case("a nested settings object", algorithm("grid", gridPoints={"value": 5}),
         ("spec.algorithm.settings.gridPoints",), ("unknown field", "spec.algorithm.settings.gridPoints")),
    Case("an unknown setting", algorithm("bayes", exploration=2),
         ("algorithm 'bayes' has no setting 'exploration'",),
         ("unknown field", "spec.algorithm.settings.exploration")),
    Case("a grid too large for the space", _plain(algorithm("grid", gridPoints=1000), "  parameters:\n",
                                                  "  parameters:\n" + "".join(
                                                      f"  - {{name: z{i}, type: double, min: 0, max: 1}}\n"
                                                      for i in range(3))),
         ("the grid has 2000000000000 points, more than 1000000",), where="webhook",
         why="the grid's size is a product over the parameters, which CEL has no fold for"),
    # --- early stopping
    Case("asha without maxSteps", stopping(rule="asha"), ("asha needs maxSteps",),
         ("spec.earlyStopping", "asha needs maxSteps")),
    Case("maxSteps with median", stopping(rule="median", maxSteps=9), ("maxSteps is only for asha",),
         ("spec.earlyStopping", "maxSteps is only for asha")),
    Case("reductionFactor with median", stopping(rule="median", reductionFactor=3),
         ("reductionFactor is only for asha",), ("spec.earlyStopping", "reductionFactor is only for asha")),
    Case("minSteps not below maxSteps", stopping(rule="asha", minSteps=9, maxSteps=9),
         ("minSteps (9) must be less than maxSteps (9)",), ("spec.earlyStopping", "minSteps must be less than")),
    Case("reductionFactor 1", stopping(rule="asha", maxSteps=9, reductionFactor=1),
         ("spec.earlyStopping.reductionFactor: Input should be greater than or equal to 2",),
         ("spec.earlyStopping.reductionFactor", "greater than or equal to 2")),
    Case("an unknown rule", stopping(rule="hyperband"), ("spec.earlyStopping.rule",),
         ("spec.earlyStopping.rule", "hyperband")),
    # --- initialPoints
    Case("an initial point naming no parameter", spec(initialPoints=[{"x": 0.5}, {"lr": 0.1}]),
         ("initialPoints[1].lr: no such parameter (have: x, opt)",), where="webhook", why=POINT_VALUES),
    Case("an initial value outside the range", spec(initialPoints=[{"x": 1.5, "opt": "sgd"}]),
         ("initialPoints[0].x: 1.5 is outside [0, 1]",), where="webhook", why=POINT_VALUES),
    Case("an initial value the categorical does not have", spec(initialPoints=[{"opt": "rmsprop"}]),
         ("initialPoints[0].opt: 'rmsprop' is not one of ['sgd', 'adam']",), where="webhook", why=POINT_VALUES),
    Case("a string for a number", spec(initialPoints=[{"x": "0.5"}]), ("initialPoints[0].x: '0.5' is not a number",),
         where="webhook", why=POINT_VALUES),
    Case("a fraction for an int", spec(parameters=[{"name": "x", "type": "double", "min": 0.0, "max": 1.0},
                                                   {"name": "k", "type": "int", "min": 0, "max": 4}],
                                       initialPoints=[{"k": 2.5}]),
         ("initialPoints[0].k: 2.5 is not a whole number",), where="webhook", why=POINT_VALUES),
    Case("more initial points than maxTrials", spec(initialPoints=[{"x": 0.1}] * 5),
         ("initialPoints has 5 points, more than maxTrials (4)",),
         ("spec", "initialPoints must not list more points than maxTrials")),
    # --- conditional parameters
    Case("a condition on an unknown parameter", parameter(0, when={"optimizer": ["sgd"]}),
         ("parameters[0].when: 'optimizer' is not another categorical parameter",),
         ("spec", "a parameter's when may only name other categorical parameters")),
    Case("a condition on a number", parameters({"name": "x", "type": "double", "min": 0.0, "max": 1.0},
                                               {"name": "w", "type": "double", "min": 0.0, "max": 1.0,
                                                "when": {"x": ["1"]}}),
         ("parameters[1].when: 'x' is not another categorical parameter",),
         ("spec", "a parameter's when may only name other categorical parameters")),
    Case("a condition on a value the parameter does not have", parameter(0, when={"opt": ["rmsprop"]}),
         ("parameters[0].when.opt: 'rmsprop' is not one of ['sgd', 'adam']",), where="webhook",
         why="checking every listed value against the named parameter's values (64 parameters of up to 1000 "
             "values) exceeds the API server's CEL cost budget"),
    Case("conditions in a cycle", parameters({"name": "a", "type": "categorical", "values": ["u", "v"],
                                              "when": {"b": ["u"]}},
                                             {"name": "b", "type": "categorical", "values": ["u", "v"],
                                              "when": {"a": ["u"]}}),
         ("the conditions of 'a' depend on it again (a cycle through when)",), where="webhook",
         why="following a chain of conditions is a graph search, which CEL's list macros cannot express"),
    # --- warmStart
    Case("a warm start from itself", spec(warmStart={"experiments": ["bad"]}),
         ("spec.warmStart.experiments must not name the experiment itself",),
         ("spec.warmStart.experiments must not name the experiment itself",)),
    Case("a warm start from a name no Experiment can have", spec(warmStart={"experiments": ["Last_Week"]}),
         ("spec.warmStart.experiments[0]: String should match pattern",),
         ("spec.warmStart.experiments[0]", "should match")),
    Case("a warm start with no experiment", spec(warmStart={"experiments": []}),
         ("spec.warmStart.experiments: List should have at least 1 item",),
         ("spec.warmStart.experiments", "should have at least 1 items")),
    # --- the trial template and the object
    Case("missing trialTemplate", spec(trialTemplate=None), ("spec.trialTemplate: Field required",),
         ("spec.trialTemplate", "Required")),
    Case("no containers", job(template={"spec": {"containers": []}}),
         ("spec.trialTemplate.spec.template.spec.containers: List should have at least 1 item",),
         ("spec.trialTemplate.spec.template.spec.containers",)),
    Case("a JobSet template with a Job's spec.template",
         spec(trialTemplate={"kind": "JobSet", **BASE["spec"]["trialTemplate"]}),
         ("spec.trialTemplate: a JobSet template has its pod templates inside its replicas",),
         ("a Job template has its pod in spec.template; a JobSet or PyTorchJob template has its pod templates",)),
    Case("a Job template without spec.template", spec(trialTemplate={"spec": {"backoffLimit": 0}}),
         ("spec.trialTemplate: a Job template needs spec.template",),
         ("a Job template has its pod in spec.template",)),
    Case("a workload kind kubetune does not run", spec(trialTemplate={"kind": "Workflow", "spec": {}}),
         ("spec.trialTemplate.kind: Input should be 'Job', 'JobSet' or 'PyTorchJob'",),
         ("spec.trialTemplate.kind", "Unsupported value")),
    Case("activeDeadlineSeconds as a string", job(activeDeadlineSeconds="30"),
         ("spec.trialTemplate.spec.activeDeadlineSeconds: Input should be a valid integer",),
         ("spec.trialTemplate.spec.activeDeadlineSeconds", "integer")),
    Case("a reference to no parameter in args", container(args=["--depth", "${params.depth}"]),
         ("containers[0].args[1]: ${params.depth} refers to no parameter (have: x, opt)",), where="webhook",
         why="extracting every reference from the template's strings exceeds CEL's cost budget unless the Job "
             "template's lists and strings were capped, and the template belongs to Kubernetes"),
    Case("a reference to no parameter in an env value", container(env=[{"name": "LR", "value": "${params.lr}"}]),
         ("containers[0].env[0].value: ${params.lr} refers to no parameter",), where="webhook",
         why="as for args"),
    Case("a name with a dot", top(name="my.run"), ("metadata.name: String should match pattern",),
         ("metadata.name must be a DNS-1123 label",)),
    Case("a name too long", top(name="e" * 60), ("metadata.name must be at most 52 characters",),
         ("metadata.name", "52")),
    Case("no apiVersion", top(apiVersion=None), ("apiVersion: Field required",), ("apiVersion",)),
    Case("a key given twice", _plain(spec(maxTrials=4), "maxTrials: 4\n", "maxTrials: 4\n  maxTrials: 40\n"),
         ("found duplicate key 'maxTrials'",), where="local",
         why="kubectl turns YAML into JSON keeping the last key; the API server never sees the first"),
]

BY_WHERE = {where: [c for c in CASES if c.where == where] for where in ("both", "webhook", "local")}
