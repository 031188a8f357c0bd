"""Gaussian-process regression: Matérn-5/2 ARD kernel, exact inference by Cholesky, hyperparameters
by maximum a posteriori (log marginal likelihood plus log priors, L-BFGS-B, analytic gradients).

Pure maths: knows nothing of parameters, trials or experiments (``suggester.py`` adapts those).
No I/O; raises ``numpy.linalg.LinAlgError`` or ``ValueError`` on numerical failure, which the
adapter turns into a warning and a fallback.

Notation and shapes:
    n   training points;  D features;  m query points;  k fantasies
    X   (n, D) training inputs in [0, 1]^D
    y   (n,)   standardized targets, smaller is better
    θ   (D+2,) hyperparameters in log space: log ℓ_1..ℓ_D (lengthscales), log s² (signal
        variance), log σ² (noise variance)
    k(x, x') = s² (1 + √5 r + 5/3 r²) exp(−√5 r),  r² = Σ_d (x_d − x'_d)² / ℓ_d²
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.optimize

from kubetune.space import FloatArray

SQRT5 = math.sqrt(5.0)
JITTER = 1e-9
FANTASY_NOISE_RATIO = 1e-3

#: Bounds in log space. Lengthscales are in unit-cube units; targets are standardized, so signal
#: and noise variances are relative to the data's spread.
LOG_LENGTHSCALE_BOUNDS = (math.log(1e-2), math.log(1e2))
LOG_SIGNAL_BOUNDS = (math.log(5e-2), math.log(20.0))
LOG_NOISE_BOUNDS = (math.log(1e-6), math.log(1.5))


@dataclass(frozen=True)
class Hyperparameters:
    """θ as a value; ``vector`` is the (D+2,) log-space array the optimizer works on."""

    log_lengthscales: FloatArray
    log_signal: float
    log_noise: float

    @classmethod
    def from_vector(cls, theta: FloatArray) -> Hyperparameters:
        theta = np.asarray(theta, dtype=float)
        return cls(theta[:-2].copy(), float(theta[-2]), float(theta[-1]))

    @property
    def vector(self) -> FloatArray:
        return np.concatenate([self.log_lengthscales, [self.log_signal, self.log_noise]])

    @property
    def dim(self) -> int:
        return int(self.log_lengthscales.shape[0])

    @classmethod
    def default(cls, dim: int) -> Hyperparameters:
        """The prior medians, clipped to a lengthscale that lets the first fit move."""
        log_ls = min(_lengthscale_prior_loc(dim), math.log(2.0))
        return cls(np.full(dim, log_ls), 0.0, math.log(1e-2))


def _lengthscale_prior_loc(dim: int) -> float:
    # Hvarfner, Hellsten & Nardi (2024), "Vanilla Bayesian optimization performs great in high
    # dimensions": log ℓ ~ N(√2 + ½ log D, 3) scales the lengthscales with √D, so the prior
    # complexity of the model does not grow with the dimension. Also BoTorch's default.
    return math.sqrt(2.0) + 0.5 * math.log(max(dim, 1))


def log_prior(theta: FloatArray) -> tuple[float, FloatArray]:
    """log p(θ) up to a constant, and its gradient (D+2,).

    log ℓ_d ~ N(√2 + ½ log D, 3);  log s² ~ N(0, 1);  log σ² ~ N(−8, 1.5²). The noise prior sits
    below BoTorch's (median e⁻⁴) because many objectives here are nearly deterministic; on noisy
    ones the likelihood still raises σ² (bounded at 1.5).
    """
    dim = theta.shape[0] - 2
    loc = np.concatenate([np.full(dim, _lengthscale_prior_loc(dim)), [0.0, -8.0]])
    scale2 = np.concatenate([np.full(dim, 3.0), [1.0, 2.25]])
    diff = theta - loc
    return float(-0.5 * np.sum(diff * diff / scale2)), -diff / scale2


def scaled_sqdist(a: FloatArray, b: FloatArray, inv_ls: FloatArray) -> FloatArray:
    """(m, n) squared distances Σ_d (a_d − b_d)² / ℓ_d² between the rows of a (m, D) and b (n, D)."""
    sa, sb = a * inv_ls, b * inv_ls
    d2 = np.sum(sa * sa, axis=1)[:, None] + np.sum(sb * sb, axis=1)[None, :] - 2.0 * sa @ sb.T
    return np.asarray(np.maximum(d2, 0.0), dtype=float)


def matern52(d2: FloatArray, signal: float) -> FloatArray:
    """k from squared scaled distances, same shape as ``d2``."""
    r = np.sqrt(d2)
    return signal * (1.0 + SQRT5 * r + (5.0 / 3.0) * d2) * np.exp(-SQRT5 * r)


def _matern52_radial_grad(d2: FloatArray, signal: float) -> FloatArray:
    """G = −(1/r) ∂k/∂r = s² (5/3)(1 + √5 r) exp(−√5 r): finite at r = 0, shape of ``d2``."""
    r = np.sqrt(d2)
    return signal * (5.0 / 3.0) * (1.0 + SQRT5 * r) * np.exp(-SQRT5 * r)


def neg_log_posterior(theta: FloatArray, x: FloatArray, y: FloatArray) -> tuple[float, FloatArray]:
    """−(log p(y | X, θ) + log p(θ)) and its gradient (D+2,).

    With K = s² M + σ² I, α = K⁻¹ y and W = α αᵀ − K⁻¹:
        log p(y | X, θ) = −½ yᵀ α − Σ log diag(chol K) − n/2 log 2π
        ∂/∂θ_j = ½ Σ_ab W_ab ∂K_ab/∂θ_j
    where ∂K/∂log ℓ_d = G ∘ Δ_d² / ℓ_d² (Δ_d² the squared differences of feature d),
    ∂K/∂log s² = s² M and ∂K/∂log σ² = σ² I.
    """
    n, dim = x.shape
    inv_ls = np.exp(-theta[:dim])
    signal, noise = math.exp(theta[-2]), math.exp(theta[-1])
    d2 = scaled_sqdist(x, x, inv_ls)
    k_f = matern52(d2, signal)
    k = k_f + (noise + JITTER) * np.eye(n)
    chol = scipy.linalg.cholesky(k, lower=True, check_finite=False)
    alpha = scipy.linalg.cho_solve((chol, True), y, check_finite=False)
    lml = -0.5 * float(y @ alpha) - float(np.sum(np.log(np.diag(chol)))) - 0.5 * n * math.log(2 * math.pi)
    k_inv = scipy.linalg.cho_solve((chol, True), np.eye(n), check_finite=False)
    w = np.outer(alpha, alpha) - k_inv
    m = w * _matern52_radial_grad(d2, signal)
    # Σ_ab M_ab (x_ad − x_bd)² = 2 Σ_a x_ad² (M 1)_a − 2 x_dᵀ M x_d for symmetric M
    quad = np.sum(x * x * m.sum(axis=1)[:, None], axis=0) - np.sum(x * (m @ x), axis=0)
    grad = np.empty(dim + 2)
    grad[:dim] = quad * inv_ls * inv_ls
    grad[-2] = 0.5 * float(np.sum(w * k_f))
    grad[-1] = 0.5 * noise * float(np.trace(w))
    prior, prior_grad = log_prior(theta)
    return -(lml + prior), -(grad + prior_grad)


def fit_hyperparameters(
    x: FloatArray,
    y: FloatArray,
    starts: list[Hyperparameters],
    *,
    max_iter: int = 200,
) -> Hyperparameters:
    """θ maximizing the posterior from each start (L-BFGS-B), the best one; ValueError if all fail."""
    dim = x.shape[1]
    bounds = [LOG_LENGTHSCALE_BOUNDS] * dim + [LOG_SIGNAL_BOUNDS, LOG_NOISE_BOUNDS]
    lo, hi = np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds])

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        try:
            value, grad = neg_log_posterior(theta, x, y)
        except (np.linalg.LinAlgError, ValueError):
            return 1e25, np.zeros_like(theta)
        if not (math.isfinite(value) and np.all(np.isfinite(grad))):
            return 1e25, np.zeros_like(theta)
        return value, grad

    best: tuple[float, FloatArray] | None = None
    for start in starts:
        theta0 = np.clip(start.vector, lo, hi)
        result = scipy.optimize.minimize(
            objective, theta0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": max_iter}
        )
        value = float(result.fun)
        if value < 1e24 and (best is None or value < best[0]):
            best = (value, np.asarray(result.x, dtype=float))
    if best is None:
        raise ValueError("every hyperparameter fit failed")
    return Hyperparameters.from_vector(best[1])


class GaussianProcess:
    """The posterior of f given (X, y) and fixed θ. Targets are noisy: y = f(x) + ε, ε ~ N(0, σ²).

    The last ``n_fantasies`` rows are kriging-believer fantasies, conditioned on as if noiseless
    (σ² · :data:`FANTASY_NOISE_RATIO`): with the model's own noise a fantasy barely lowers the
    variance where it stands, and a batch would pile up on one point.
    """

    def __init__(self, x: FloatArray, y: FloatArray, hyper: Hyperparameters, n_fantasies: int = 0) -> None:
        self.x = np.asarray(x, dtype=float)
        self.y = np.asarray(y, dtype=float)
        self.hyper = hyper
        self.n_fantasies = n_fantasies
        self.inv_ls = np.exp(-hyper.log_lengthscales)
        self.signal = math.exp(hyper.log_signal)
        self.noise = math.exp(hyper.log_noise)
        k = matern52(scaled_sqdist(self.x, self.x, self.inv_ls), self.signal)
        diag = np.full(self.x.shape[0], self.noise + JITTER)
        if n_fantasies:
            diag[-n_fantasies:] = self.fantasy_noise
        k[np.diag_indices_from(k)] += diag
        self.chol = scipy.linalg.cholesky(k, lower=True, check_finite=False)
        self.alpha = scipy.linalg.cho_solve((self.chol, True), self.y, check_finite=False)
        if not np.all(np.isfinite(self.alpha)):
            raise np.linalg.LinAlgError("non-finite GP weights")

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    @property
    def fantasy_noise(self) -> float:
        return self.noise * FANTASY_NOISE_RATIO + JITTER

    def cross_kernel(self, xq: FloatArray) -> FloatArray:
        """(m, n) k(xq, X)."""
        return matern52(scaled_sqdist(xq, self.x, self.inv_ls), self.signal)

    def whiten(self, kq: FloatArray) -> FloatArray:
        """(n, m) V = L⁻¹ k(X, xq) from the (m, n) cross kernel."""
        return np.asarray(
            scipy.linalg.solve_triangular(self.chol, kq.T, lower=True, check_finite=False), dtype=float
        )

    def predict(self, xq: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Posterior mean and variance of f, each (m,)."""
        kq = self.cross_kernel(xq)
        v = self.whiten(kq)
        var = self.signal - np.sum(v * v, axis=0)
        return kq @ self.alpha, np.maximum(var, 1e-12)

    def predict_with_grad(self, xq: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """Mean (m,), variance (m,) and their gradients with respect to xq, each (m, D).

        ∂k(x, x_i)/∂x = −G(r_i) (x − x_i) / ℓ², so ∂μ/∂x = Σ_i α_i ∂k_i/∂x and
        ∂σ²/∂x = −2 Σ_i (K⁻¹ k)_i ∂k_i/∂x.
        """
        d2 = scaled_sqdist(xq, self.x, self.inv_ls)
        kq = matern52(d2, self.signal)
        g = _matern52_radial_grad(d2, self.signal)  # (m, n)
        v = self.whiten(kq)
        beta = scipy.linalg.solve_triangular(self.chol, v, lower=True, trans="T", check_finite=False)
        inv_ls2 = self.inv_ls * self.inv_ls

        def weighted_grad(weights: FloatArray) -> FloatArray:
            # Σ_i w_mi ∂k(x_m, x_i)/∂x_m = −(Σ_i w_mi G_mi (x_m − x_i)) / ℓ²
            gw = g * weights
            return np.asarray(-(gw.sum(axis=1)[:, None] * xq - gw @ self.x) * inv_ls2, dtype=float)

        mean = kq @ self.alpha
        var = np.maximum(self.signal - np.sum(v * v, axis=0), 1e-12)
        dmean = weighted_grad(np.broadcast_to(self.alpha, kq.shape))
        dvar = -2.0 * weighted_grad(beta.T)
        return mean, var, dmean, dvar

    def with_fantasies(self, xf: FloatArray) -> GaussianProcess:
        """The GP conditioned also on y_f = μ(x_f) at the rows of xf (kriging believer)."""
        if xf.shape[0] == 0:
            return self
        mean, _ = self.predict(xf)
        x, y = np.vstack([self.x, xf]), np.concatenate([self.y, mean])
        return GaussianProcess(x, y, self.hyper, self.n_fantasies + xf.shape[0])


class CandidatePosterior:
    """Posterior moments at a fixed candidate set C (m, D), updated in O(n m) per added fantasy.

    Kriging-believer fantasies leave the mean unchanged; with c(·,·) the base posterior
    covariance, F the fantasies and S = c(F, F) + σ_f² I (σ_f² the fantasy noise), the variance becomes
    σ²(C) − diag(c(C, F) S⁻¹ c(F, C)). Equal to ``gp.with_fantasies(F).predict(C)``, cheaper.
    """

    def __init__(self, gp: GaussianProcess, candidates: FloatArray) -> None:
        self.gp = gp
        self.candidates = candidates
        kq = gp.cross_kernel(candidates)
        self.v = gp.whiten(kq)  # (n, m)
        self.mean = kq @ gp.alpha
        self.base_var = np.maximum(gp.signal - np.sum(self.v * self.v, axis=0), 1e-12)
        self.var = self.base_var.copy()
        self._fantasy_x: list[FloatArray] = []
        self._fantasy_v: list[FloatArray] = []
        self._cross: list[FloatArray] = []  # c(C, f_j), each (m,)

    def add_fantasy(self, xf: FloatArray) -> None:
        """Condition on one more fantasy at xf (D,)."""
        gp = self.gp
        xf = np.asarray(xf, dtype=float).reshape(1, -1)
        vf = gp.whiten(gp.cross_kernel(xf))[:, 0]
        k_cf = matern52(scaled_sqdist(self.candidates, xf, gp.inv_ls), gp.signal)[:, 0]
        self._cross.append(k_cf - self.v.T @ vf)
        self._fantasy_x.append(xf[0])
        self._fantasy_v.append(vf)
        fx, fv = np.array(self._fantasy_x), np.array(self._fantasy_v)
        s = matern52(scaled_sqdist(fx, fx, gp.inv_ls), gp.signal) - fv @ fv.T
        s[np.diag_indices_from(s)] += gp.fantasy_noise
        c = np.array(self._cross).T  # (m, k)
        chol = scipy.linalg.cholesky(s, lower=True, check_finite=False)
        w = scipy.linalg.solve_triangular(chol, c.T, lower=True, check_finite=False)
        self.var = np.maximum(self.base_var - np.sum(w * w, axis=0), 1e-12)
