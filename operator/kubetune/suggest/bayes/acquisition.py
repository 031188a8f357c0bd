"""Acquisition functions for minimization, computed from the GP posterior moments.

Pure maths: no I/O, nothing of experiments. Every function maps the posterior mean μ(x) and
variance σ²(x) of the (standardized, minimized) objective at m points to m values to *maximize*,
with the derivatives ∂a/∂μ and ∂a/∂σ² that :meth:`Acquisition.value_and_grad` chains with the
GP's ∂μ/∂x and ∂σ²/∂x.

Notation: f* the incumbent (best observed standardized loss), u = (f* − μ) / σ,
φ and Φ the standard normal density and distribution, h(u) = φ(u) + u Φ(u).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np
import scipy.special

from kubetune.space import FloatArray
from kubetune.suggest.bayes.gp import GaussianProcess

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_SQRT_HALF_PI = math.sqrt(math.pi / 2)

Moments = tuple[FloatArray, FloatArray, FloatArray]


def log_phi(u: FloatArray) -> FloatArray:
    """log φ(u)."""
    return np.asarray(-0.5 * u * u - _LOG_SQRT_2PI, dtype=float)


def log_h(u: FloatArray) -> FloatArray:
    """log h(u) = log(φ(u) + u Φ(u)), accurate for all u (BoTorch's ``_log_ei_helper``).

    For u > −1 directly. Below, h(u) = φ(u) (1 − r) with r = |u| Φ(u) / φ(u) = |u| √(π/2)
    erfcx(|u|/√2) < 1, so log h = log φ(u) + log(1 − r); for u < −10³, 1 − r ≈ u⁻² (1 − 3 u⁻²).
    """
    u = np.asarray(u, dtype=float)
    out = np.empty_like(u)
    upper = u > -1.0
    uu = u[upper]
    out[upper] = np.log(np.exp(log_phi(uu)) + uu * scipy.special.ndtr(uu))
    mid = (~upper) & (u >= -1e3)
    um = -u[mid]
    r = um * _SQRT_HALF_PI * scipy.special.erfcx(um / math.sqrt(2.0))
    out[mid] = log_phi(-um) + np.log1p(-r)
    far = u < -1e3
    uf = -u[far]
    out[far] = log_phi(-uf) - 2.0 * np.log(uf) + np.log1p(-3.0 / (uf * uf))
    return out


def _sd(var: FloatArray) -> FloatArray:
    return np.sqrt(np.maximum(var, 1e-12))


class Acquisition(ABC):
    """a(x) from the posterior moments; larger is better."""

    name: str

    @abstractmethod
    def from_moments(self, mean: FloatArray, var: FloatArray) -> Moments:
        """Values a (m,), ∂a/∂μ (m,) and ∂a/∂σ² (m,)."""

    def values(self, mean: FloatArray, var: FloatArray) -> FloatArray:
        return self.from_moments(mean, var)[0]

    def value_and_grad(self, gp: GaussianProcess, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """a(x) (m,) and ∇ₓa (m, D) = ∂a/∂μ ∇μ + ∂a/∂σ² ∇σ²."""
        mean, var, dmean, dvar = gp.predict_with_grad(x)
        a, a_mean, a_var = self.from_moments(mean, var)
        return a, a_mean[:, None] * dmean + a_var[:, None] * dvar

    def __call__(self, gp: GaussianProcess, x: FloatArray) -> FloatArray:
        return self.values(*gp.predict(x))


class LogExpectedImprovement(Acquisition):
    """log EI(x) = log E[max(f* − f(x), 0)] = log σ + log h(u).

    Ament et al. (2023), "Unexpected improvements to expected improvement" (arXiv 2310.20708):
    EI vanishes numerically far from the incumbent, its log does not, so gradients stay useful.
    ∂/∂μ = −Φ(u) / (σ h(u));  ∂/∂σ = φ(u) / (σ h(u)).
    """

    name = "logei"

    def __init__(self, best: float) -> None:
        self.best = best

    def from_moments(self, mean: FloatArray, var: FloatArray) -> Moments:
        sd = _sd(var)
        u = (self.best - mean) / sd
        lh = log_h(u)
        a = np.log(sd) + lh
        d_mean = -np.exp(scipy.special.log_ndtr(u) - lh) / sd
        d_sd = np.exp(log_phi(u) - lh) / sd
        return a, d_mean, d_sd / (2.0 * sd)


class LogProbabilityOfImprovement(Acquisition):
    """log PI(x) = log P(f(x) < f* − ξ) = log Φ((f* − ξ − μ) / σ).

    ∂/∂μ = −φ(u')/(σ Φ(u'));  ∂/∂σ = −u' φ(u')/(σ Φ(u')),  u' = (f* − ξ − μ)/σ.
    """

    name = "pi"

    def __init__(self, best: float, xi: float = 0.01) -> None:
        self.best = best
        self.xi = xi

    def from_moments(self, mean: FloatArray, var: FloatArray) -> Moments:
        sd = _sd(var)
        u = (self.best - self.xi - mean) / sd
        a = scipy.special.log_ndtr(u)
        ratio = np.exp(log_phi(u) - a)
        return a, -ratio / sd, (-u * ratio / sd) / (2.0 * sd)


class UpperConfidenceBound(Acquisition):
    """UCB of the negated loss: a(x) = −μ(x) + √β σ(x).

    β follows GP-UCB's schedule (Srinivas et al. 2010) for t observations in D dimensions,
    β_t = 0.2 · 2 log(D t² π² / (6 δ)) with δ = 0.1; the 0.2 is the usual practical shrinkage.
    ∂/∂μ = −1;  ∂/∂σ = √β.
    """

    name = "ucb"

    def __init__(self, beta: float) -> None:
        self.beta = beta

    @staticmethod
    def schedule(t: int, dim: int, delta: float = 0.1) -> float:
        t = max(t, 1)
        return 0.2 * 2.0 * math.log(max(dim, 1) * t * t * math.pi**2 / (6.0 * delta))

    def from_moments(self, mean: FloatArray, var: FloatArray) -> Moments:
        sd = _sd(var)
        root = math.sqrt(self.beta)
        return -mean + root * sd, -np.ones_like(mean), root / (2.0 * sd)
