"""The search space: parameter assignments ↔ points of the unit hypercube.

The only place that scales. Purely computational: no I/O.

Two representations, both in [0, 1]:

* **unit** — one coordinate per parameter, shape ``(n, d)`` with ``d = len(parameters)``. A
  categorical with ``k`` values owns the coordinate's ``k`` equal slices; an int owns ``max-min+1``
  equal slices (of log space when ``scale: log``). Random, Sobol and grid designs live here.
* **features** — what surrogate models see, shape ``(n, D)``: numeric parameters keep their unit
  coordinate, a categorical becomes ``k`` one-hot columns (``D = sum of k`` plus numerics), so no
  false order is imposed on its values. :meth:`Space.decode` snaps any feature vector back to a
  valid assignment (ints rounded, categoricals by arg-max).

Doubles are kept to :data:`SIGNIFICANT_DIGITS` significant digits so that an assignment reads well
in ``kubectl get`` and survives every round trip (JSON, env vars) unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import product

import numpy as np
import numpy.typing as npt

from kubetune.api import (
    SIGNIFICANT_DIGITS,
    Parameter,
    ParameterType,
    Params,
    ParamValue,
    Scale,
    active_parameters,
    round_significant,
)

FloatArray = npt.NDArray[np.float64]

__all__ = ["SIGNIFICANT_DIGITS", "Dimension", "FloatArray", "Space", "SpaceError", "round_significant"]


class SpaceError(ValueError):
    """An assignment that does not belong to the space."""


def _lerp(lo: float, hi: float, u: npt.ArrayLike) -> FloatArray:
    """``lo + u (hi - lo)``, also where ``hi - lo`` overflows a double (then halves are scaled)."""
    u = np.asarray(u, dtype=float)
    if math.isfinite(hi - lo):
        return np.asarray(lo + u * (hi - lo), dtype=float)
    return np.asarray(2.0 * (lo / 2 + u * (hi / 2 - lo / 2)), dtype=float)


def _unlerp(lo: float, hi: float, z: npt.ArrayLike) -> FloatArray:
    """The inverse of :func:`_lerp`: where ``z`` lies in [lo, hi], as a fraction."""
    z = np.asarray(z, dtype=float)
    if math.isfinite(hi - lo):
        return np.asarray((z - lo) / (hi - lo), dtype=float)
    return np.asarray((z / 2 - lo / 2) / (hi / 2 - lo / 2), dtype=float)


@dataclass(frozen=True)
class Dimension:
    """One parameter with its scaling to and from [0, 1]."""

    parameter: Parameter

    @property
    def name(self) -> str:
        return self.parameter.name

    @property
    def is_categorical(self) -> bool:
        return self.parameter.type is ParameterType.CATEGORICAL

    @property
    def is_int(self) -> bool:
        return self.parameter.type is ParameterType.INT

    @property
    def choices(self) -> list[str]:
        return list(self.parameter.values or [])

    @property
    def n_features(self) -> int:
        return len(self.choices) if self.is_categorical else 1

    def _continuous_bounds(self) -> tuple[float, float]:
        """Bounds of the continuous variable the unit coordinate scales to (ints get ±0.5)."""
        lo, hi = float(self.parameter.min or 0.0), float(self.parameter.max or 0.0)
        if self.is_int:
            lo, hi = lo - 0.5, hi + 0.5
        if self.parameter.scale is Scale.LOG:
            return math.log(lo), math.log(hi)
        return lo, hi

    def from_unit(self, u: float) -> ParamValue:
        u = min(max(float(u), 0.0), 1.0)
        if self.is_categorical:
            choices = self.choices
            return choices[min(int(u * len(choices)), len(choices) - 1)]
        lo, hi = self._continuous_bounds()
        z = float(_lerp(lo, hi, u))
        if self.parameter.scale is Scale.LOG:
            z = math.exp(z)
        if self.is_int:
            return int(min(max(round(z), self.parameter.min or 0), self.parameter.max or 0))
        return round_significant(min(max(z, float(self.parameter.min or 0)), float(self.parameter.max or 0)))

    def to_unit(self, value: ParamValue) -> float:
        if self.is_categorical:
            choices = self.choices
            return (choices.index(str(value)) + 0.5) / len(choices)
        lo, hi = self._continuous_bounds()
        z = float(value)
        if self.parameter.scale is Scale.LOG:
            z = math.log(z)
        return min(max(float(_unlerp(lo, hi, z)), 0.0), 1.0)

    def from_unit_column(self, u: FloatArray) -> list[ParamValue]:
        """:meth:`from_unit` of every entry of a 1-d array, computed a column at a time."""
        u = np.clip(np.asarray(u, dtype=float), 0.0, 1.0)
        if self.is_categorical:
            choices = self.choices
            indexes = np.minimum((u * len(choices)).astype(int), len(choices) - 1)
            return [choices[i] for i in indexes.tolist()]
        lo, hi = self._continuous_bounds()
        z = _lerp(lo, hi, u)
        if self.parameter.scale is Scale.LOG:
            z = np.exp(z)
        low, high = float(self.parameter.min or 0), float(self.parameter.max or 0)
        if self.is_int:
            return [int(v) for v in np.clip(np.round(z), low, high).tolist()]
        return [round_significant(v) for v in np.clip(z, low, high).tolist()]

    def to_unit_column(self, values: Sequence[ParamValue]) -> FloatArray:
        """:meth:`to_unit` of a sequence of values, as a 1-d array."""
        if self.is_categorical:
            position = {c: i for i, c in enumerate(self.choices)}
            return (np.array([position[str(v)] for v in values], dtype=float) + 0.5) / len(position)
        lo, hi = self._continuous_bounds()
        z = np.array(values, dtype=float)
        if self.parameter.scale is Scale.LOG:
            z = np.log(z)
        return np.asarray(np.clip(_unlerp(lo, hi, z), 0.0, 1.0), dtype=float)

    def validate(self, value: object) -> ParamValue:
        """Coerce a value read back from JSON (where 1.0 may come back as 1) or raise SpaceError."""
        p = self.parameter
        if self.is_categorical:
            if not isinstance(value, str) or value not in self.choices:
                raise SpaceError(f"{p.name}: {value!r} is not one of {self.choices}")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SpaceError(f"{p.name}: {value!r} is not a number")
        if not math.isfinite(value):
            raise SpaceError(f"{p.name}: {value!r} is not finite")
        lo, hi = float(p.min or 0.0), float(p.max or 0.0)
        tolerance = 1e-9 * max(1.0, abs(lo), abs(hi))
        if not lo - tolerance <= value <= hi + tolerance:
            raise SpaceError(f"{p.name}: {value!r} is outside [{lo:g}, {hi:g}]")
        if self.is_int:
            if float(value) != int(value):
                raise SpaceError(f"{p.name}: {value!r} is not a whole number")
            return int(value)
        return float(value)

    def default(self) -> ParamValue:
        """The value an inactive parameter gets where a full vector is needed: the first choice of a
        categorical, the middle of a number's range (in its scale)."""
        return self.choices[0] if self.is_categorical else self.from_unit(0.5)

    def grid_values(self, points: int) -> list[ParamValue]:
        """Up to ``points`` values spread evenly over the unit coordinate (all values of small ints)."""
        if self.is_categorical:
            return list(self.choices)
        if self.is_int:
            span = int(self.parameter.max or 0) - int(self.parameter.min or 0) + 1
            if span <= points:
                return list(range(int(self.parameter.min or 0), int(self.parameter.max or 0) + 1))
        if points == 1:
            return [self.from_unit(0.5)]
        values: list[ParamValue] = []
        for i in range(points):
            v = self.from_unit(i / (points - 1))
            if v not in values:
                values.append(v)
        return values


class Space:
    """An ordered set of dimensions; see the module docstring for the two representations."""

    def __init__(self, parameters: Sequence[Parameter]) -> None:
        self.dimensions = tuple(Dimension(p) for p in parameters)
        self.names = tuple(d.name for d in self.dimensions)
        slices, start = [], 0
        for d in self.dimensions:
            slices.append(slice(start, start + d.n_features))
            start += d.n_features
        self.feature_slices: tuple[slice, ...] = tuple(slices)
        self.n_features = start

    @property
    def dim(self) -> int:
        return len(self.dimensions)

    @property
    def has_categorical(self) -> bool:
        return any(d.is_categorical for d in self.dimensions)

    # --- unit representation
    def from_unit(self, u: FloatArray) -> list[Params]:
        """``(n, d)`` points of the unit cube → ``n`` assignments."""
        u = np.atleast_2d(np.asarray(u, dtype=float))
        if u.shape[1] != self.dim:
            raise ValueError(f"expected {self.dim} columns, got {u.shape[1]}")
        columns = [d.from_unit_column(u[:, j]) for j, d in enumerate(self.dimensions)]
        return [dict(zip(self.names, row, strict=True)) for row in zip(*columns, strict=True)]

    def to_unit(self, assignments: Sequence[Params]) -> FloatArray:
        """``n`` assignments → ``(n, d)`` points of the unit cube."""
        out = np.empty((len(assignments), self.dim))
        for j, d in enumerate(self.dimensions):
            out[:, j] = d.to_unit_column([params[d.name] for params in assignments])
        return out

    # --- feature representation
    def encode(self, assignments: Sequence[Params]) -> FloatArray:
        """``n`` assignments → ``(n, D)`` features (one-hot categoricals)."""
        out = np.zeros((len(assignments), self.n_features))
        rows = np.arange(len(assignments))
        for d, cols in zip(self.dimensions, self.feature_slices, strict=True):
            values = [params[d.name] for params in assignments]
            if d.is_categorical:
                position = {c: i for i, c in enumerate(d.choices)}
                out[rows, cols.start + np.array([position[str(v)] for v in values], dtype=int)] = 1.0
            else:
                out[:, cols.start] = d.to_unit_column(values)
        return out

    def decode(self, features: FloatArray) -> list[Params]:
        """``(n, D)`` features → ``n`` valid assignments (ints rounded, categoricals by arg-max)."""
        features = np.atleast_2d(np.asarray(features, dtype=float))
        columns: list[list[ParamValue]] = []
        for d, cols in zip(self.dimensions, self.feature_slices, strict=True):
            if d.is_categorical:
                choices = d.choices
                columns.append([choices[i] for i in np.argmax(features[:, cols], axis=1).tolist()])
            else:
                columns.append(d.from_unit_column(features[:, cols.start]))
        return [dict(zip(self.names, row, strict=True)) for row in zip(*columns, strict=True)]

    def snap(self, features: FloatArray) -> FloatArray:
        """Features of the valid assignments nearest to ``features``, shape kept."""
        return self.encode(self.decode(features))

    # --- conditional parameters (``when``)
    @property
    def conditional(self) -> bool:
        return any(d.parameter.when for d in self.dimensions)

    def active(self, params: Mapping[str, object]) -> set[str]:
        """The parameters active for ``params``: those without ``when``, and those whose every
        condition names an active categorical parameter holding one of the listed values."""
        return active_parameters([d.parameter for d in self.dimensions], params)

    def project(self, params: Mapping[str, ParamValue]) -> Params:
        """``params`` without its inactive parameters: what a trial is given."""
        if not self.conditional:
            return dict(params)
        on = self.active(params)
        return {n: params[n] for n in self.names if n in on and n in params}

    def is_complete(self, params: Mapping[str, object]) -> bool:
        """Every parameter active for ``params`` has a value."""
        return all(n in params for n in (self.active(params) if self.conditional else self.names))

    # --- validation and identity
    def validate(self, params: Mapping[str, object]) -> Params:
        """Check and coerce one assignment; raise SpaceError naming the parameter that is wrong.

        In a conditional space an inactive parameter may be missing: it is filled with its
        :meth:`Dimension.default`, so that models see a full vector (the filled value carries no
        information: every assignment with the parameter inactive has the same one).
        """
        extra = sorted(set(params) - set(self.names))
        if extra:
            raise SpaceError(f"unknown parameter(s): {', '.join(extra)}")
        on = self.active(params) if self.conditional else set(self.names)
        missing = [n for n in self.names if n not in params and n in on]
        if missing:
            raise SpaceError(f"missing parameter(s): {', '.join(missing)}")
        return {d.name: d.validate(params[d.name]) if d.name in params and d.name in on else d.default()
                for d in self.dimensions}

    def key(self, params: Mapping[str, ParamValue]) -> tuple[ParamValue | None, ...]:
        """A hashable identity of an assignment, for spotting repeats (inactive parameters do not count)."""
        if not self.conditional:
            return tuple(params[n] for n in self.names)
        on = self.active(params)
        return tuple(params.get(n) if n in on else None for n in self.names)

    def grid(self, points_per_dimension: int) -> Iterator[Params]:
        """The full grid, in a fixed order (last parameter varies fastest)."""
        axes = [d.grid_values(points_per_dimension) for d in self.dimensions]
        for combo in product(*axes):
            yield dict(zip(self.names, combo, strict=True))

    def grid_size(self, points_per_dimension: int) -> int:
        return math.prod(len(d.grid_values(points_per_dimension)) for d in self.dimensions)
