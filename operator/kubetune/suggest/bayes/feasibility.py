"""Which configurations fail: a probability of success, to explore where trials give a value.

The success model is Gaussian-process least-squares classification (Rasmussen & Williams 2006,
§6.5): the same Matérn-5/2 GP regressed on labels +1 (a value) and −1 (failed), centred on their
mean, with a probit link on its predictive distribution,

    P(success | x) = Φ(m(x) / √(τ² + σ²(x))),   m(x) = ȳ + μ(x),

so that far from every observation the probability reverts to the observed success rate, with the
uncertainty σ² pulling it towards ½, and near a failure it is low. Pure maths.

It decides where the suggester's exploration points go (``suggester.exploration_points``):
Sobol' points it believes succeed. Weighting every acquisition by it, as constrained BO does
(Gelbart, Snoek & Adams 2014), was measured and not kept (docs/suggester.md).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.special

from kubetune.space import FloatArray
from kubetune.suggest.bayes.gp import GaussianProcess, Hyperparameters, fit_hyperparameters

#: The probit's scale on the ±1 labels: P = Φ(1 / 0.5) ≈ 0.98 on a success far from any failure.
TAU = 0.5
#: Fewer failures than this: nothing to learn, every point is as likely to succeed.
MIN_FAILURES = 2
#: A probability below this counts as this (log P ≥ −9.2).
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
