"""Search algorithms behind one interface (:mod:`kubetune.suggest.base`) and their registry.

Pure: no I/O, no Kubernetes. Callers ask :func:`get_suggester` by the name an Experiment gives.
"""

from __future__ import annotations

from collections.abc import Callable

from kubetune.suggest.base import Observation, Suggester, SuggesterError, Suggestion, SuggestRequest
from kubetune.suggest.bayes import BayesSearch
from kubetune.suggest.grid_search import GridSearch
from kubetune.suggest.random_search import RandomSearch
from kubetune.suggest.sobol import SobolSearch
from kubetune.suggest.tpe import TpeSearch

__all__ = [
    "Observation",
    "SuggestRequest",
    "Suggester",
    "SuggesterError",
    "Suggestion",
    "available",
    "get_suggester",
]


_REGISTRY: dict[str, Callable[[], Suggester]] = {
    "random": RandomSearch,
    "grid": GridSearch,
    "sobol": SobolSearch,
    "bayes": BayesSearch,
    "tpe": TpeSearch,
}


def available() -> list[str]:
    return sorted(_REGISTRY)


def get_suggester(name: str) -> Suggester:
    """The suggester registered under ``name``; SuggesterError if there is none."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise SuggesterError(f"unknown algorithm {name!r} (available: {', '.join(available())})") from None
    return factory()
