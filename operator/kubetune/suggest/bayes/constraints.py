"""Metric constraints in ``bayes``: one GP per constrained metric, and the probability of feasibility.

Gardner et al., *Bayesian Optimization with Inequality Constraints* (ICML 2014): each constrained
metric ``c_k`` gets its own GP on the trials that reported it; a candidate's probability of
keeping ``lo_k ≤ c_k(x) ≤ hi_k`` is ``Φ((hi_k − μ_k)/σ_k) · Φ((μ_k − lo_k)/σ_k)`` (one side when
the other is unbounded), the constraints taken as independent. :class:`Constrained` adds its log
to a log acquisition (log EI × P(feasible), the constrained EI; for UCB a penalty in the same
standardized units), with the gradient the optimizer needs. The incumbent of EI and PI is the best
*feasible* observation; with none yet, the acquisition is the probability of feasibility alone,
so the search looks for the feasible region first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.special

from kubetune.space import FloatArray
from kubetune.suggest.bayes.acquisition import Acquisition, Moments
from kubetune.suggest.bayes.gp import GaussianProcess, Hyperparameters, fit_hyperparameters
from kubetune.suggest.bayes.transform import standardize

#: A constraint model needs this many observed values; with fewer, the constraint is not modelled
#: (its probability is 1): a GP on one or two points says nothing.
MIN_CONSTRAINT_POINTS = 3


class ConstraintModels:
    """The fitted constraint GPs, in standardized units, with their standardized bounds."""

    def __init__(self, models: list[tuple[GaussianProcess, float | None, float | None]]) -> None:
        self.models = models

    @classmethod
    def fit(cls, x: FloatArray, values: Sequence[Sequence[float | None]],
            bounds: Sequence[tuple[float | None, float | None]]) -> ConstraintModels:
        """``x`` (n, D) features; ``values[i][k]`` observation ``i``'s value of constraint ``k``."""
        models = []
        for k, (lo, hi) in enumerate(bounds):
            column = [v[k] if len(v) > k else None for v in values]
            rows = [i for i, c in enumerate(column) if c is not None and math.isfinite(c)]
            if len(rows) < MIN_CONSTRAINT_POINTS:
                continue
            raw = np.array([column[i] for i in rows], dtype=float)
            centre, scale = float(np.mean(raw)), float(np.std(raw)) or 1.0
            y = standardize(raw) if np.std(raw) > 0 else np.zeros_like(raw)
            hyper = fit_hyperparameters(x[rows], y, [Hyperparameters.default(x.shape[1])], max_iter=100)
            models.append((GaussianProcess(x[rows], y, hyper),
                           None if lo is None else (lo - centre) / scale,
                           None if hi is None else (hi - centre) / scale))
        return cls(models)

    def __bool__(self) -> bool:
        return bool(self.models)

    def log_p(self, x: FloatArray) -> FloatArray:
        return self.log_p_and_grad(x, grad=False)[0]

    def log_p_and_grad(self, x: FloatArray, *, grad: bool = True) -> tuple[FloatArray, FloatArray]:
        """log P(feasible) (m,) and its gradient (m, D)."""
        total = np.zeros(x.shape[0])
        gradient = np.zeros_like(x)
        for gp, lo, hi in self.models:
            if grad:
                mean, var, dmean, dvar = gp.predict_with_grad(x)
            else:
                mean, var = gp.predict(x)
                dmean = dvar = np.zeros_like(x)
            sd = np.sqrt(np.maximum(var, 1e-12))
            for bound, sign in ((hi, 1.0), (lo, -1.0)):
                if bound is None:
                    continue
                u = sign * (bound - mean) / sd  # P = Φ(u)
                log_cdf = scipy.special.log_ndtr(u)
                total += log_cdf
                if grad:
                    ratio = np.exp(-0.5 * u * u - 0.5 * math.log(2 * math.pi) - log_cdf)  # φ(u)/Φ(u)
                    du_dmean = -sign / sd
                    du_dvar = -u / (2.0 * var.clip(1e-12))
                    gradient += (ratio * du_dmean)[:, None] * dmean + (ratio * du_dvar)[:, None] * dvar
        return total, gradient


class Constrained(Acquisition):
    """``base`` plus log P(feasible); ``base=None`` is the probability of feasibility alone.

    ``candidate_log_p`` is log P(feasible) at the optimizer's candidate set, for :meth:`values`,
    which the optimizer calls with the objective's moments at those candidates.
    """

    def __init__(self, base: Acquisition | None, models: ConstraintModels, candidate_log_p: FloatArray) -> None:
        self.base = base
        self.models = models
        self.candidate_log_p = candidate_log_p
        self.name = base.name if base is not None else "feasibility"

    def from_moments(self, mean: FloatArray, var: FloatArray) -> Moments:
        if self.base is None:
            zero = np.zeros_like(mean)
            return zero, zero, zero
        return self.base.from_moments(mean, var)

    def values(self, mean: FloatArray, var: FloatArray) -> FloatArray:
        return self.from_moments(mean, var)[0] + self.candidate_log_p

    def value_and_grad(self, gp: GaussianProcess, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        a, g = super().value_and_grad(gp, x)
        lp, lg = self.models.log_p_and_grad(x)
        return a + lp, g + lg

    def __call__(self, gp: GaussianProcess, x: FloatArray) -> FloatArray:
        return self.from_moments(*gp.predict(x))[0] + self.models.log_p(x)
