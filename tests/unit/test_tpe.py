"""The tpe suggester: valid mixed suggestions, batches, determinism, failures, quality."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kubetune.api import Parameter, Params
from kubetune.space import Space
from kubetune.suggest import get_suggester
from kubetune.suggest.base import Observation, SuggesterError, SuggestRequest
from kubetune.suggest.tpe import ParzenEstimator, TpeSearch

SPACE = Space([
    Parameter(name="x1", type="double", min=-5, max=10),
    Parameter(name="x2", type="double", min=0, max=15),
])
MIXED = Space([
    Parameter(name="lr", type="double", min=1e-4, max=1.0, scale="log"),
    Parameter(name="layers", type="int", min=1, max=6),
    Parameter(name="optimizer", type="categorical", values=["sgd", "adam", "rmsprop"]),
])


def branin(p: Params) -> float:
    x1, x2 = float(p["x1"]), float(p["x2"])
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def mixed_loss(p: Params) -> float:
    bonus = {"sgd": 0.5, "adam": 0.0, "rmsprop": 0.2}[str(p["optimizer"])]
    return (math.log10(float(p["lr"])) + 2.5) ** 2 + 0.1 * (int(p["layers"]) - 3) ** 2 + bonus


def request(space: Space, observations: list[Observation], n: int, seed: int = 0, **kw: object) -> SuggestRequest:
    return SuggestRequest(
        space=space, observations=observations, pending=kw.get("pending", []),  # type: ignore[arg-type]
        n=n, seed=seed, start_index=len(observations),
    )


def observe(space: Space, f: object, n: int, seed: int = 0) -> list[Observation]:
    rng = np.random.default_rng(seed)
    return [Observation(p, f(p)) for p in space.from_unit(rng.random((n, space.dim)))]  # type: ignore[operator]


def test_registry_serves_tpe_and_checks_settings() -> None:
    suggester = get_suggester("tpe")
    suggester.check_settings({"initialTrials": 5, "gamma": 0.2, "candidates": 48}, SPACE)
    for bad in ({"gamma": 1.5}, {"initialTrials": 0}, {"candidates": 0}, {"bandwidth": 1.0}):
        with pytest.raises(SuggesterError):
            suggester.check_settings(bad, SPACE)  # type: ignore[arg-type]


def test_parzen_density_integrates_to_one() -> None:
    rng = np.random.default_rng(0)
    estimator = ParzenEstimator(SPACE, rng.random((5, 2)), 0.1)
    grid = (np.stack(np.meshgrid(np.linspace(0, 1, 201), np.linspace(0, 1, 201)), -1).reshape(-1, 2))
    assert abs(float(np.mean(np.exp(estimator.log_pdf(grid)))) - 1.0) < 0.02


def test_same_request_same_suggestions_valid_and_new() -> None:
    observations = observe(MIXED, mixed_loss, 20)
    pending = MIXED.from_unit(np.random.default_rng(5).random((2, MIXED.dim)))
    a = TpeSearch().suggest(request(MIXED, observations, 6, seed=3, pending=pending))
    b = TpeSearch().suggest(request(MIXED, observations, 6, seed=3, pending=pending))
    assert a.params == b.params and len(a.params) == 6
    for p in a.params:
        assert MIXED.validate(p) == p
    keys = [MIXED.key(p) for p in a.params]
    seen = {MIXED.key(o.params) for o in observations} | {MIXED.key(p) for p in pending}
    assert len(set(keys)) == 6 and not set(keys) & seen


def test_failed_region_is_avoided() -> None:
    observations: list[Observation] = []
    suggester = TpeSearch()
    for _ in range(8):
        for p in suggester.suggest(request(SPACE, observations, 5, seed=1)).params:
            observations.append(Observation(p, None if float(p["x1"]) < 0.0 else branin(p)))
    later = observations[20:]
    assert sum(o.failed for o in later) <= len(later) // 3


def test_tpe_beats_random_on_branin() -> None:
    tpe_best, random_best = [], []
    for seed in range(5):
        observations: list[Observation] = []
        for _ in range(10):
            for p in TpeSearch().suggest(request(SPACE, observations, 4, seed=seed)).params:
                observations.append(Observation(p, branin(p)))
        tpe_best.append(min(float(o.loss or 0) for o in observations))
        random_best.append(min(float(o.loss or 0) for o in observe(SPACE, branin, 40, seed=50 + seed)))
    assert np.median(tpe_best) < np.median(random_best)
