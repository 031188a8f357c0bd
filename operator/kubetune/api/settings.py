"""The settings each algorithm takes: one table, read by validation, the CRD's CEL rules and the suggesters.

Purely declarative: no I/O. ``spec.algorithm.settings`` is a flat map of scalars; which keys an
algorithm accepts, of which type and range, is written here once. :func:`settings_problems`
checks a map against it (``kubetune validate`` and the operator), :func:`settings_cel_rules`
turns the same table into ``x-kubernetes-validations`` rules (``kubectl apply``), and the
suggesters read their defaults from it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

SettingValue = bool | int | float | str


@dataclass(frozen=True)
class Setting:
    """One setting: its type, an inclusive or exclusive range, or a set of allowed strings."""

    name: str
    type: type
    #: None: the suggester computes it (e.g. from the number of parameters)
    default: SettingValue | None
    description: str
    minimum: float | None = None
    maximum: float | None = None
    exclusive: bool = False
    choices: tuple[str, ...] = ()

    def problem(self, value: object) -> str | None:
        """Why ``value`` is not valid for this setting, or None."""
        if self.type is int:
            if isinstance(value, bool) or not isinstance(value, int):
                return f"must be an integer, got {value!r}"
        elif self.type is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                return f"must be a number, got {value!r}"
            if not math.isfinite(value):
                return f"must be finite, got {value!r}"
        elif self.type is str:
            if not isinstance(value, str):
                return f"must be a string, got {value!r}"
            if self.choices and value not in self.choices:
                return f"must be one of {', '.join(self.choices)}, got {value!r}"
            return None
        number = float(value)  # type: ignore[arg-type]
        low, high = self.minimum, self.maximum
        if self.exclusive:
            if (low is not None and number <= low) or (high is not None and number >= high):
                return f"must be in ({_g(low)}, {_g(high)}), got {value!r}"
        elif low is not None and number < low:
            return f"must be ≥ {_g(low)}, got {value!r}"
        elif high is not None and number > high:
            return f"must be ≤ {_g(high)}, got {value!r}"
        return None

    def openapi(self) -> dict[str, object]:
        """This setting's OpenAPI v3 schema, as the CRD spells it."""
        schema: dict[str, object] = {"type": {int: "integer", float: "number", str: "string"}[self.type],
                                     "description": self.description}
        if self.choices:
            schema["enum"] = list(self.choices)
        if self.minimum is not None:
            schema["minimum"] = self.minimum if self.type is float else int(self.minimum)
            if self.exclusive:
                schema["exclusiveMinimum"] = True
        if self.maximum is not None:
            schema["maximum"] = self.maximum if self.type is float else int(self.maximum)
            if self.exclusive:
                schema["exclusiveMaximum"] = True
        return schema

    def rule_text(self) -> str:
        """The rule in words, for messages: ``gridPoints (an integer ≥ 1)``."""
        if self.type is str:
            return f"{self.name} (one of {', '.join(self.choices)})" if self.choices else f"{self.name} (a string)"
        kind = "an integer" if self.type is int else "a number"
        if self.exclusive:
            return f"{self.name} ({kind} in ({_g(self.minimum)}, {_g(self.maximum)}))"
        parts = [f"≥ {_g(self.minimum)}"] if self.minimum is not None else []
        parts += [f"≤ {_g(self.maximum)}"] if self.maximum is not None else []
        return f"{self.name} ({kind}{' ' + ' and '.join(parts) if parts else ''})"


def _g(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _cel_number(value: float) -> str:
    return repr(float(value))


BAYES_ACQUISITIONS = ("hedge", "logei", "ucb", "pi")
INITIAL_TRIALS = "Sobol' points before the model takes over (bayes: max(5, 2·d) by default; tpe: 10)"

#: algorithm name → its settings. An algorithm absent from here takes no settings.
ALGORITHM_SETTINGS: dict[str, tuple[Setting, ...]] = {
    "bayes": (
        Setting("initialTrials", int, None, INITIAL_TRIALS,
                minimum=1, maximum=100_000),
        Setting("acquisition", str, "hedge", "acquisition function: GP-Hedge over the three, or one of them",
                choices=BAYES_ACQUISITIONS),
        Setting("maxModelPoints", int, 1000, "observations the GP conditions on (the best and a random rest)",
                minimum=20, maximum=100_000),
        Setting("multiObjective", str, "mixed", "several objectives: expected hypervolume improvement (ehvi), "
                "random scalarizations (parego), or the two by turns, trial by trial (mixed)",
                choices=("mixed", "ehvi", "parego")),
    ),
    "tpe": (
        Setting("initialTrials", int, 10, INITIAL_TRIALS, minimum=1, maximum=100_000),
        Setting("gamma", float, 0.1, "share of the observations in the good group", minimum=0.0, maximum=1.0,
                exclusive=True),
        Setting("candidates", int, 24, "candidates drawn from the good density per suggestion",
                minimum=1, maximum=100_000),
    ),
    "grid": (
        Setting("gridPoints", int, 5, "values per numeric parameter", minimum=1, maximum=1000),
    ),
    "random": (),
    "sobol": (),
}


def settings_of(algorithm: str) -> dict[str, Setting]:
    return {s.name: s for s in ALGORITHM_SETTINGS.get(algorithm, ())}


def setting(algorithm: str, settings: Mapping[str, SettingValue], name: str) -> SettingValue | None:
    """The value of setting ``name``: the one given, else its default (None: the suggester's to compute)."""
    return settings.get(name, settings_of(algorithm)[name].default)


def settings_problems(algorithm: str, settings: Mapping[str, object]) -> list[tuple[str, str]]:
    """(setting name, problem) for every unknown or invalid setting of ``algorithm``."""
    known = settings_of(algorithm)
    problems: list[tuple[str, str]] = []
    for key, value in settings.items():
        spec = known.get(key)
        if spec is None:
            allowed = ", ".join(known) or "none"
            problems.append((key, f"algorithm {algorithm!r} has no setting {key!r} (its settings: {allowed})"))
            continue
        problem = spec.problem(value)
        if problem is not None:
            problems.append((key, f"{algorithm} setting {key!r} {problem}"))
    return problems


def _by_name() -> dict[str, tuple[Setting, list[str]]]:
    """setting name → (its definition, the algorithms that take it); a name means the same everywhere."""
    found: dict[str, tuple[Setting, list[str]]] = {}
    for algorithm, specs in ALGORITHM_SETTINGS.items():
        for spec in specs:
            if spec.name in found:
                known, users = found[spec.name]
                same = (known.type, known.minimum, known.maximum, known.exclusive, known.choices) == (
                    spec.type, spec.minimum, spec.maximum, spec.exclusive, spec.choices)
                if not same:
                    raise AssertionError(f"setting {spec.name} differs between {users[0]} and {algorithm}")
                users.append(algorithm)
            else:
                found[spec.name] = (spec, [algorithm])
    return found


def settings_schema() -> dict[str, object]:
    """The CRD schema of ``spec.algorithm.settings``: one typed property per known setting.

    Typed properties (not a free map) let the API server check each value's type and range, and
    ``kubectl apply`` refuses an unknown setting as an unknown field; which algorithm takes which
    setting is :func:`settings_cel_rules`' to check.
    """
    return {"type": "object", "properties": {name: spec.openapi() for name, (spec, _) in _by_name().items()}}


def settings_cel_rules() -> list[tuple[str, str]]:
    """(rule, message) pairs over ``spec.algorithm``: each setting only with an algorithm that takes it."""
    rules: list[tuple[str, str]] = []
    for name, (_, users) in _by_name().items():
        allowed = "[" + ", ".join(f"'{u}'" for u in users) + "]"
        rules.append((f"!has(self.settings) || !has(self.settings.{name}) || self.name in {allowed}",
                      f"setting {name} is only for algorithm {' or '.join(users)}"))
    return rules
