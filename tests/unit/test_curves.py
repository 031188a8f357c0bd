"""Learning curves: progress lines to points, merged in step order, bounded in size."""

from __future__ import annotations

import pytest

from kubetune.api import MAX_CURVE_POINTS, CurvePoint
from kubetune.curves import merge, parse_points, thin

NAMES = ["accuracy", "loss"]


def point(step: int, **metrics: float | None) -> CurvePoint:
    return CurvePoint(step=step, metrics={k: v for k, v in metrics.items() if v is not None},
                      non_finite=[k for k, v in metrics.items() if v is None])


@pytest.mark.parametrize(("lines", "after", "expected"), [
    (["kubetune: epoch=3 accuracy=0.84 loss=0.5"], None, [point(3, accuracy=0.84, loss=0.5)]),
    (["kubetune: step=7 accuracy=0.5"], None, [point(7, accuracy=0.5)]),
    (["accuracy=0.5 loss=1"], None, [point(0, accuracy=0.5, loss=1.0)]),
    (["kubetune: accuracy=0.5", "kubetune: accuracy=0.6"], 4, [point(5, accuracy=0.5), point(6, accuracy=0.6)]),
    (["kubetune: epoch=2 lr=0.01"], None, []),  # only declared metrics make a point
    (["epoch 3: accuracy=0.9", "Loss is 0.3"], None, []),  # prose is not a progress line
    (["kubetune: epoch=1 accuracy=nan", "kubetune: epoch=2 accuracy=inf loss=2"], None,
     [point(1, accuracy=None), point(2, accuracy=None, loss=2.0)]),
    (["kubetune: epoch=1 accuracy=high loss=0.7"], None, [point(1, loss=0.7)]),  # unreadable value skipped
    (["kubetune: epoch=1.5 accuracy=0.3"], 1, [point(2, accuracy=0.3)]),  # not a whole step: one past the last
])
def test_parse_points(lines: list[str], after: int | None, expected: list[CurvePoint]) -> None:
    assert parse_points(lines, NAMES, after=after) == expected


def test_merge_keeps_step_order_replaces_a_repeated_step_and_ignores_going_back() -> None:
    curve = [point(1, accuracy=0.1), point(2, accuracy=0.2)]
    merged = merge(curve, [point(2, accuracy=0.25), point(1, accuracy=0.9), point(3, accuracy=0.3)])
    assert merged == [point(1, accuracy=0.1), point(2, accuracy=0.25), point(3, accuracy=0.3)]


def test_a_long_curve_is_thinned_evenly_keeping_first_last_and_protected_points() -> None:
    curve: list[CurvePoint] = []
    for step in range(1, 1001):
        curve = merge(curve, [point(step, accuracy=step / 1000)], protect={3, 777})
    steps = [p.step for p in curve]
    assert len(curve) <= MAX_CURVE_POINTS
    assert steps[0] == 1 and steps[-1] == 1000 and {3, 777} <= set(steps)
    assert steps == sorted(steps)
    # spread over the whole run: every tenth of it keeps some points
    assert all(any(lo < s <= lo + 100 for s in steps) for lo in range(0, 1000, 100))


def test_thin_leaves_a_short_curve_alone() -> None:
    curve = [point(s, accuracy=0.1) for s in range(10)]
    assert thin(curve, limit=10) == curve
