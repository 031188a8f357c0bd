"""Expected hypervolume improvement of a point, for several objectives (all minimized).

The hypervolume improvement of an outcome ``y`` over a front ``F`` inside the box below a
reference point ``r`` is the volume of the part of the box that ``y`` dominates and ``F`` does
not. With ``S`` points drawn uniformly from that not-yet-dominated region (:func:`region_samples`),
it is proportional to the share of them that ``y`` dominates, and under independent Gaussian
posteriors ``y_j ~ N(μ_j, σ_j²)`` its expectation has a closed form per sample point ``p``:

    EHVI(x) ∝ (1/|S|) Σ_p Π_j Φ((p_j − μ_j(x)) / σ_j(x))

(the probability that the outcome dominates ``p``). :func:`log_ehvi` evaluates it in log space
(``log Φ`` summed over objectives, log-sum-exp over the sample points), so candidates far from the
front still rank by how unlikely their improvement is instead of all scoring 0, which is what
log-EI does for one objective (Ament et al. 2023). A batch is chosen greedily: each chosen point's
posterior mean is believed (kriging believer) and the sample points it dominates leave ``S``.

Pure numpy/scipy; shapes: m candidates, k objectives, s sample points.
"""

from __future__ import annotations

import numpy as np
import scipy.special

from kubetune.space import FloatArray

#: Sample points of the region not dominated by the front.
N_SAMPLES = 2048
#: Candidates scored at once (m × s × k floats per chunk).
CHUNK = 128


def dominated_by(points: FloatArray, front: FloatArray) -> np.ndarray:
    """Which of ``points`` (s, k) some row of ``front`` (f, k) dominates weakly (≤ on every axis)."""
    if front.size == 0:
        return np.zeros(len(points), dtype=bool)
    return np.asarray(np.any(np.all(front[None, :, :] <= points[:, None, :], axis=2), axis=1))


def region_samples(front: FloatArray, lower: FloatArray, reference: FloatArray, rng: np.random.Generator,
                   n: int = N_SAMPLES) -> FloatArray:
    """Points drawn uniformly from the box [lower, reference] that ``front`` does not dominate."""
    points = lower + (reference - lower) * rng.random((n, len(reference)))
    return np.asarray(points[~dominated_by(points, front)])


def log_ehvi(mean: FloatArray, var: FloatArray, samples: FloatArray) -> FloatArray:
    """log EHVI (up to a constant) of m candidates with posterior ``mean`` and ``var`` (m, k)."""
    out = np.full(len(mean), -np.inf)
    if len(samples) == 0:
        return out
    sd = np.sqrt(np.maximum(var, 1e-12))
    for start in range(0, len(mean), CHUNK):
        mu, s = mean[start:start + CHUNK], sd[start:start + CHUNK]
        z = (samples[None, :, :] - mu[:, None, :]) / s[:, None, :]
        log_p = np.sum(scipy.special.log_ndtr(z), axis=2)  # (chunk, s): log P(outcome dominates p)
        out[start:start + CHUNK] = scipy.special.logsumexp(log_p, axis=1) - np.log(len(samples))
    return out


def without_dominated(samples: FloatArray, outcome: FloatArray) -> FloatArray:
    """``samples`` less those ``outcome`` (k,) dominates: the region left once it is believed."""
    return np.asarray(samples[~np.all(outcome[None, :] <= samples, axis=1)])
