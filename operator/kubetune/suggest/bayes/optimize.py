"""Maximizing an acquisition function over a mixed space (doubles, ints, categoricals).

No I/O, nothing of experiments: it sees the :class:`~kubetune.space.Space` only to turn points
into valid assignments (``space.snap``), the one place where scaling happens.

1. **Candidates**: scrambled Sobol' points of the unit cube plus perturbations of the best
   observed points (a few coordinates moved, at four step sizes), all snapped to valid
   assignments; the acquisition is scored on all of them at once.
2. **Polish**: the best few candidates start one joint L-BFGS-B run over the continuous feature
   columns (doubles, and ints relaxed); categorical one-hot columns stay fixed. Results are
   snapped again and re-scored at the snapped (true) point.
3. **Discrete moves**: from the best point, every other value of each categorical and ±1 of each
   int is tried (exact enumeration, one coordinate at a time), while it improves.

The best point never equals an excluded assignment (observed, pending or already chosen).

Shapes: m candidates, D features, d unit coordinates, p polish starts.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.optimize
from scipy.stats import qmc

from kubetune.api import Params
from kubetune.space import FloatArray, Space
from kubetune.suggest.bayes.acquisition import Acquisition
from kubetune.suggest.bayes.gp import GaussianProcess

N_SOBOL = 1024
N_LOCAL_PER_ANCHOR = 64
N_POLISH = 4
POLISH_ITERATIONS = 60
#: Above this many model points a polish step costs O(n²): fewer starts and iterations.
LARGE_MODEL = 300
#: Step sizes (standard deviations in unit space) of the local perturbations; the smallest lets the
#: search refine an incumbent to ~1/200 of a parameter's range.
LOCAL_STEPS = (0.005, 0.02, 0.08, 0.25)


@dataclass(frozen=True)
class Point:
    features: FloatArray  # (D,)
    params: Params
    value: float


def candidate_unit_points(space: Space, rng: np.random.Generator, anchors: FloatArray) -> FloatArray:
    """(m, d) unit points: Sobol' plus perturbations of each anchor row of ``anchors`` (k, d)."""
    dim = space.dim
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sobol = qmc.Sobol(d=dim, scramble=True, rng=rng).random(N_SOBOL)
    blocks = [np.asarray(sobol, dtype=float)]
    for anchor in anchors:
        blocks.append(local_moves(anchor, LOCAL_STEPS, N_LOCAL_PER_ANCHOR, rng))
    return np.vstack(blocks)


def local_moves(anchor: FloatArray, steps: tuple[float, ...], count: int, rng: np.random.Generator) -> FloatArray:
    """(count, d) unit points near ``anchor`` (d,): Gaussian steps of a size drawn from ``steps``.

    About min(1, 5/d) of the coordinates move, at least one (cf. TuRBO's and BoTorch's "prune" of
    high-dimensional moves): local moves stay local in every dimension count.
    """
    dim = len(anchor)
    scale = np.array(steps)[rng.integers(len(steps), size=count)]
    moved = rng.random((count, dim)) < min(1.0, 5.0 / dim)
    moved[np.arange(count), rng.integers(dim, size=count)] = True
    noise = rng.normal(size=(count, dim)) * scale[:, None]
    return np.clip(anchor + np.where(moved, noise, 0.0), 0.0, 1.0)


class MixedSpaceOptimizer:
    """Maximizes acquisitions over one snapped candidate set, shared by every call of a batch."""

    def __init__(
        self,
        space: Space,
        candidate_params: Sequence[Params],
        excluded: set[Hashable],
    ) -> None:
        self.space = space
        self.candidate_params = list(candidate_params)
        self.candidates = space.encode(self.candidate_params)
        self.excluded = excluded
        self._candidate_keys = [space.key(p) for p in self.candidate_params]
        cols = [
            s.start for d, s in zip(space.dimensions, space.feature_slices, strict=True) if not d.is_categorical
        ]
        self.continuous_cols = np.array(cols, dtype=int)

    def exclude(self, params: Params) -> None:
        self.excluded.add(self.space.key(params))

    def maximize(self, acq: Acquisition, scores: FloatArray, gp: GaussianProcess) -> Point | None:
        """The best non-excluded point for ``acq``; ``scores`` (m,) are its values at the candidates."""
        allowed = np.array([k not in self.excluded for k in self._candidate_keys])
        masked = np.where(allowed & np.isfinite(scores), scores, -np.inf)
        order = np.argsort(-masked, kind="stable")
        n_starts = N_POLISH if gp.n <= LARGE_MODEL else 2
        top = [int(i) for i in order[:n_starts] if np.isfinite(masked[i])]
        best: Point | None = None
        if top:
            i = top[0]
            best = Point(self.candidates[i], self.candidate_params[i], float(masked[i]))
        for point in self._polish(acq, gp, top):
            best = _better(best, point)
        if best is None:
            return None
        return self._discrete_moves(acq, gp, best)

    def _evaluate(self, acq: Acquisition, gp: GaussianProcess, params: list[Params]) -> list[Point]:
        """Snapped points for ``params`` with their acquisition values; excluded ones dropped."""
        params = [p for p in params if self.space.key(p) not in self.excluded]
        if not params:
            return []
        features = self.space.encode(params)
        values = acq(gp, features)
        return [
            Point(f, p, float(v)) for f, p, v in zip(features, params, values, strict=True) if np.isfinite(v)
        ]

    def _polish(self, acq: Acquisition, gp: GaussianProcess, starts: list[int]) -> list[Point]:
        cols = self.continuous_cols
        if not starts or cols.size == 0:
            return []
        base = self.candidates[starts].copy()
        p = len(starts)

        def objective(z: FloatArray) -> tuple[float, FloatArray]:
            x = base.copy()
            x[:, cols] = z.reshape(p, cols.size)
            values, grads = acq.value_and_grad(gp, x)
            if not (np.all(np.isfinite(values)) and np.all(np.isfinite(grads))):
                return 1e10, np.zeros_like(z)
            return -float(np.sum(values)), -grads[:, cols].ravel()

        z0 = base[:, cols].ravel()
        result = scipy.optimize.minimize(
            objective,
            z0,
            jac=True,
            method="L-BFGS-B",
            bounds=[(0.0, 1.0)] * z0.size,
            options={"maxiter": POLISH_ITERATIONS if gp.n <= LARGE_MODEL else POLISH_ITERATIONS // 3},
        )
        polished = base.copy()
        polished[:, cols] = np.clip(np.asarray(result.x).reshape(p, cols.size), 0.0, 1.0)
        return self._evaluate(acq, gp, self.space.decode(polished))

    def _discrete_moves(self, acq: Acquisition, gp: GaussianProcess, start: Point) -> Point:
        best = start
        for _ in range(3):
            neighbours = list(_discrete_neighbours(self.space, best.params))
            improved = False
            for point in self._evaluate(acq, gp, neighbours):
                if point.value > best.value + 1e-12:
                    best, improved = point, True
            if not improved:
                break
        return best


def _discrete_neighbours(space: Space, params: Params) -> list[Params]:
    """Assignments differing from ``params`` in one categorical value or one int step."""
    out: list[Params] = []
    for d in space.dimensions:
        if d.is_categorical:
            out.extend({**params, d.name: c} for c in d.choices if c != params[d.name])
        elif d.is_int:
            value = int(params[d.name])
            lo, hi = int(d.parameter.min or 0), int(d.parameter.max or 0)
            out.extend({**params, d.name: v} for v in (value - 1, value + 1) if lo <= v <= hi)
    return out


def _better(a: Point | None, b: Point | None) -> Point | None:
    if a is None:
        return b
    if b is None:
        return a
    return b if b.value > a.value else a
