"""Several objectives for the model-based suggesters: random scalarizations, as ParEGO does.

Knowles, *ParEGO: a hybrid algorithm with on-line landscape approximation for expensive
multiobjective optimization problems* (IEEE TEVC 2006), with random weights as in Paria et al.,
*A Flexible Framework for Multi-Objective Bayesian Optimization using Random Scalarizations*
(UAI 2019): each request draws one weight vector ``w`` from the uniform distribution on the
simplex (``bayes`` asks one request per batch slot, qParEGO) and turns every observation's loss
vector ``f`` (each axis scaled to [0, 1] over the observations) into the augmented Chebyshev
scalarization

    s(f) = max_j w_j f_j + ρ · Σ_j w_j f_j,   ρ = 0.05,

which the single-objective machinery (``bayes``'s GP, ``tpe``'s densities) then minimizes. Any
point of the front is the minimum of ``s`` for some ``w``, so successive requests with fresh
weights cover the front, concave parts included. The weights are drawn from the request's seed and
``start_index``: the same request gives the same suggestion (restart-safe).

An observation that has only its first loss (an early-stopped trial that reported only the first
metric) gets the worst observed value on the other axes; a failed one stays failed.

Pure, numpy only.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kubetune import pareto
from kubetune.suggest.base import SuggestRequest

RHO = 0.05
_WEIGHT_STREAM = 7727


def weights(request: SuggestRequest, m: int) -> np.ndarray:
    """This request's weight vector: uniform on the simplex of ``m`` objectives."""
    return np.random.default_rng([request.seed, request.start_index, _WEIGHT_STREAM]).dirichlet(np.ones(m))


def scalarize(request: SuggestRequest) -> SuggestRequest:
    """The request with each observation's loss vector replaced by its scalarization; the request
    itself when no observation has more than one loss."""
    m = 1 + max((len(o.losses) for o in request.observations), default=0)
    if m == 1:
        return request
    rows = [(o, [o.loss, *o.losses] if o.loss is not None else None) for o in request.observations]
    full = np.array([v for _, v in rows if v is not None and len(v) == m], dtype=float)
    if not len(full):
        return request
    lo, hi = full.min(axis=0), full.max(axis=0)
    worst = hi
    span = np.where(hi > lo, hi - lo, 1.0)
    w = weights(request, m)
    scalarized = []
    for o, v in rows:
        if v is None:
            scalarized.append(dataclasses.replace(o, losses=()))
            continue
        f = np.array(v + list(worst[len(v):]), dtype=float)
        f = (f - lo) / span
        scalarized.append(dataclasses.replace(o, loss=float(np.max(w * f) + RHO * np.sum(w * f)), losses=()))
    return dataclasses.replace(request, observations=scalarized)


def pareto_order(request: SuggestRequest) -> SuggestRequest:
    """The request with each observation's loss replaced by its place in a non-dominated sorting:
    the first front first, each front by crowding distance (most isolated first). For ``tpe``,
    which only ranks its observations to split them into a good and a bad group: the split then
    follows the fronts, as MOTPE's does (Ozaki et al., GECCO 2020; Optuna breaks the last front by
    hypervolume contribution, this by crowding distance, NSGA-II's rule). The request itself when
    no observation has more than one loss."""
    m = 1 + max((len(o.losses) for o in request.observations), default=0)
    if m == 1:
        return request
    rows = [i for i, o in enumerate(request.observations) if o.loss is not None and np.isfinite(o.loss)]
    full = [[request.observations[i].loss, *request.observations[i].losses] for i in rows]
    complete = np.array([v for v in full if len(v) == m], dtype=float)
    worst = complete.max(axis=0) if len(complete) else np.zeros(m)
    vectors = [list(v) + list(worst[len(v):]) for v in full]
    order: list[int] = []
    remaining = list(range(len(vectors)))
    while remaining:
        front = [remaining[i] for i in pareto.non_dominated([vectors[j] for j in remaining])]
        distance = pareto.crowding_distance([vectors[j] for j in front])
        order += [front[k] for k in np.argsort(-distance, kind="stable")]
        remaining = [j for j in remaining if j not in front]
    place = {rows[j]: float(position) for position, j in enumerate(order)}
    ranked = [dataclasses.replace(o, loss=place[i], losses=()) if i in place else dataclasses.replace(o, losses=())
              for i, o in enumerate(request.observations)]
    return dataclasses.replace(request, observations=ranked)

