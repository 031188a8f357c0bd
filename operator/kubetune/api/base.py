"""What every API model shares: the base classes, the wire spelling, CEL rules, names and times.

Purely declarative: no I/O.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

GROUP = "kubetune.io"
VERSION = "v1alpha1"
API_VERSION: Literal["kubetune.io/v1alpha1"] = "kubetune.io/v1alpha1"

#: Label put on every Trial (and its Job and pods) naming the Experiment it belongs to.
EXPERIMENT_LABEL = f"{GROUP}/experiment"
#: Label put on every Job and pod naming its Trial.
TRIAL_LABEL = f"{GROUP}/trial"
#: On a trial's Job: the attempt it runs (0 first, then one more per retry after a disruption).
ATTEMPT_ANNOTATION = "kubetune.io/attempt"
#: On a trial's pods: the same attempt (a JobSet's or PyTorchJob's pods belong to its child objects).
ATTEMPT_LABEL = ATTEMPT_ANNOTATION

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
#: Kubernetes object names (DNS-1123 label: no dots, so ``<name>-<index>`` is a valid Job and label value).
OBJECT_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
METRIC_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.\-/]*$"

#: Trial names are ``<experiment>-<index>`` and must stay valid Job and label values (63 characters).
MAX_EXPERIMENT_NAME = 52

ParamValue = float | int | str
Params = dict[str, ParamValue]

PRESERVE_UNKNOWN: dict[str, Any] = {"x-kubernetes-preserve-unknown-fields": True}


def cel(*rules: tuple[str, str]) -> dict[str, Any]:
    """JSON-schema extra carrying CEL rules as (rule, message) pairs."""
    return {"x-kubernetes-validations": [{"rule": rule, "message": message} for rule, message in rules]}


class Model(BaseModel):
    """Base of every API model: camelCase aliases, unknown fields forbidden, strict types.

    Strict, as the API server is: ``maxTrials: "2"`` or ``suspend: "yes"`` is an error, never
    coerced. Enums take their string values (the models read YAML and JSON, not Python enums).
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        extra="forbid",
        use_enum_values=False,
        strict=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict as the API server and the YAML files spell it."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class OpenModel(Model):
    """A model that keeps fields it does not know (parts of Kubernetes' own types)."""

    model_config = ConfigDict(extra="allow", json_schema_extra=PRESERVE_UNKNOWN)


def validation_problems(err: ValidationError) -> list[str]:
    """pydantic's errors as ``field.path: message``, with the path spelled as the YAML spells it.

    e.g. ``spec.parameters[1].max: must be greater than min (1)``. A boolean where text was wanted
    gets a hint: YAML reads an unquoted ``y``, ``no`` or ``on`` as a boolean.
    """
    lines = []
    for problem in err.errors():
        path = ""
        for part in problem["loc"]:
            if isinstance(part, int):
                path += f"[{part}]"
            elif part in _UNION_BRANCHES:
                continue  # pydantic names the branch of a union it tried; the YAML has no such key
            else:
                path += f".{part}" if path else str(part)
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "string_type" and isinstance(problem.get("input"), bool):
            message += " (YAML reads an unquoted y, n, yes, no, on, off, true or false as a boolean: quote it)"
        line = f"{path}: {message}" if path else message
        if line not in lines:
            lines.append(line)
    return lines


_UNION_BRANCHES = frozenset({"float", "int", "str", "bool"})


def trial_name(experiment: str, index: int) -> str:
    """The deterministic name of an experiment's ``index``-th trial."""
    return f"{experiment}-{index}"


def now_rfc3339(clock: dt.datetime | None = None) -> str:
    """A timestamp as Kubernetes writes it (UTC, seconds, ``Z``)."""
    moment = clock or dt.datetime.now(dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(value: str | None) -> dt.datetime | None:
    """A Kubernetes timestamp (``Z`` or an offset, with or without fractions) as an aware datetime."""
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def seconds_between(start: str | None, end: str | None) -> float | None:
    """``end - start`` in seconds, or None when either is missing."""
    a, b = parse_rfc3339(start), parse_rfc3339(end)
    if a is None or b is None:
        return None
    return max(0.0, (b - a).total_seconds())
