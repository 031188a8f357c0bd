"""Grid search: the full grid in a fixed order, skipping points already tried or pending."""

from __future__ import annotations

from collections.abc import Mapping

from kubetune.api import Params, SettingValue, setting
from kubetune.space import Space
from kubetune.suggest.base import SuggesterError, Suggestion, SuggestRequest, check_table_settings

MAX_GRID = 1_000_000


class GridSearch:
    """``gridPoints`` values per double (and per wide int) parameter; every categorical value."""

    name = "grid"

    def check_settings(self, settings: Mapping[str, SettingValue], space: Space) -> None:
        check_table_settings(self.name, settings)
        points = int(setting(self.name, settings, "gridPoints"))  # type: ignore[arg-type]
        size = space.grid_size(points)
        if size > MAX_GRID:
            raise SuggesterError(f"algorithm 'grid': the grid has {size} points, more than {MAX_GRID}")

    def suggest(self, request: SuggestRequest) -> Suggestion:
        points = int(setting(self.name, request.settings, "gridPoints"))  # type: ignore[arg-type]
        space = request.space
        seen = {space.key(o.params) for o in request.observations}
        seen |= {space.key(p) for p in request.pending}
        chosen: list[Params] = []
        for params in space.grid(points):
            if len(chosen) == request.n:
                break
            key = space.key(params)  # with conditions: points that differ only where inactive are one point
            if key not in seen:
                seen.add(key)
                chosen.append(params)
        return Suggestion(chosen)
