"""The bayes suggester: GP maths, acquisitions, mixed-space suggestions, batches, state, quality."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable

import numpy as np
import pytest

from kubetune.api import Parameter, Params
from kubetune.space import Space
from kubetune.suggest import get_suggester
from kubetune.suggest.base import Observation, SuggesterError, SuggestRequest, tried_keys
from kubetune.suggest.bayes import BayesSearch
from kubetune.suggest.bayes.acquisition import (
    LogExpectedImprovement,
    LogProbabilityOfImprovement,
    UpperConfidenceBound,
    log_h,
)
from kubetune.suggest.bayes.feasibility import SuccessModel
from kubetune.suggest.bayes.gp import (
    CandidatePosterior,
    GaussianProcess,
    Hyperparameters,
    fit_hyperparameters,
    neg_log_posterior,
)
from kubetune.suggest.bayes.suggester import exploration_points, exploration_slots
from kubetune.suggest.bayes.transform import targets_from_losses


def branin(p: Params) -> float:
    x1, x2 = float(p["x1"]), float(p["x2"])
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


BRANIN = Space([
    Parameter(name="x1", type="double", min=-5, max=10),
    Parameter(name="x2", type="double", min=0, max=15),
])
MIXED = Space([
    Parameter(name="lr", type="double", min=1e-4, max=1.0, scale="log"),
    Parameter(name="layers", type="int", min=1, max=6),
    Parameter(name="width", type="int", min=16, max=512, scale="log"),
    Parameter(name="optimizer", type="categorical", values=["sgd", "adam", "rmsprop"]),
])


def mixed_loss(p: Params) -> float:
    bonus = {"sgd": 0.5, "adam": 0.0, "rmsprop": 0.2}[str(p["optimizer"])]
    return (math.log10(float(p["lr"])) + 2.5) ** 2 + 0.1 * (int(p["layers"]) - 3) ** 2 + bonus


def request(space: Space, observations: list[Observation], n: int = 4, seed: int = 0, **kw: object) -> SuggestRequest:
    defaults: dict[str, object] = {"pending": [], "state": {}, "settings": {}, "start_index": len(observations)}
    defaults.update(kw)
    return SuggestRequest(
        space=space, observations=observations, n=n, seed=seed, **defaults  # type: ignore[arg-type]
    )


def observe(space: Space, f: Callable[[Params], float], n: int, seed: int = 0) -> list[Observation]:
    rng = np.random.default_rng(seed)
    return [Observation(p, f(p)) for p in space.from_unit(rng.random((n, space.dim)))]


def run(space: Space, f: Callable[[Params], float], rounds: int, batch: int, seed: int) -> list[Observation]:
    suggester, observations, state = BayesSearch(), [], {}
    for _ in range(rounds):
        s = suggester.suggest(request(space, observations, n=batch, seed=seed, state=state))
        state = s.state
        observations += [Observation(p, f(p)) for p in s.params]
    return observations


# --- GP maths ----------------------------------------------------------------------------------


def toy_gp(noise: float = 1e-6) -> GaussianProcess:
    x = np.linspace(0.1, 0.5, 5)[:, None]
    y = np.sin(6 * x[:, 0])
    return GaussianProcess(x, y, Hyperparameters(np.array([math.log(0.2)]), 0.0, math.log(noise)))


def test_gp_interpolates_noiseless_data_with_small_variance_there() -> None:
    gp = toy_gp()
    mean, var = gp.predict(gp.x)
    np.testing.assert_allclose(mean, gp.y, atol=1e-4)
    assert np.all(var < 1e-4)


def test_gp_variance_grows_far_from_data() -> None:
    _, var = toy_gp().predict(np.array([[0.3], [1.0]]))
    assert var[0] < 1e-2 < 0.5 < var[1]


def test_gp_gradients_match_finite_differences() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.random((12, 3)), rng.normal(size=12)
    gp = GaussianProcess(x, y, Hyperparameters(np.log([0.3, 0.5, 0.8]), 0.2, math.log(1e-3)))
    xq = rng.random((4, 3))
    _, _, dmean, dvar = gp.predict_with_grad(xq)
    eps = 1e-6
    for d in range(3):
        shift = np.zeros(3)
        shift[d] = eps
        (m1, v1), (m0, v0) = gp.predict(xq + shift), gp.predict(xq - shift)
        np.testing.assert_allclose(dmean[:, d], (m1 - m0) / (2 * eps), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(dvar[:, d], (v1 - v0) / (2 * eps), rtol=1e-4, atol=1e-6)


def test_marginal_likelihood_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.random((15, 3)), rng.normal(size=15)
    theta = np.array([-1.0, -0.5, 0.3, 0.1, -3.0])
    _, grad = neg_log_posterior(theta, x, y)
    eps = 1e-6
    numeric = [
        (neg_log_posterior(theta + eps * e, x, y)[0] - neg_log_posterior(theta - eps * e, x, y)[0]) / (2 * eps)
        for e in np.eye(theta.size)
    ]
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-5)


def test_fit_learns_short_lengthscale_for_the_relevant_feature() -> None:
    rng = np.random.default_rng(2)
    x = rng.random((40, 2))
    y = np.sin(8 * x[:, 0])
    hyper = fit_hyperparameters(x, (y - y.mean()) / y.std(), [Hyperparameters.default(2)])
    assert hyper.log_lengthscales[0] < hyper.log_lengthscales[1]


def test_candidate_posterior_equals_refitting_with_fantasies() -> None:
    rng = np.random.default_rng(3)
    gp = GaussianProcess(rng.random((10, 2)), rng.normal(size=10), Hyperparameters(np.log([0.3, 0.4]), 0.0, -5.0))
    candidates, fantasies = rng.random((20, 2)), rng.random((3, 2))
    posterior = CandidatePosterior(gp, candidates)
    for f in fantasies:
        posterior.add_fantasy(f)
    mean, var = gp.with_fantasies(fantasies).predict(candidates)
    np.testing.assert_allclose(posterior.mean, mean, atol=1e-8)
    np.testing.assert_allclose(posterior.var, var, atol=1e-8)


def test_targets_tame_heavy_tails_and_rank_failures_worst() -> None:
    losses = np.array([1.0, 1.1, 0.9, 1.2, 1e6, np.nan])
    y = targets_from_losses(losses)
    assert np.all(np.isfinite(y))
    assert y[5] == y.max() and y[4] < y[5]
    assert np.std(y[:4]) > 0.1  # the outlier did not squash the rest to one value


# --- acquisitions ------------------------------------------------------------------------------


def test_log_h_is_finite_and_continuous_over_a_wide_range() -> None:
    u = np.concatenate([-np.logspace(4, -3, 200), np.linspace(-1.001, 30, 200)])
    values = log_h(np.sort(u))
    assert np.all(np.isfinite(values))
    assert np.all(np.diff(values) > 0)  # h is increasing
    np.testing.assert_allclose(log_h(np.array([-1.0 - 1e-9, -1.0 + 1e-9])), log_h(np.array([-1.0, -1.0])), atol=1e-6)


@pytest.mark.parametrize(
    "acq", [LogExpectedImprovement(-0.5), LogProbabilityOfImprovement(-0.5), UpperConfidenceBound(2.0)],
    ids=lambda a: a.name,
)
def test_acquisition_gradients_match_finite_differences(acq: object) -> None:
    assert isinstance(acq, LogExpectedImprovement | LogProbabilityOfImprovement | UpperConfidenceBound)
    rng = np.random.default_rng(4)
    gp = GaussianProcess(rng.random((10, 2)), rng.normal(size=10), Hyperparameters(np.log([0.3, 0.4]), 0.0, -5.0))
    xq = np.vstack([rng.random((5, 2)), [[3.0, 3.0]]])  # one point far away: EI there is ~1e-30
    values, grads = acq.value_and_grad(gp, xq)
    assert np.all(np.isfinite(values)) and np.all(np.isfinite(grads))
    eps = 1e-6
    for d in range(2):
        shift = np.zeros(2)
        shift[d] = eps
        numeric = (acq(gp, xq + shift) - acq(gp, xq - shift)) / (2 * eps)
        np.testing.assert_allclose(grads[:, d], numeric, rtol=1e-3, atol=1e-6)


# --- suggestions -------------------------------------------------------------------------------


def test_registry_serves_bayes_and_checks_settings() -> None:
    suggester = get_suggester("bayes")
    suggester.check_settings({"initialTrials": 4, "acquisition": "logei", "maxModelPoints": 300}, BRANIN)
    bad_settings = (
        {"initialTrials": 0}, {"acquisition": "ei"}, {"maxModelPoints": 5}, {"beta": 1.0}, {"initialTrials": "4"}
    )
    for bad in bad_settings:
        with pytest.raises(SuggesterError):
            suggester.check_settings(bad, BRANIN)  # type: ignore[arg-type]


def test_initial_design_is_sobol_continued_by_start_index() -> None:
    first = BayesSearch().suggest(request(BRANIN, [], n=3))
    whole = BayesSearch().suggest(request(BRANIN, [], n=5))
    assert first.params == whole.params[:3]


def test_same_request_same_suggestions() -> None:
    observations = observe(MIXED, mixed_loss, 12)
    a = BayesSearch().suggest(request(MIXED, observations, n=4, seed=7))
    b = BayesSearch().suggest(request(MIXED, observations, n=4, seed=7))
    assert a.params == b.params and a.state == b.state


def test_mixed_suggestions_are_valid_distinct_and_new() -> None:
    observations = observe(MIXED, mixed_loss, 14)
    pending = MIXED.from_unit(np.random.default_rng(9).random((3, MIXED.dim)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the model path, not the Sobol' fallback
        s = BayesSearch().suggest(request(MIXED, observations, n=8, pending=pending))
    assert len(s.params) == 8
    for p in s.params:
        assert MIXED.validate(p) == p
    keys = [MIXED.key(p) for p in s.params]
    seen = {MIXED.key(o.params) for o in observations} | {MIXED.key(p) for p in pending}
    assert len(set(keys)) == 8 and not set(keys) & seen


def test_small_discrete_space_is_exhausted_without_repeats() -> None:
    space = Space([
        Parameter(name="a", type="int", min=0, max=2),
        Parameter(name="b", type="categorical", values=["x", "y"]),
    ])
    observations = [Observation(p, float(p["a"])) for p in space.grid(5)][:4]
    s = BayesSearch().suggest(request(space, observations, n=5))
    keys = {space.key(p) for p in s.params}
    assert len(keys) == len(s.params) == 2
    assert not keys & {space.key(o.params) for o in observations}


def test_region_that_always_fails_gets_few_suggestions() -> None:
    def loss(p: Params) -> float | None:
        return None if float(p["x1"]) > 2.5 else branin(p)

    suggester, observations, state = BayesSearch(), [], {}
    for _ in range(6):
        s = suggester.suggest(request(BRANIN, observations, n=4, seed=3, state=state))
        state = s.state
        observations += [Observation(p, loss(p)) for p in s.params]
    later = observations[12:]
    failed = sum(o.failed for o in later)
    assert failed <= len(later) // 4


def test_no_trial_explores_while_nothing_fails() -> None:
    observations = observe(BRANIN, branin, 30)
    assert all(exploration_slots(request(BRANIN, observations, n=k), 0) == 0 for k in (1, 4, 16))


@pytest.mark.parametrize("share", [0.25, 0.5, 0.8])
def test_the_share_of_exploring_trials_is_the_share_of_failed_ones(share: float) -> None:
    rng = np.random.default_rng(1)
    observations = [Observation(p, None if rng.random() < share else branin(p))
                    for p in BRANIN.from_unit(rng.random((400, 2)))]
    failed = sum(o.failed for o in observations) / len(observations)
    counted = exploration_slots(request(BRANIN, observations, n=1000), 0)
    assert abs(counted / 1000 - failed) < 0.01
    # decided by the trial index alone: asking in one batch or one at a time gives the same slots
    one_by_one = sum(exploration_slots(request(BRANIN, observations, n=1, start_index=i), 0)
                     for i in range(400, 1400))
    assert one_by_one == counted


def test_success_model_is_low_where_trials_failed_and_high_where_they_gave_values() -> None:
    x = np.random.default_rng(2).random((60, 2))
    ok = x[:, 0] < 0.4
    model = SuccessModel(x, ok, np.random.default_rng(0))
    p = np.exp(model.log_prob(np.array([[0.1, 0.5], [0.9, 0.5]])))
    assert p[0] > 0.8 and p[1] < 0.2


def test_exploration_points_avoid_the_region_that_fails_and_are_new() -> None:
    # Most of the box fails (x1 > 0); the rest sits on a noisy plateau. Exploring points are
    # Sobol' points of the part that gives values, never a repeat of an observed one.
    def loss(p: Params) -> float | None:
        return None if float(p["x1"]) > 0 else -0.1 - 0.02 * math.sin(37 * float(p["x2"]))

    observations = [Observation(p, loss(p)) for p in BRANIN.from_unit(np.random.default_rng(4).random((40, 2)))]
    req = request(BRANIN, observations, n=12)
    points = exploration_points(req, 12, tried_keys(req))
    assert len(points) == 12
    assert len({BRANIN.key(p) for p in points} | {BRANIN.key(o.params) for o in observations}) == 52
    assert sum(float(p["x1"]) <= 0.5 for p in points) >= 11  # a third of the box holds 11 of 12
    # unfiltered, a Sobol' stream would put two thirds of them where trials fail
    assert sum(float(p["x1"]) > 0 for p in BRANIN.from_unit(np.random.default_rng(5).random((1200, 2)))) > 700


def test_exploration_with_thousands_of_failed_trials_models_a_bounded_sample() -> None:
    rng = np.random.default_rng(6)
    observations = [Observation(p, None if float(p["x1"]) > 0 else branin(p))
                    for p in BRANIN.from_unit(rng.random((3000, 2)))]
    req = request(BRANIN, observations, n=4, settings={"maxModelPoints": 300})
    points = exploration_points(req, 4, tried_keys(req))
    assert len(points) == 4 and all(float(p["x1"]) <= 0.5 for p in points)


def test_all_failed_falls_back_to_sobol() -> None:
    observations = [Observation(p, None) for p in BRANIN.from_unit(np.random.default_rng(0).random((6, 2)))]
    s = BayesSearch().suggest(request(BRANIN, observations, n=3))
    assert len(s.params) == 3


def test_state_round_trips_as_small_json_with_2000_observations() -> None:
    observations = observe(MIXED, mixed_loss, 2000)
    s = BayesSearch().suggest(request(MIXED, observations, n=2, settings={"maxModelPoints": 200}))
    text = json.dumps(s.state)
    assert len(text) < 4096
    settings = {"maxModelPoints": 200}
    again = BayesSearch().suggest(request(MIXED, observations, n=2, settings=settings, state=json.loads(text)))
    assert len(again.params) == 2


def test_bayes_beats_random_on_branin() -> None:
    optimum = 0.397887
    bayes_regret, random_regret = [], []
    for seed in range(5):
        observations = run(BRANIN, branin, rounds=10, batch=2, seed=seed)
        bayes_regret.append(min(o.loss for o in observations if o.loss is not None) - optimum)
        rand = observe(BRANIN, branin, 20, seed=100 + seed)
        random_regret.append(min(o.loss for o in rand if o.loss is not None) - optimum)
    # typical medians: bayes ≈ 0.05, random ≈ 1.6 after 20 evaluations
    assert np.median(bayes_regret) < 0.25 * np.median(random_regret)
