"""Rendering a trial's workload from the Experiment's template.

Purely data-manipulative: builds a Job manifest (for the operator) or a process description (for
the local runner). Parameters reach the training code as ``KUBETUNE_PARAM_<NAME>`` environment
variables and through ``${params.<name>}`` references in ``command``, ``args`` and env values,
alike in both renderers. A reference is replaced inside its own argument only, never through a
shell, so a value can neither split into several arguments nor run anything. Validation
(:class:`kubetune.api.ExperimentSpec`) refuses a reference to no parameter before any trial runs.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubetune.api import (
    ATTEMPT_ANNOTATION,
    ATTEMPT_LABEL,
    EXPERIMENT_LABEL,
    PARAM_REFERENCE,
    TRIAL_LABEL,
    Experiment,
    Params,
    ParamValue,
    Trial,
)
from kubetune.api.workloads import WorkloadKind, pod_templates

PARAM_ENV_PREFIX = "KUBETUNE_PARAM_"
TRIAL_ENV = "KUBETUNE_TRIAL"
EXPERIMENT_ENV = "KUBETUNE_EXPERIMENT"
METRICS_FILE_ENV = "KUBETUNE_METRICS_FILE"


class RenderError(ValueError):
    """A template that cannot be rendered for a trial (e.g. a reference to an unknown parameter)."""


def env_name(parameter: str) -> str:
    return PARAM_ENV_PREFIX + parameter.upper()


def format_value(value: ParamValue) -> str:
    """A value as text that parses back to exactly the same value (``repr`` for floats)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def substitute(argument: str, params: Mapping[str, ParamValue]) -> str:
    """Replace every ``${params.<name>}`` in one argument; an unknown name is an error."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in params:
            raise RenderError(f"${{params.{name}}} refers to no parameter (have: {', '.join(sorted(params))})")
        return format_value(params[name])

    return PARAM_REFERENCE.sub(replace, argument)


def inactive_names(experiment: Experiment, params: Params) -> frozenset[str]:
    """Parameters of the space that this trial does not have: inactive by their ``when``."""
    return frozenset(p.name for p in experiment.spec.parameters if p.name not in params)


def refers_to(text: str, names: frozenset[str]) -> bool:
    """Whether ``text`` has a ``${params.<name>}`` reference to one of ``names``."""
    return any(m.group(1) in names for m in PARAM_REFERENCE.finditer(text))


def substitute_all(arguments: list[str], params: Params, inactive: frozenset[str]) -> list[str]:
    """Each argument substituted; one that refers to an inactive parameter is left out (write a
    flag and its value as one argument, ``--momentum=${params.momentum}``, so both go together)."""
    return [substitute(a, params) for a in arguments
            if not refers_to(a, inactive)]


def trial_env(experiment: str, trial: str, params: Params) -> dict[str, str]:
    env = {env_name(name): format_value(value) for name, value in params.items()}
    env[TRIAL_ENV] = trial
    env[EXPERIMENT_ENV] = experiment
    return env


def _template_env(entries: list[dict[str, Any]] | None, params: Params,
                  inactive: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """The template's env entries with references substituted in their ``value`` (not in valueFrom);
    an entry whose value refers to an inactive parameter is left out."""
    rendered = []
    for entry in entries or []:
        entry = dict(entry)
        if isinstance(entry.get("value"), str):
            if refers_to(entry["value"], inactive):
                continue
            entry["value"] = substitute(entry["value"], params)
        rendered.append(entry)
    return rendered


def _render_container(container: dict[str, Any], params: Params, env: dict[str, str],
                      inactive: frozenset[str]) -> dict[str, Any]:
    for key in ("command", "args"):
        if container.get(key):
            container[key] = substitute_all(container[key], params, inactive)
    ours = [{"name": k, "value": v} for k, v in env.items()]
    theirs = [e for e in _template_env(container.get("env"), params, inactive) if e.get("name") not in env]
    container["env"] = theirs + ours
    return container


def render_job(experiment: Experiment, trial: Trial) -> dict[str, Any]:
    """The manifest of a trial's workload: its batch/v1 Job, or its JobSet or PyTorchJob (owner
    references are the operator's to add).

    Every pod template of the workload gets the trial's labels, its parameters in the containers'
    command, args and env, and ``restartPolicy: Never`` unless it says otherwise; the workload is
    named after the trial and carries the attempt (:data:`kubetune.api.ATTEMPT_ANNOTATION`).
    """
    template = experiment.spec.trial_template
    name = trial.metadata.name
    labels = {EXPERIMENT_LABEL: experiment.metadata.name, TRIAL_LABEL: name}
    spec = copy.deepcopy(template.spec.to_wire())
    env = trial_env(experiment.metadata.name, name, trial.spec.params)
    inactive = inactive_names(experiment, trial.spec.params)
    attempt = str(trial.status.retries)
    if template.kind is WorkloadKind.JOB:
        spec.setdefault("backoffLimit", 0)
    for _, pod in pod_templates(spec):
        pod_meta = pod.setdefault("metadata", {})
        # the attempt on the pods too: a multi-node workload's pods belong to its child Jobs, not to it
        pod_meta["labels"] = {**(pod_meta.get("labels") or {}), **labels, ATTEMPT_LABEL: attempt}
        pod_spec = pod["spec"]
        if template.kind is WorkloadKind.JOB or template.kind is WorkloadKind.JOB_SET:
            pod_spec.setdefault("restartPolicy", "Never")
        pod_spec["containers"] = [_render_container(c, trial.spec.params, env, inactive)
                                  for c in pod_spec["containers"]]
    metadata: dict[str, Any] = {"name": name, "labels": labels}
    if template.metadata:
        metadata["labels"] = {**template.metadata.labels, **labels}
        if template.metadata.annotations:
            metadata["annotations"] = dict(template.metadata.annotations)
    metadata["annotations"] = {**(metadata.get("annotations") or {}), ATTEMPT_ANNOTATION: attempt}
    if experiment.metadata.namespace:
        metadata["namespace"] = experiment.metadata.namespace
    return {"apiVersion": template.resolved_api_version, "kind": template.kind.value, "metadata": metadata,
            "spec": spec}


@dataclass(frozen=True)
class ProcessSpec:
    """How the local runner starts a trial: argv (no shell), environment, folder, deadline."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    timeout_seconds: float | None


def render_process(
    experiment: Experiment, trial: Trial, *, workdir: str, metrics_file: str, base_env: Mapping[str, str]
) -> ProcessSpec:
    """The local process of a trial, from the template's first container.

    It runs in ``workdir`` (the experiment file's folder); the container's ``workingDir`` is a path
    inside an image and is not used locally.
    """
    container = experiment.spec.trial_template.pods()[0][1].spec.containers[0]
    inactive = inactive_names(experiment, trial.spec.params)
    argv = substitute_all((container.command or []) + (container.args or []), trial.spec.params, inactive)
    if not argv:
        raise RenderError(
            f"container {container.name!r} has no command: a local run needs one (an image's entrypoint "
            "only exists on a cluster)"
        )
    env = dict(base_env)
    for entry in _template_env(container.env, trial.spec.params, inactive):
        if isinstance(entry.get("value"), str) and "name" in entry:
            env[str(entry["name"])] = entry["value"]
    env.update(trial_env(experiment.metadata.name, trial.metadata.name, trial.spec.params))
    env[METRICS_FILE_ENV] = metrics_file
    env.setdefault("PYTHONUNBUFFERED", "1")
    deadline = experiment.spec.trial_template.spec.active_deadline_seconds
    return ProcessSpec(argv=argv, env=env, cwd=workdir, timeout_seconds=float(deadline) if deadline else None)
