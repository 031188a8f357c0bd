"""Tree-structured Parzen estimator (Bergstra et al. 2011), multivariate (Falkner et al. 2018).

Pure: no I/O. Finished trials are split by loss at the γ-quantile into a *good* group (the best
``min(⌈γ n⌉, 25)``) and a *bad* group (the rest, plus failed trials, plus — constant liar —
pending trials and the points already chosen for this batch, so a batch spreads out). Each group
gets a Parzen density over the unit coordinates: a product kernel per observation (truncated
normal on [0, 1] for doubles and ints, a smoothed one-hot for categoricals) plus one flat prior
component. Candidates are sampled from the good density l(x) and the one maximizing
log l(x) − log g(x) (EI under TPE's model) is kept.

Shapes: n observations of a group, d unit coordinates, c candidates.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.special
import scipy.stats

from kubetune.api import Params, SettingValue, setting
from kubetune.space import FloatArray, Space
from kubetune.suggest.base import Observation, Suggestion, SuggestRequest, check_table_settings, tried_keys
from kubetune.suggest.multiobjective import pareto_order
from kubetune.suggest.sobol import fresh_sobol_params

MAX_GOOD = 25
BANDWIDTH = 0.2
MIN_BANDWIDTH = 0.01


@dataclass(frozen=True)
class ParzenEstimator:
    """Mixture of product kernels centred at ``centers`` (n, d) plus a flat component."""

    space: Space
    centers: FloatArray
    sigma: float

    def log_pdf(self, u: FloatArray) -> FloatArray:
        """log density at unit points u (c, d), shape (c,)."""
        n = self.centers.shape[0]
        log_k = np.zeros((u.shape[0], n))
        for j, dim in enumerate(self.space.dimensions):
            x, mu = u[:, j][:, None], self.centers[:, j][None, :]
            if dim.is_categorical:
                k = len(dim.choices)
                same = _category(x, k) == _category(mu, k)
                eps = 1.0 / (2 * k)
                # density over the unit coordinate: category mass / slice width 1/k
                log_k += np.log(np.where(same, 1.0 + eps, eps) / (1.0 + k * eps) * k)
            else:
                s = self.sigma
                mass = scipy.special.ndtr((1.0 - mu) / s) - scipy.special.ndtr(-mu / s)
                log_k += -0.5 * ((x - mu) / s) ** 2 - math.log(s * math.sqrt(2 * math.pi)) - np.log(mass)
        # the flat prior component has density 1 on the unit cube: log 1 = 0
        log_k = np.hstack([log_k, np.zeros((u.shape[0], 1))])
        return np.asarray(scipy.special.logsumexp(log_k, axis=1) - math.log(n + 1), dtype=float)

    def sample(self, rng: np.random.Generator, count: int) -> FloatArray:
        """(count, d) unit points drawn from the mixture."""
        n, d = self.centers.shape
        which = rng.integers(n + 1, size=count)
        kernel = which < n
        centers = self.centers[np.minimum(which, max(n - 1, 0))] if n else np.zeros((count, d))
        out = rng.random((count, d))  # the flat component
        for j, dim in enumerate(self.space.dimensions):
            c = centers[:, j]
            if dim.is_categorical:
                k = len(dim.choices)
                eps = 1.0 / (2 * k)
                keep = rng.random(count) < 1.0 / (1.0 + k * eps)  # else uniform over all k
                draw = np.where(keep, _category(c, k), rng.integers(k, size=count))
                value = (draw + 0.5) / k
            else:
                lo, hi = -c / self.sigma, (1.0 - c) / self.sigma
                z = scipy.stats.truncnorm.rvs(lo, hi, size=count, random_state=rng)
                value = c + self.sigma * z
            out[:, j] = np.where(kernel, value, out[:, j])
        return np.clip(out, 0.0, 1.0)


def _category(u: FloatArray | float, k: int) -> FloatArray:
    return np.asarray(np.minimum(np.floor(np.asarray(u) * k), k - 1), dtype=float)


def bandwidth(n: int, d: int) -> float:
    """Scott-like rule of multivariate TPE: 0.2 · n^(−1/(d+4)) of the unit range."""
    return float(max(BANDWIDTH * (n + 1.0) ** (-1.0 / (d + 4)), MIN_BANDWIDTH))


class TpeSearch:
    name = "tpe"

    def check_settings(self, settings: Mapping[str, SettingValue], space: Space) -> None:
        check_table_settings(self.name, settings)

    def suggest(self, request: SuggestRequest) -> Suggestion:
        request = infeasible_last(pareto_order(request))  # several objectives: ranked by fronts, as MOTPE
        space, settings = request.space, request.settings
        n_init = int(setting(self.name, settings, "initialTrials"))  # type: ignore[arg-type]
        gamma = float(setting(self.name, settings, "gamma"))  # type: ignore[arg-type]
        n_candidates = int(setting(self.name, settings, "candidates"))  # type: ignore[arg-type]
        excluded = tried_keys(request)
        ok = sorted(
            (o for o in request.observations if o.loss is not None and math.isfinite(o.loss)),
            key=lambda o: float(o.loss or 0.0),
        )
        n_design = request.n if len(ok) < 2 else min(max(n_init - request.start_index - request.prior, 0), request.n)
        chosen = fresh_sobol_params(space, request.seed, request.start_index, n_design, excluded)
        if len(chosen) == request.n:
            return Suggestion(chosen)

        n_good = max(1, min(math.ceil(gamma * len(ok)), MAX_GOOD))
        good = space.to_unit([o.params for o in ok[:n_good]])
        bad_params: list[Params] = [o.params for o in ok[n_good:]]
        bad_params += [o.params for o in request.observations if o.loss is None or not math.isfinite(o.loss)]
        bad_params += [*request.pending, *chosen]
        rng = np.random.default_rng([request.seed, request.start_index, 23])
        d = space.dim
        l_density = ParzenEstimator(space, good, bandwidth(len(good), d))
        while len(chosen) < request.n:
            bad = space.to_unit(bad_params) if bad_params else np.empty((0, d))
            g_density = ParzenEstimator(space, bad, bandwidth(len(bad), d))
            # draw until enough new assignments; a tiny discrete space may run out
            for _ in range(8):
                samples = space.from_unit(l_density.sample(rng, n_candidates))
                fresh = [p for p in samples if space.key(p) not in excluded]
                if fresh:
                    break
            if not fresh:
                fresh = fresh_sobol_params(space, request.seed, request.start_index + len(chosen), 1, excluded)
                if not fresh:
                    break
            u = space.to_unit(fresh)
            score = l_density.log_pdf(u) - g_density.log_pdf(u)
            best = fresh[int(np.argmax(score))]
            excluded.add(space.key(best))
            chosen.append(best)
            bad_params.append(best)  # constant liar: a chosen point counts as a bad one
        return Suggestion(chosen)


def infeasible_last(request: SuggestRequest) -> SuggestRequest:
    """Trials that break a constraint ranked below every feasible one, by how much they break it
    (as Optuna's constrained TPE does): each constraint's overshoot in units of the spread of that
    metric's observed values, summed; a missing value counts as the largest overshoot seen."""
    if not request.constraints:
        return request
    finite = [o.loss for o in request.observations if o.loss is not None and math.isfinite(o.loss)]
    if not finite:
        return request
    lo_loss, hi_loss = min(finite), max(finite)
    behind = hi_loss + ((hi_loss - lo_loss) or 1.0)  # every infeasible loss is above every feasible one
    spreads = []
    for k in range(len(request.constraints)):
        seen = [v for o in request.observations if len(o.constraints) > k and (v := o.constraints[k]) is not None]
        spreads.append((max(seen) - min(seen)) if len(seen) > 1 and max(seen) > min(seen) else 1.0)

    def overshoot(o: Observation) -> float:
        total = 0.0
        for k, (lo, hi) in enumerate(request.constraints):
            value = o.constraints[k] if len(o.constraints) > k else None
            if value is None:
                total += math.inf
                continue
            total += (max(0.0, lo - value) if lo is not None else 0.0) / spreads[k]
            total += (max(0.0, value - hi) if hi is not None else 0.0) / spreads[k]
        return total

    breaking = sorted((overshoot(o), i) for i, o in enumerate(request.observations)
                      if o.loss is not None and not request.feasible(o))
    place = {i: behind + rank for rank, (_, i) in enumerate(breaking)}
    moved = [dataclasses.replace(o, loss=place[i]) if i in place else o for i, o in enumerate(request.observations)]
    return dataclasses.replace(request, observations=moved)
