"""Rendering a trial: params as env vars and ${params.x} references, never through a shell."""

from __future__ import annotations

import pytest

from kubetune.api import ObjectMeta, Trial, TrialSpec
from kubetune.trial import RenderError, format_value, render_job, render_process
from tests.unit.factories import experiment

PARAMS = {"lr": 0.001, "layers": 3, "opt": "adam; rm -rf /"}


def make_trial(params: dict[str, object] = PARAMS) -> Trial:
    return Trial(metadata=ObjectMeta(name="exp-4"), spec=TrialSpec(index=4, params=params))  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "text"), [
    (0.1, "0.1"), (1e-05, "1e-05"), (0.30000000000000004, "0.30000000000000004"), (3, "3"), ("adam", "adam"),
])
def test_values_are_formatted_losslessly(value: float | int | str, text: str) -> None:
    assert format_value(value) == text
    if not isinstance(value, str):
        assert type(value)(text) == value


def test_job_gets_env_args_labels_and_safe_defaults() -> None:
    exp = experiment()
    container = exp.spec.trial_template.spec.template.spec.containers[0]
    container.args = ["--opt=${params.opt}", "${params.layers}"]
    job = render_job(exp, make_trial())
    assert job["metadata"]["name"] == "exp-4"
    assert job["metadata"]["labels"] == {"kubetune.io/experiment": "exp", "kubetune.io/trial": "exp-4"}
    spec = job["spec"]
    assert spec["backoffLimit"] == 0
    pod = spec["template"]
    assert pod["metadata"]["labels"]["kubetune.io/trial"] == "exp-4"
    assert pod["spec"]["restartPolicy"] == "Never"
    c = pod["spec"]["containers"][0]
    assert c["command"] == ["python", "train.py", "--lr", "0.001"]
    assert c["args"] == ["--opt=adam; rm -rf /", "3"]  # one argument each, no shell to interpret it
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["KUBETUNE_PARAM_LR"] == "0.001" and env["KUBETUNE_PARAM_OPT"] == "adam; rm -rf /"
    assert env["KUBETUNE_TRIAL"] == "exp-4" and env["KUBETUNE_EXPERIMENT"] == "exp"


def test_template_choices_win_over_defaults() -> None:
    exp = experiment(trialTemplate={"spec": {"backoffLimit": 2, "template": {"spec": {
        "restartPolicy": "OnFailure", "containers": [{"name": "t", "image": "i", "resources": {"limits": {
            "nvidia.com/gpu": 1}}}]}}}})
    job = render_job(exp, make_trial())
    assert job["spec"]["backoffLimit"] == 2
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
    assert job["spec"]["template"]["spec"]["containers"][0]["resources"] == {"limits": {"nvidia.com/gpu": 1}}


def test_rendering_does_not_change_the_experiment() -> None:
    exp = experiment()
    before = exp.to_wire()
    render_job(exp, make_trial())
    assert exp.to_wire() == before


def test_unknown_reference_is_an_error_naming_it() -> None:
    exp = experiment()
    exp.spec.trial_template.spec.template.spec.containers[0].args = ["${params.momentum}"]
    with pytest.raises(RenderError, match=r"\$\{params.momentum\} refers to no parameter"):
        render_job(exp, make_trial())


def test_local_process_uses_the_first_container() -> None:
    exp = experiment()
    exp.spec.trial_template.spec.active_deadline_seconds = 60
    exp.spec.trial_template.spec.template.spec.containers[0].env = [{"name": "MODE", "value": "${params.opt}"}]
    spec = render_process(exp, make_trial(), workdir="/work", metrics_file="/tmp/m.json", base_env={"PATH": "/bin"})
    assert spec.argv == ["python", "train.py", "--lr", "0.001"]
    assert spec.cwd == "/work" and spec.timeout_seconds == 60
    assert spec.env["KUBETUNE_METRICS_FILE"] == "/tmp/m.json" and spec.env["PATH"] == "/bin"
    assert spec.env["MODE"] == "adam; rm -rf /" and spec.env["KUBETUNE_PARAM_LAYERS"] == "3"


def test_local_process_needs_a_command() -> None:
    exp = experiment()
    exp.spec.trial_template.spec.template.spec.containers[0].command = None
    with pytest.raises(RenderError, match="has no command"):
        render_process(exp, make_trial(), workdir="/w", metrics_file="/m", base_env={})


def test_both_renderers_substitute_the_same_references_in_command_args_and_env_values() -> None:
    exp = experiment()
    container = exp.spec.trial_template.spec.template.spec.containers[0]
    container.args = ["--opt=${params.opt}"]
    container.env = [{"name": "LAYERS", "value": "n=${params.layers}"},
                     {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    trial = make_trial()
    job = render_job(exp, trial)["spec"]["template"]["spec"]["containers"][0]
    process = render_process(exp, trial, workdir="/w", metrics_file="/m", base_env={})
    job_env = {e["name"]: e.get("value") for e in job["env"]}
    assert job_env["LAYERS"] == process.env["LAYERS"] == "n=3"  # the Job once got the literal ${params.layers}
    assert job["command"] + job["args"] == process.argv == ["python", "train.py", "--lr", "0.001",
                                                           "--opt=adam; rm -rf /"]
    assert {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in job["env"]
    for name, value in job_env.items():
        if name.startswith("KUBETUNE_PARAM_"):
            assert process.env[name] == value
