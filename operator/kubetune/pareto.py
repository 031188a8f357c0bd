"""Pareto fronts of loss vectors: who is non-dominated, and which spread of them to keep.

Pure, numpy only. Every vector is a tuple of *losses* (smaller is better on every axis; the
objective's ``losses`` turns maximized metrics around). ``a`` dominates ``b`` when it is no worse
on every axis and better on one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def non_dominated(points: Sequence[Sequence[float]]) -> list[int]:
    """Indexes of the points no other point dominates, in input order (equal points are all kept:
    neither beats the other)."""
    if not len(points):
        return []
    y = np.asarray(points, dtype=float).reshape(len(points), -1)
    keep: list[int] = []
    for i in range(len(y)):
        no_worse = np.all(y <= y[i], axis=1)
        better = np.any(y < y[i], axis=1)
        if not np.any(no_worse & better):
            keep.append(i)
    return keep


def crowding_distance(points: Sequence[Sequence[float]]) -> FloatArray:
    """NSGA-II's crowding distance of each point (the ends of every axis get infinity)."""
    if len(points) <= 2:
        return np.full(len(points), np.inf)
    y = np.asarray(points, dtype=float).reshape(len(points), -1)
    n, m = y.shape
    distance = np.zeros(n)
    for axis in range(m):
        order = np.argsort(y[:, axis], kind="stable")
        span = y[order[-1], axis] - y[order[0], axis]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (y[order[2:], axis] - y[order[:-2], axis]) / span
    return distance


def spread(points: Sequence[Sequence[float]], limit: int) -> list[int]:
    """At most ``limit`` indexes of ``points`` (a front), chosen to keep its spread: the points
    with the smallest crowding distance are dropped one at a time. In input order."""
    kept = list(range(len(points)))
    while len(kept) > limit:
        distance = crowding_distance([points[i] for i in kept])
        kept.pop(int(np.argmin(distance)))
    return kept
