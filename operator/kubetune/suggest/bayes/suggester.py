"""The ``bayes`` suggester: a thin adapter from a :class:`SuggestRequest` to the GP maths.

No I/O. It turns observations into arrays (``space.encode``), losses into targets
(:mod:`.transform`), fits the GP (:mod:`.gp`), runs the acquisition portfolio (:mod:`.acquisition`,
GP-Hedge) over the mixed space (:mod:`.optimize`), and turns the winners back into assignments.
Where trials fail, a share of the slots equal to the share of failed trials explores instead:
Sobol' points that a model of which configurations fail (:mod:`.feasibility`) expects to succeed.
On any numerical failure it warns and returns Sobol' points instead: ``suggest`` never raises.

State kept between calls (JSON, a few KB whatever the trial count):
    ``theta``      the last GP hyperparameters (D+2 floats), warm start of the next fit
    ``gains``      GP-Hedge's cumulative gain per acquisition arm (3 floats)
    ``nominees``   each arm's last nominee (3 assignments), to score the arms on the next call
"""

from __future__ import annotations

import dataclasses
import logging
import math
import warnings
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from kubetune import pareto
from kubetune.api import Params, SettingValue, setting
from kubetune.space import FloatArray, Space, SpaceError
from kubetune.suggest.base import (
    Observation,
    Suggestion,
    SuggestRequest,
    check_table_settings,
    tried_keys,
)
from kubetune.suggest.bayes.acquisition import (
    Acquisition,
    LogExpectedImprovement,
    LogProbabilityOfImprovement,
    UpperConfidenceBound,
)
from kubetune.suggest.bayes.constraints import Constrained, ConstraintModels
from kubetune.suggest.bayes.feasibility import MIN_FAILURES, SuccessModel
from kubetune.suggest.bayes.gp import CandidatePosterior, GaussianProcess, Hyperparameters, fit_hyperparameters
from kubetune.suggest.bayes.hypervolume import log_ehvi, region_samples, without_dominated
from kubetune.suggest.bayes.optimize import MixedSpaceOptimizer, candidate_unit_points, local_moves
from kubetune.suggest.bayes.transform import targets_from_losses
from kubetune.suggest.multiobjective import scalarize
from kubetune.suggest.sobol import fresh_sobol_params

log = logging.getLogger(__name__)

ARMS = ("logei", "ucb", "pi")
#: Hyperparameters are fitted on at most this many of the model's points (the best half and a
#: random rest); the posterior then conditions on all of them. Fitting is O(n³) per step.
FIT_POINTS = 200
HEDGE_ETA = 1.0
N_ANCHORS = 8
MIN_OBSERVATIONS = 2
#: Exploration slots: trial i explores when frac(i · φ) < the share of failed trials, φ = (√5 − 1)/2
#: (a Weyl sequence: evenly spread over the indices, decided by the index alone, so a restarted
#: operator asks for the same kind of point again).
GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0
#: Each exploration slot draws this many Sobol' points of its own stream and takes the first that
#: the success model expects to succeed (P ≥ ½).
EXPLORE_POOL = 16
EXPLORE_STREAM = 7919


def default_initial_trials(space: Space) -> int:
    """Size of the Sobol' design before the model takes over: max(5, 2 d)."""
    return max(5, 2 * space.dim)


class BayesSearch:
    """GP Bayesian optimization; see ``docs/suggester.md`` for the design and its reasons."""

    name = "bayes"

    def check_settings(self, settings: Mapping[str, SettingValue], space: Space) -> None:
        check_table_settings(self.name, settings)

    def suggest(self, request: SuggestRequest) -> Suggestion:
        multi = any(o.losses for o in request.observations)
        method = str(setting("bayes", request.settings, "multiObjective"))
        # several objectives (docs/suggester.md): expected hypervolume improvement for a whole batch,
        # or slot by slot a random scalarization (parego) or, by the trial's index, one or the other
        ehvi = multi and (method == "ehvi" or (method == "mixed" and request.n == 1 and request.start_index % 2 == 0))
        if multi and method != "ehvi" and request.n > 1:
            return self._suggest_each(request)
        if multi and not ehvi:
            request = scalarize(request)  # one random scalarization per request
        space, settings = request.space, request.settings
        n_init = int(settings.get("initialTrials", default_initial_trials(space)))  # its table default is None
        excluded = tried_keys(request)
        n_ok = sum(1 for o in request.observations if _finite_loss(o))
        n_design = request.n if n_ok < MIN_OBSERVATIONS else min(
            max(n_init - request.start_index - request.prior, 0), request.n)
        chosen = _sobol_fill(request, 0, n_design, excluded)
        state: dict[str, Any] = dict(request.state)
        n_explore = exploration_slots(request, len(chosen)) if len(chosen) < request.n else 0
        if len(chosen) < request.n - n_explore:
            try:
                with np.errstate(all="ignore"):
                    batch = _ehvi_batch if ehvi else _bayes_batch
                    found, state = batch(request, request.n - n_explore - len(chosen), excluded)
            except Exception as error:  # never fail a reconcile over numerics; degrade to Sobol'
                message = f"bayes: model failed ({type(error).__name__}: {error}); using Sobol' points"
                log.warning(message)
                warnings.warn(message, RuntimeWarning, stacklevel=2)
                found = []
            chosen.extend(found)
        if n_explore:
            chosen.extend(exploration_points(request, n_explore, excluded))
        if len(chosen) < request.n:
            chosen.extend(_sobol_fill(request, len(chosen), request.n - len(chosen), excluded))
        return Suggestion(chosen, state)

    def _suggest_each(self, request: SuggestRequest) -> Suggestion:
        """Several objectives, a batch: each slot its own scalarization (qParEGO, as BoTorch's), the
        slots before it pending. One weight vector for the whole batch would send all of it to one
        part of the front. Slot ``j`` is what a request for trial ``start_index + j`` alone, with the
        slots before it running, would get: batched or one at a time, a trial gets the same point."""
        chosen: list[Params] = []
        state: dict[str, Any] = {}
        for j in range(request.n):
            one = dataclasses.replace(request, n=1, start_index=request.start_index + j,
                                      pending=[*request.pending, *chosen])
            suggestion = self.suggest(one)
            if not suggestion.params:
                break
            chosen.extend(suggestion.params)
            # each key from the first slot that wrote it (Hedge's update once; ehvi's fits beside it)
            state.update({k: v for k, v in suggestion.state.items() if k not in state})
        return Suggestion(chosen, {**request.state, **state})


def exploration_slots(request: SuggestRequest, offset: int) -> int:
    """How many of the trials ``start_index + offset .. start_index + n − 1`` explore.

    The share of exploring trials is the share of observed trials that failed: where most of the
    space diverges, the GP sees a plateau of imputed failures and chance-level values, and its
    acquisition drifts to the corners of the box (the variance is largest there); points spread
    over the part of the space that gives values find the narrow region that learns. As the search
    stops failing, the model takes the slots back; an objective that never fails never explores.
    """
    if not request.observations:
        return 0
    share = sum(1 for o in request.observations if not _finite_loss(o)) / len(request.observations)
    first = request.start_index + offset
    return sum(1 for i in range(first, request.start_index + request.n) if (i * GOLDEN) % 1.0 < share)


def exploration_points(request: SuggestRequest, count: int, excluded: set[Hashable]) -> list[Params]:
    """``count`` Sobol' points (a stream apart from the design's) that the success model expects
    to succeed; with fewer than :data:`MIN_FAILURES` failures, simply the next points."""
    space = request.space
    pool = fresh_sobol_params(space, request.seed + EXPLORE_STREAM, request.start_index * EXPLORE_POOL,
                              EXPLORE_POOL * count, set(excluded))
    observations = request.observations
    rng = np.random.default_rng([request.seed, request.start_index, 23])
    limit = int(setting("bayes", request.settings, "maxModelPoints"))  # type: ignore[arg-type]
    if len(observations) > limit:  # the classifier's posterior is O(n³) too: a seeded sample
        observations = [observations[i] for i in np.sort(rng.choice(len(observations), limit, replace=False))]
    ok = np.array([_finite_loss(o) for o in observations])
    if int(np.sum(~ok)) >= MIN_FAILURES and int(np.sum(ok)) >= 1 and pool:
        try:
            with np.errstate(all="ignore"):
                model = SuccessModel(space.encode([o.params for o in observations]), ok, rng, fit_points=FIT_POINTS)
                p_success = np.exp(model.log_prob(space.encode(pool)))
            likely = [i for i in range(len(pool)) if p_success[i] >= 0.5] or [int(np.argmax(p_success))]
            pool = [pool[i] for i in likely]
        except Exception as error:  # numerics: explore unfiltered rather than fail the reconcile
            log.warning("bayes: success model failed (%s: %s); exploring unfiltered", type(error).__name__, error)
    out: list[Params] = []
    for params in pool:
        key = space.key(params)
        if key not in excluded and len(out) < count:
            excluded.add(key)
            out.append(params)
    return out


def _finite_loss(o: Observation) -> bool:
    return o.loss is not None and math.isfinite(o.loss)


def _sobol_fill(request: SuggestRequest, offset: int, count: int, excluded: set[Hashable]) -> list[Params]:
    """``count`` Sobol' points continuing from trial ``start_index + offset``, skipping repeats."""
    return fresh_sobol_params(request.space, request.seed, request.start_index + offset, count, excluded)


def _model_subset(losses: FloatArray, limit: int, rng: np.random.Generator) -> np.ndarray[Any, Any]:
    """Indices of at most ``limit`` observations: the best half by loss, a random sample of the rest."""
    n = losses.shape[0]
    if n <= limit:
        return np.arange(n)
    order = np.argsort(np.where(np.isfinite(losses), losses, np.inf), kind="stable")
    best = order[: limit // 2]
    rest = rng.choice(order[limit // 2 :], size=limit - best.size, replace=False)
    return np.sort(np.concatenate([best, rest]))


def _restore_theta(state: Mapping[str, Any], dim: int) -> Hyperparameters | None:
    theta = state.get("theta")
    if not isinstance(theta, list) or len(theta) != dim + 2:
        return None
    try:
        vector = np.array([float(t) for t in theta])
    except (TypeError, ValueError):
        return None
    return Hyperparameters.from_vector(vector) if np.all(np.isfinite(vector)) else None


def _fit(x: FloatArray, y: FloatArray, warm: Hyperparameters | None, rng: np.random.Generator) -> Hyperparameters:
    dim = x.shape[1]
    subset = _model_subset(y, FIT_POINTS, rng)
    short = Hyperparameters(np.full(dim, math.log(0.3)), 0.0, math.log(1e-3))
    if warm is not None and subset.size >= 60:
        # the previous optimum moves little when a batch is added: polish it, keep a default start
        return fit_hyperparameters(x[subset], y[subset], [warm, Hyperparameters.default(dim)], max_iter=60)
    starts = [Hyperparameters.default(dim), short] + ([warm] if warm is not None else [])
    return fit_hyperparameters(x[subset], y[subset], starts)


def _hedge_probabilities(gains: Sequence[float]) -> FloatArray:
    g = HEDGE_ETA * np.asarray(gains, dtype=float)
    p = np.exp(g - np.max(g))
    return np.asarray(p / p.sum(), dtype=float)


def _restore_hedge(state: Mapping[str, Any], space: Space) -> tuple[list[float], list[Params] | None]:
    gains = state.get("gains")
    if not (isinstance(gains, list) and len(gains) == len(ARMS)):
        gains = [0.0] * len(ARMS)
    nominees = state.get("nominees")
    try:
        valid = [space.validate(p) for p in nominees] if isinstance(nominees, list) else None
    except (SpaceError, TypeError, AttributeError):
        valid = None
    if valid is not None and len(valid) != len(ARMS):
        valid = None
    return [float(g) for g in gains], valid


def _bayes_batch(
    request: SuggestRequest, count: int, excluded: set[Hashable]
) -> tuple[list[Params], dict[str, Any]]:
    space, settings = request.space, request.settings
    rng = np.random.default_rng([request.seed, request.start_index, 17])
    mode = str(setting("bayes", settings, "acquisition"))
    limit = int(setting("bayes", settings, "maxModelPoints"))  # type: ignore[arg-type]

    observations = request.observations
    raw = np.array([o.loss if _finite_loss(o) else np.nan for o in observations], dtype=float)
    keep = _model_subset(raw, limit, rng)
    observations = [observations[i] for i in keep]
    x = space.encode([o.params for o in observations])
    y = targets_from_losses(raw[keep])

    hyper = _fit(x, y, _restore_theta(request.state, space.n_features), rng)
    gp = GaussianProcess(x, y, hyper)
    # Kriging believer: a fantasy observes y = μ(x), and lowers the incumbent when μ(x) is lower;
    # without that, EI and PI would be largest right at the fantasies and a batch would repeat.
    # With constraints the incumbent is the best feasible observation (constrained EI).
    constraints = ConstraintModels.fit(x, [o.constraints for o in observations], request.constraints) \
        if request.constraints else ConstraintModels([])
    usable = np.isfinite(raw[keep])
    if request.constraints:
        usable &= np.array([request.feasible(o) for o in observations])
    any_feasible = bool(np.any(usable))
    best = float(np.min(y[usable])) if any_feasible else float(np.min(y[np.isfinite(raw[keep])]))
    if request.pending:
        pending_x = space.encode(list(request.pending))
        best = min(best, float(np.min(gp.predict(pending_x)[0])))
        gp = gp.with_fantasies(pending_x)
    beta = UpperConfidenceBound.schedule(len(request.observations), space.n_features)

    gains, previous = _restore_hedge(request.state, space)
    if previous is not None:
        mean, _ = gp.predict(space.encode(previous))
        gains = [g - float(m) for g, m in zip(gains, mean, strict=True)]

    anchors = space.to_unit([observations[i].params for i in np.argsort(y, kind="stable")[:N_ANCHORS]])
    optimizer = MixedSpaceOptimizer(space, space.from_unit(candidate_unit_points(space, rng, anchors)), excluded)
    posterior = CandidatePosterior(gp, optimizer.candidates)
    candidate_log_p = constraints.log_p(optimizer.candidates) if constraints else None
    probabilities = _hedge_probabilities(gains)
    nominees: list[Params] | None = previous

    chosen: list[Params] = []
    fantasies: list[FloatArray] = []
    for j in range(count):
        gp_j = gp.with_fantasies(np.array(fantasies)) if fantasies else gp
        arms: dict[str, Acquisition] = {
            "logei": LogExpectedImprovement(best),
            "ucb": UpperConfidenceBound(beta),
            "pi": LogProbabilityOfImprovement(best),
        }
        if candidate_log_p is not None:  # × P(feasible); before any feasible trial, P(feasible) alone
            arms = {name: Constrained(acq if any_feasible else None, constraints, candidate_log_p)
                    for name, acq in arms.items()}
        arm = mode if mode != "hedge" else ARMS[int(rng.choice(len(ARMS), p=probabilities))]
        if mode == "hedge" and j == 0:
            points = {
                name: optimizer.maximize(acq, acq.values(posterior.mean, posterior.var), gp_j)
                for name, acq in arms.items()
            }
            if all(p is not None for p in points.values()):
                nominees = [p.params for p in points.values() if p is not None]
            point = points[arm]
        else:
            acq = arms[arm]
            point = optimizer.maximize(acq, acq.values(posterior.mean, posterior.var), gp_j)
        if point is None:
            break
        chosen.append(point.params)
        optimizer.exclude(point.params)
        fantasies.append(point.features)
        posterior.add_fantasy(point.features)
        best = min(best, float(gp.predict(point.features[None, :])[0][0]))

    state: dict[str, Any] = {"theta": [_round(t) for t in hyper.vector]}
    if mode == "hedge":
        state["gains"] = [_round(g) for g in gains]
        if nominees is not None:
            state["nominees"] = nominees
    return chosen, state


def _loss_vectors(observations: Sequence[Observation]) -> FloatArray:
    """(n, k) losses, a failed trial's row NaN, a partial one (only its first loss) padded with the
    worst observed value of each other objective."""
    k = 1 + max((len(o.losses) for o in observations), default=0)
    rows = [[o.loss, *o.losses] if _finite_loss(o) else [math.nan] * k for o in observations]
    full = np.array([r for r in rows if len(r) == k and all(v is not None and math.isfinite(v) for v in r)],
                    dtype=float).reshape(-1, k)
    worst = full.max(axis=0) if len(full) else np.zeros(k)
    out = np.array([list(r) + list(worst[len(r):]) for r in rows], dtype=float)
    return np.where(np.isfinite(out), out, np.nan)


def _ehvi_batch(
    request: SuggestRequest, count: int, excluded: set[Hashable]
) -> tuple[list[Params], dict[str, Any]]:
    """Several objectives: one GP per objective, the batch by greedy expected hypervolume
    improvement (:mod:`.hypervolume`), each chosen point believed at its posterior mean."""
    space = request.space
    rng = np.random.default_rng([request.seed, request.start_index, 29])
    limit = int(setting("bayes", request.settings, "maxModelPoints"))  # type: ignore[arg-type]
    losses = _loss_vectors(request.observations)
    keep = _model_subset(losses[:, 0], limit, rng)
    observations = [request.observations[i] for i in keep]
    losses = losses[keep]
    x = space.encode([o.params for o in observations])
    k = losses.shape[1]
    targets = np.column_stack([targets_from_losses(losses[:, j]) for j in range(k)])
    thetas = request.state.get("thetas")
    warm = [_restore_theta({"theta": t}, space.n_features) for t in thetas] \
        if isinstance(thetas, list) and len(thetas) == k else [None] * k
    hypers = [_fit(x, targets[:, j], warm[j], rng) for j in range(k)]
    gps = [GaussianProcess(x, targets[:, j], h) for j, h in enumerate(hypers)]

    usable = np.all(np.isfinite(losses), axis=1)
    constraints = ConstraintModels.fit(x, [o.constraints for o in observations], request.constraints) \
        if request.constraints else ConstraintModels([])
    if request.constraints:
        usable &= np.array([request.feasible(o) for o in observations])
    base = targets[usable] if np.any(usable) else targets[np.all(np.isfinite(losses), axis=1)]
    front = base[pareto.non_dominated(base.tolist())]
    spread = np.maximum(base.max(axis=0) - base.min(axis=0), 1e-6)
    reference = front.max(axis=0) + 0.1 * spread
    samples = region_samples(front, base.min(axis=0) - spread, reference, rng)
    if request.pending:
        pending_x = space.encode(list(request.pending))
        for believed in np.column_stack([gp.predict(pending_x)[0] for gp in gps]):
            samples = without_dominated(samples, believed)
        gps = [gp.with_fantasies(pending_x) for gp in gps]

    anchor_rows = np.flatnonzero(usable) if np.any(usable) else np.arange(len(observations))
    order = anchor_rows[pareto.non_dominated(targets[anchor_rows].tolist())][:N_ANCHORS]
    anchors = space.to_unit([observations[i].params for i in order])
    optimizer = MixedSpaceOptimizer(space, space.from_unit(candidate_unit_points(space, rng, anchors)), excluded)
    posteriors = [CandidatePosterior(gp, optimizer.candidates) for gp in gps]
    log_p = constraints.log_p(optimizer.candidates) if constraints else np.zeros(len(optimizer.candidates))
    keys = [space.key(p) for p in optimizer.candidate_params]

    chosen: list[Params] = []
    fantasies: list[FloatArray] = []
    for _ in range(count):
        mean = np.column_stack([p.mean for p in posteriors])
        var = np.column_stack([p.var for p in posteriors])
        score = log_ehvi(mean, var, samples) + log_p
        allowed = np.array([key not in excluded for key in keys])
        score = np.where(allowed & np.isfinite(score), score, -np.inf)
        i = int(np.argmax(score))
        if not np.isfinite(score[i]):
            break
        params, features, believed = optimizer.candidate_params[i], optimizer.candidates[i], mean[i]
        refined = _refine_ehvi(space, params, float(score[i]), gps, fantasies, samples, constraints, excluded, rng)
        if refined is not None:
            params, features, believed = refined
        chosen.append(params)
        excluded.add(space.key(params))
        fantasies.append(features)
        for posterior in posteriors:
            posterior.add_fantasy(features)
        samples = without_dominated(samples, believed)
    return chosen, {"thetas": [[_round(t) for t in h.vector] for h in hypers]}


#: The local refinement of an EHVI pick: rounds of perturbations at shrinking steps (unit cube).
EHVI_REFINE_STEPS = ((0.03, 0.01), (0.01, 0.003), (0.003, 0.001))
EHVI_REFINE_POINTS = 128


def _refine_ehvi(space: Space, params: Params, value: float, gps: list[GaussianProcess],
                 fantasies: list[FloatArray], samples: FloatArray, constraints: ConstraintModels,
                 excluded: set[Hashable], rng: np.random.Generator) -> tuple[Params, FloatArray, FloatArray] | None:
    """A better point near ``params`` by EHVI, if there is one: the gradient-free stand-in for the
    single-objective path's L-BFGS polish (a front is only reached with fine steps)."""
    models = [gp.with_fantasies(np.array(fantasies)) if fantasies else gp for gp in gps]
    best: tuple[Params, FloatArray, FloatArray] | None = None
    centre = space.to_unit([params])[0]
    for steps in EHVI_REFINE_STEPS:
        unit = local_moves(centre, steps, EHVI_REFINE_POINTS, rng)
        trial = [p for p in space.from_unit(unit) if space.key(p) not in excluded]
        if not trial:
            continue
        x = space.encode(trial)
        predictions = [m.predict(x) for m in models]
        mean = np.column_stack([mu for mu, _ in predictions])
        var = np.column_stack([v for _, v in predictions])
        score = log_ehvi(mean, var, samples) + (constraints.log_p(x) if constraints else 0.0)
        j = int(np.argmax(score))
        if np.isfinite(score[j]) and score[j] > value:
            value, best = float(score[j]), (trial[j], x[j], mean[j])
            centre = space.to_unit([trial[j]])[0]
    return best


def _round(value: float) -> float:
    return float(f"{value:.6g}")
