"""Which configurations fail: a probability of success, and acquisitions weighted by it.

Constrained Bayesian optimization in the manner of Gelbart, Snoek & Adams (2014), "Bayesian
optimization with unknown constraints": a second model gives P(success | x), and the acquisition
becomes a(x) · P(success | x) (in log space: log a + log P), as SigOpt treats failed observations.
The objective model keeps its imputed values for failed trials too (``transform``): measured on
``seedlike-allcnn`` (bench/problems.py, half of the space diverging), modelling the objective on the
successful trials alone was worse than imputing (it extrapolates good values into the failing
region the success model only softly penalises) and on Branin with a failing half it doubled the
failed suggestions; both together were best (docs/suggester.md has the figures).

The success model is Gaussian-process least-squares classification (Rasmussen & Williams 2006,
§6.5): the same Matérn-5/2 GP regressed on labels +1 (a value) and −1 (failed), centred on their
mean, with a probit link on its predictive distribution,

    P(success | x) = Φ(m(x) / √(τ² + σ²(x))),   m(x) = ȳ + μ(x),

so that far from every observation the probability reverts to the observed success rate, with the
uncertainty σ² pulling it towards ½ (exploration), and near a failure it is low. Pure maths.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.special

from kubetune.space import FloatArray
from kubetune.suggest.bayes.acquisition import Acquisition, Moments, log_phi
from kubetune.suggest.bayes.gp import GaussianProcess, Hyperparameters, fit_hyperparameters

#: The probit's scale on the ±1 labels: P = Φ(1 / 0.5) ≈ 0.98 on a success far from any failure.
TAU = 0.5
#: Fewer failures than this: nothing to learn, the acquisition is left alone.
MIN_FAILURES = 2
#: A probability below this counts as this (log P ≥ −9.2): a region never becomes impossible.
FLOOR = 1e-4


class SuccessModel:
    """P(success | x) from inputs ``x`` (n, D) and whether each trial gave a value ``ok`` (n,)."""

    def __init__(self, x: FloatArray, ok: np.ndarray[Any, Any], rng: np.random.Generator, *,
                 fit_points: int = 200) -> None:
        labels = np.where(ok, 1.0, -1.0)
        self.offset = float(np.mean(labels))
        centred = labels - self.offset
        # hyperparameters from at most fit_points of them (O(n³) per step); the posterior uses all
        fit = np.arange(x.shape[0]) if x.shape[0] <= fit_points else rng.choice(x.shape[0], fit_points, replace=False)
        self.hyper = fit_hyperparameters(x[fit], centred[fit], [Hyperparameters.default(x.shape[1])], max_iter=60)
        self.gp = GaussianProcess(x, centred, self.hyper)

    def log_prob(self, x: FloatArray) -> FloatArray:
        mean, var = self.gp.predict(x)
        v = (self.offset + mean) / np.sqrt(TAU * TAU + var)
        return np.asarray(np.maximum(scipy.special.log_ndtr(v), math.log(FLOOR)), dtype=float)

    def log_prob_and_grad(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        mean, var, dmean, dvar = self.gp.predict_with_grad(x)
        s2 = TAU * TAU + var
        s = np.sqrt(s2)
        m = self.offset + mean
        v = m / s
        lp = scipy.special.log_ndtr(v)
        ratio = np.exp(log_phi(v) - lp)  # d log Φ(v) / dv
        grad = ratio[:, None] * (dmean / s[:, None] - (m / (2 * s2 * s))[:, None] * dvar)
        floored = lp < math.log(FLOOR)
        grad[floored] = 0.0
        return np.maximum(lp, math.log(FLOOR)), grad


class Feasible(Acquisition):
    """``base`` weighted by the success probability: log a(x) + log P(success | x) for log-scale
    acquisitions (log EI, log PI); for UCB, whose values are in the targets' units, the same log P is a
    penalty in standard deviations."""

    def __init__(self, base: Acquisition, success: SuccessModel) -> None:
        self.base = base
        self.success = success
        self.name = base.name

    def from_moments(self, mean: FloatArray, var: FloatArray) -> Moments:
        return self.base.from_moments(mean, var)  # the objective's part; ``scores`` adds log P

    def value_and_grad(self, gp: GaussianProcess, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        a, grad = self.base.value_and_grad(gp, x)
        lp, lp_grad = self.success.log_prob_and_grad(x)
        return a + lp, grad + lp_grad

    def __call__(self, gp: GaussianProcess, x: FloatArray) -> FloatArray:
        return np.asarray(self.base(gp, x) + self.success.log_prob(x), dtype=float)
