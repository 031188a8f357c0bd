"""Grid search: the full grid in a fixed order, skipping points already tried or pending."""

from __future__ import annotations

from collections.abc import Mapping

from kubetune.api import Params, SettingValue
from kubetune.space import Space
from kubetune.suggest.base import SuggesterError, Suggestion, SuggestRequest, reject_unknown_settings

DEFAULT_POINTS = 5
MAX_GRID = 1_000_000


class GridSearch:
    """``gridPoints`` values per double (and per wide int) parameter; every categorical value."""

    name = "grid"

    def check_settings(self, settings: Mapping[str, SettingValue], space: Space) -> None:
        reject_unknown_settings(self.name, settings, {"gridPoints": int})
        points = int(settings.get("gridPoints", DEFAULT_POINTS))
        if points < 1:
            raise SuggesterError(f"algorithm 'grid': gridPoints must be >= 1, got {points}")
        size = space.grid_size(points)
        if size > MAX_GRID:
            raise SuggesterError(f"algorithm 'grid': the grid has {size} points, more than {MAX_GRID}")

    def suggest(self, request: SuggestRequest) -> Suggestion:
        points = int(request.settings.get("gridPoints", DEFAULT_POINTS))
        space = request.space
        seen = {space.key(o.params) for o in request.observations}
        seen |= {space.key(p) for p in request.pending}
        chosen: list[Params] = []
        for params in space.grid(points):
            if len(chosen) == request.n:
                break
            if space.key(params) not in seen:
                chosen.append(params)
        return Suggestion(chosen)
