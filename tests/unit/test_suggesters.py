"""Random, Sobol and grid search: deterministic, valid, and never repeating themselves."""

from __future__ import annotations

import pytest

from kubetune.api import Parameter
from kubetune.space import Space
from kubetune.suggest import Observation, SuggesterError, SuggestRequest, get_suggester

SPACE = Space([
    Parameter(name="lr", type="double", min=1e-4, max=1.0, scale="log"),
    Parameter(name="layers", type="int", min=1, max=3),
    Parameter(name="opt", type="categorical", values=["sgd", "adam"]),
])


def request(n: int, start: int = 0, seed: int = 3, observations: list[Observation] | None = None,
            **settings: int) -> SuggestRequest:
    return SuggestRequest(space=SPACE, observations=observations or [], pending=[], n=n, seed=seed,
                          start_index=start, settings=settings)


@pytest.mark.parametrize("name", ["random", "sobol", "grid"])
def test_same_request_same_suggestions(name: str) -> None:
    suggester = get_suggester(name)
    assert suggester.suggest(request(5)).params == suggester.suggest(request(5)).params


@pytest.mark.parametrize("name", ["random", "sobol"])
def test_continuing_from_start_index_gives_new_points_and_batching_does_not_matter(name: str) -> None:
    suggester = get_suggester(name)
    first, second = suggester.suggest(request(4)).params, suggester.suggest(request(4, start=4)).params
    assert not {SPACE.key(p) for p in first} & {SPACE.key(p) for p in second}
    assert suggester.suggest(request(8)).params == first + second


@pytest.mark.parametrize("name", ["random", "sobol"])
def test_seeds_differ(name: str) -> None:
    suggester = get_suggester(name)
    assert suggester.suggest(request(4, seed=1)).params != suggester.suggest(request(4, seed=2)).params


@pytest.mark.parametrize("name", ["random", "sobol", "grid"])
def test_suggestions_are_valid(name: str) -> None:
    for params in get_suggester(name).suggest(request(30)).params:
        assert SPACE.validate(params) == params


def test_grid_skips_what_was_tried_and_runs_out() -> None:
    grid = get_suggester("grid")
    everything = grid.suggest(request(1000, gridPoints=3)).params
    assert len(everything) == 3 * 3 * 2
    tried = [Observation(p, 0.1) for p in everything[:10]]
    rest = grid.suggest(request(1000, observations=tried, gridPoints=3)).params
    assert rest == everything[10:]


@pytest.mark.parametrize(("name", "settings", "message"), [
    ("random", {"gridPoints": 3}, "algorithm 'random' has no setting 'gridPoints'"),
    ("grid", {"gridPoints": "many"}, "setting 'gridPoints' must be an integer"),
    ("grid", {"gridPoints": 0}, "setting 'gridPoints' must be ≥ 1"),
])
def test_bad_settings_are_named(name: str, settings: dict[str, object], message: str) -> None:
    with pytest.raises(SuggesterError, match=message):
        get_suggester(name).check_settings(settings, SPACE)  # type: ignore[arg-type]


def test_unknown_algorithm_is_a_clear_error() -> None:
    with pytest.raises(SuggesterError, match="unknown algorithm 'hyperband'"):
        get_suggester("hyperband")

