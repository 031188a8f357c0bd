"""Search-space parameters: ``Parameter`` (double, int, categorical; linear or log; conditional on
another parameter through ``when``) and the helpers the rest of the spec shares.

Purely declarative: no I/O. As in :mod:`kubetune.api.spec`, every rule checked here by a validator
is also a CEL rule in the JSON schema.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Self

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from kubetune.api.base import NAME_PATTERN, Model, cel

#: Doubles are kept to this many significant digits (``kubetune.space``): a range narrower than
#: that has one value only.
SIGNIFICANT_DIGITS = 8


def finite_or_none(value: float | None) -> float | None:
    """A field validator's check: None, or a finite number (JSON has no NaN or infinity)."""
    if value is not None and not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value}")
    return value


def round_significant(value: float) -> float:
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


class ParameterType(StrEnum):
    DOUBLE = "double"
    INT = "int"
    CATEGORICAL = "categorical"


class Scale(StrEnum):
    LINEAR = "linear"
    LOG = "log"


def active_parameters(parameters: list[Parameter], params: Mapping[str, object]) -> set[str]:
    """The names of ``parameters`` active for the assignment ``params`` (see ``Parameter.when``):
    one without ``when`` always; one with it when every named parameter is active and holds one of
    the listed values. A cycle (refused by validation) leaves its parameters inactive."""
    active: set[str] = set()
    changed = True
    while changed:
        changed = False
        for p in parameters:
            if p.name in active:
                continue
            if all(name in active and str(params.get(name)) in values for name, values in (p.when or {}).items()):
                active.add(p.name)
                changed = True
    return active


class Parameter(Model):
    """One dimension of the search space."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            ("self.type == 'categorical' || (has(self.min) && has(self.max))",
             "double and int parameters need both min and max"),
            ("!has(self.min) || !has(self.max) || self.min < self.max", "max must be greater than min"),
            ("!has(self.min) || !has(self.max) || self.max - self.min <= 1.7976931348623157e308",
             "max - min must be a finite number (this range overflows a double)"),
            ("self.type != 'categorical' || (has(self.values) && size(self.values) > 0)",
             "categorical parameters need at least one value"),
            ("self.type == 'categorical' || !has(self.values)", "values is only for categorical parameters"),
            ("self.type != 'categorical' || (!has(self.min) && !has(self.max))",
             "categorical parameters take values, not min and max"),
            ("!has(self.scale) || self.scale != 'log' || (has(self.min) && self.min > 0.0)",
             "log scale needs min > 0"),
            ("!has(self.scale) || self.scale != 'log' || self.type != 'categorical'",
             "log scale is only for double and int parameters"),
            ("self.type != 'int' || ((!has(self.min) || self.min == double(int(self.min))) && "
             "(!has(self.max) || self.max == double(int(self.max))))",
             "int parameters need whole-number min and max"),
        )
    )

    name: str = Field(pattern=NAME_PATTERN, max_length=63, description="Parameter name; also the env var suffix.")
    type: ParameterType = Field(strict=False, description="double, int or categorical.")
    min: float | None = Field(default=None, description="Lower bound (double and int).")
    max: float | None = Field(default=None, description="Upper bound, inclusive (double and int).")
    values: Annotated[list[Annotated[str, Field(max_length=253)]], Field(max_length=1000)] | None = Field(
        default=None,
        description="The choices of a categorical parameter.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    scale: Scale = Field(default=Scale.LINEAR, strict=False, description="linear or log (log needs min > 0).")
    when: Annotated[dict[str, Annotated[list[Annotated[str, Field(max_length=253)]],
                                        Field(min_length=1, max_length=1000)]],
                    Field(min_length=1, max_length=4)] | None = Field(
        default=None,
        description="Active only when each named categorical parameter takes one of the listed values (and is "
                    "active itself); an inactive parameter is absent from the trial's params and env vars.",
    )

    # Field validators name the offending field in the error path (spec.parameters[1].max).
    @field_validator("min", "max")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        return finite_or_none(value)

    @field_validator("max")
    @classmethod
    def _max_above_min(cls, value: float | None, info: ValidationInfo) -> float | None:
        low = info.data.get("min")
        if value is None or low is None:
            return value
        if value <= low:
            raise ValueError(f"must be greater than min ({low:g})")
        if not math.isfinite(value - low):
            raise ValueError(f"max - min must be a finite number (the range [{low:g}, {value:g}] overflows a double)")
        return value

    @field_validator("scale")
    @classmethod
    def _log_needs_positive_min(cls, value: Scale, info: ValidationInfo) -> Scale:
        low = info.data.get("min")
        if value is Scale.LOG and low is not None and low <= 0:
            raise ValueError(f"log scale needs min > 0 (min is {low:g})")
        return value

    def value_problem(self, value: object) -> str | None:
        """What is wrong with ``value`` as this parameter's value (None: nothing), as CEL checks it."""
        if self.type is ParameterType.CATEGORICAL:
            if not isinstance(value, str) or value not in (self.values or []):
                return f"{value!r} is not one of {self.values}"
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return f"{value!r} is not a number"
        if not float(self.min or 0.0) <= value <= float(self.max or 0.0):
            return f"{value!r} is outside [{self.min:g}, {self.max:g}]"
        if self.type is ParameterType.INT and value != int(value):
            return f"{value!r} is not a whole number"
        return None

    @model_validator(mode="after")
    def _check_bounds(self) -> Self:
        if self.type is ParameterType.CATEGORICAL:
            if self.min is not None or self.max is not None:
                raise ValueError("categorical parameters take values, not min and max")
            if not self.values:
                raise ValueError("categorical parameters need at least one value")
            if len(set(self.values)) != len(self.values):
                raise ValueError("categorical values must be unique")
            if self.scale is Scale.LOG:
                raise ValueError("log scale is only for double and int parameters")
            return self
        if self.values is not None:
            raise ValueError("values is only for categorical parameters")
        if self.min is None or self.max is None:
            raise ValueError("double and int parameters need both min and max")
        if self.min >= self.max:
            raise ValueError("max must be greater than min")
        if self.scale is Scale.LOG and self.min <= 0:
            raise ValueError("log scale needs min > 0")
        if self.type is ParameterType.INT and (self.min != int(self.min) or self.max != int(self.max)):
            raise ValueError("int parameters need whole-number min and max")
        if self.type is ParameterType.DOUBLE and round_significant(self.min) >= round_significant(self.max):
            raise ValueError(f"min and max must differ within {SIGNIFICANT_DIGITS} significant digits "
                             f"(values are kept to {SIGNIFICANT_DIGITS}; [{self.min!r}, {self.max!r}] holds one)")
        return self
