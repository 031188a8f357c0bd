"""An Experiment given by a user, checked by the same rules wherever it comes from.

Text, a dict or a file's path in (the only I/O: reading that file), a typed
:class:`~kubetune.api.Experiment` out, or an :class:`InvalidExperiment` whose message names the
source and every problem with its path.
``kubetune validate``/``run`` (a file) and :class:`kubetune.client.Client.create` (a file, YAML
text, a dict or a model) both go through here, so they refuse the same Experiments.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from kubetune.api import Experiment, validation_problems
from kubetune.documents import load_all
from kubetune.lifecycle import spec_problems


class InvalidExperiment(ValueError):
    """Not a valid Experiment; the message is ready to show (``<source>: invalid Experiment:`` + one line each)."""


def experiment_from_yaml(text: str, source: str) -> Experiment:
    """The one Experiment among the YAML documents of ``text`` (strict YAML, as kubectl reads it)."""
    try:
        documents = load_all(text)
    except yaml.YAMLError as err:
        raise InvalidExperiment(f"{source}: not valid YAML: {err}") from None
    experiments = [d for d in documents if isinstance(d, dict) and d.get("kind") == "Experiment"]
    if len(experiments) != 1:
        raise InvalidExperiment(
            f"{source}: expected exactly one document of kind Experiment, found {len(experiments)}")
    return experiment_from_document(experiments[0], source)


def experiment_from_document(document: dict[str, Any], source: str) -> Experiment:
    """``document`` (wire spelling, camelCase) validated by the models and the algorithm's own checks."""
    try:
        experiment = Experiment.model_validate(document)
    except ValidationError as err:
        raise InvalidExperiment(f"{source}: invalid Experiment:\n" + "\n".join(validation_problems(err))) from None
    return check_experiment(experiment, source)


def check_experiment(experiment: Experiment, source: str) -> Experiment:
    """The checks the models cannot make (see :func:`kubetune.lifecycle.spec_problems`)."""
    problems = spec_problems(experiment)
    if problems:
        raise InvalidExperiment(f"{source}: invalid Experiment:\n" + "\n".join(problems))
    return experiment


def experiment_from_input(experiment: str | os.PathLike[str] | dict[str, Any] | Experiment) -> Experiment:
    """A YAML file's path, YAML text, a dict (wire spelling) or a model, checked as ``kubetune validate``
    checks a file. A string is a path when it is one line that names a file or ends in .yaml/.yml/.json."""
    if isinstance(experiment, Experiment):
        return check_experiment(experiment, f"experiment {experiment.metadata.name}")
    if isinstance(experiment, dict):
        metadata = experiment.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        return experiment_from_document(experiment, f"experiment {name}" if name else "experiment")
    if isinstance(experiment, os.PathLike) or _looks_like_path(experiment):
        path = Path(experiment)
        try:
            text = path.read_text()
        except OSError as err:
            raise InvalidExperiment(f"{path}: cannot read ({err.strerror})") from None
        return experiment_from_yaml(text, str(path))
    return experiment_from_yaml(experiment, "<yaml text>")


def _looks_like_path(text: str) -> bool:
    return "\n" not in text and (text.endswith((".yaml", ".yml", ".json")) or Path(text).is_file())
