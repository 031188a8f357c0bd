"""Output transforms: losses (heavy-tailed, some missing) → standardized GP targets.

Pure maths, no I/O. Shapes: n losses in, n targets out; NaN marks a failed trial.

* **Warping.** When the tail is heavy (:data:`HEAVY_TAIL`), losses are scaled robustly (median,
  IQR), then Yeo-Johnson transformed with λ fitted by maximum
  likelihood (bounded to [−2, 3]), then standardized again. Like HEBO's power transform this
  turns a heavy right tail (diverged runs, 10⁴× the typical loss) into something a stationary GP
  can fit, while a well-behaved objective keeps λ ≈ 1 and is barely changed. If the fit fails
  the targets fall back to normal scores of the ranks, which no outlier can disturb.
* **Failures.** A failed trial gets the worst warped loss plus :data:`FAILURE_MARGIN` standard
  deviations: the model learns that the region is bad, and the acquisition leaves it, without a
  separate classifier. (Imputing the worst value is what SMAC and HEBO's users do too.)
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.optimize
import scipy.special
import scipy.stats

from kubetune.space import FloatArray

FAILURE_MARGIN = 0.5
#: Warp only when some loss lies this many IQRs from the median: a smooth objective keeps its
#: shape (on Branin, warping made the GP too greedy), diverged runs and Rosenbrock-like tails do not.
HEAVY_TAIL = 10.0
LAMBDA_BOUNDS = (-2.0, 3.0)


def standardize(values: FloatArray) -> FloatArray:
    """(values − mean) / std, or zeros when the values are (nearly) constant."""
    std = float(np.std(values))
    if not np.isfinite(std) or std < 1e-12:
        return np.zeros_like(values)
    return np.asarray((values - np.mean(values)) / std, dtype=float)


def rank_scores(values: FloatArray) -> FloatArray:
    """Normal scores of the ranks, Φ⁻¹((rank − ½) / n), ties averaged."""
    ranks = scipy.stats.rankdata(values)
    return np.asarray(scipy.special.ndtri((ranks - 0.5) / len(values)), dtype=float)


def robust_scale(values: FloatArray) -> FloatArray:
    """(values − median) / IQR (or / std when the IQR is 0): an outlier cannot shrink the rest."""
    q25, q50, q75 = np.percentile(values, [25, 50, 75])
    spread = float(q75 - q25)
    if spread < 1e-12:
        spread = float(np.std(values))
    if not np.isfinite(spread) or spread < 1e-12:
        return np.zeros_like(values)
    return np.asarray((values - q50) / spread, dtype=float)


def yeo_johnson(values: FloatArray) -> FloatArray:
    """Standardized Yeo-Johnson transform of robustly scaled ``values``, λ by bounded MLE."""
    z = robust_scale(values)
    if not np.any(z):
        return z
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = scipy.optimize.minimize_scalar(
            lambda lmb: -float(scipy.stats.yeojohnson_llf(lmb, z)), bounds=LAMBDA_BOUNDS, method="bounded"
        )
        transformed = scipy.stats.yeojohnson(z, lmbda=float(result.x))
    out = standardize(np.asarray(transformed, dtype=float))
    if not np.all(np.isfinite(out)):
        raise ValueError("Yeo-Johnson transform produced non-finite values")
    return out


def targets_from_losses(losses: FloatArray) -> FloatArray:
    """GP targets (n,) from losses (n,) with NaN for failed trials; needs one finite loss."""
    losses = np.asarray(losses, dtype=float)
    ok = np.isfinite(losses)
    if not np.any(ok):
        raise ValueError("no successful observation to model")
    try:
        heavy = float(np.max(np.abs(robust_scale(losses[ok])))) > HEAVY_TAIL
        warped = yeo_johnson(losses[ok]) if heavy else standardize(losses[ok])
    except (ValueError, ArithmeticError):
        warped = standardize(rank_scores(losses[ok]))
    out = np.empty_like(losses)
    out[ok] = warped
    out[~ok] = float(np.max(warped)) + FAILURE_MARGIN
    return standardize(out)
