"""Sobol' search: a scrambled low-discrepancy sequence (scipy.stats.qmc), continued across calls."""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping

import numpy as np
from scipy.stats import qmc

from kubetune.api import Params, SettingValue
from kubetune.space import FloatArray, Space
from kubetune.suggest.base import Suggestion, SuggestRequest, check_table_settings


def sobol_points(dim: int, seed: int, start: int, n: int) -> FloatArray:
    """Points ``start .. start+n-1`` of the scrambled Sobol' sequence, shape ``(n, dim)``."""
    with warnings.catch_warnings():
        # scipy warns when n is not a power of two; a continued sequence is still low-discrepancy
        warnings.simplefilter("ignore", UserWarning)
        engine = qmc.Sobol(d=dim, scramble=True, rng=np.random.default_rng(seed))
        if start:
            engine.fast_forward(start)
        return np.asarray(engine.random(n), dtype=float)


def fresh_sobol_params(space: Space, seed: int, start: int, count: int,
                       excluded: set[Hashable]) -> list[Params]:
    """``count`` Sobol' assignments from trial ``start`` on, skipping (and adding to) ``excluded``.

    Snapping to ints and categories can map several points to one assignment; more of the
    sequence is drawn until ``count`` new ones are found (four tries, then fewer are returned).
    """
    out: list[Params] = []
    for attempt in range(4):
        if len(out) >= count:
            break
        block = sobol_points(space.dim, seed, start, (count - len(out)) * (1 + attempt) + 4)
        start += len(block)
        for params in space.from_unit(block):
            key = space.key(params)
            if key not in excluded and len(out) < count:
                excluded.add(key)
                out.append(params)
    return out


class SobolSearch:
    name = "sobol"

    def check_settings(self, settings: Mapping[str, SettingValue], space: Space) -> None:
        check_table_settings(self.name, settings)

    def suggest(self, request: SuggestRequest) -> Suggestion:
        points = sobol_points(request.space.dim, request.seed, request.start_index, request.n)
        return Suggestion(request.space.from_unit(points))
