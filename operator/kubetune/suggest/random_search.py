"""Random search: independent uniform draws in the unit cube (log-uniform where ``scale: log``)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from kubetune.api import SettingValue
from kubetune.space import Space
from kubetune.suggest.base import Suggestion, SuggestRequest, check_table_settings


class RandomSearch:
    name = "random"

    def check_settings(self, settings: Mapping[str, SettingValue], space: Space) -> None:
        check_table_settings(self.name, settings)

    def suggest(self, request: SuggestRequest) -> Suggestion:
        # Seeded by (seed, start_index): the i-th trial's draw does not depend on how the
        # trials were batched, and a restarted operator draws the same points again.
        rows = [
            np.random.default_rng([request.seed, request.start_index + i]).random(request.space.dim)
            for i in range(request.n)
        ]
        return Suggestion(request.space.from_unit(np.array(rows).reshape(request.n, request.space.dim)))
