"""Learning curves: a trial's progress lines turned into points, merged into a bounded curve.

Purely computational: callers hand in the text they read (new lines of a log, a whole log) and
the curve they hold; no I/O.

A progress line is what ``kubetune.report.report_progress`` prints, ``kubetune: epoch=3
accuracy=0.84 loss=0.5``, or a line of nothing but ``name=value`` tokens. Its step is the value
of ``epoch`` or ``step`` (a whole number ≥ 0); a line without one is one step past the last
point. Only declared metric names count, and a line that carries none of them is not a point. A
non-finite value (``nan``, ``inf``) is kept by name in the point's ``nonFinite`` list (JSON has no
NaN): a diverging trial shows in its curve.

A curve holds at most :data:`kubetune.api.MAX_CURVE_POINTS` points, in increasing step order.
When it would grow past that, it keeps the points on a stride of steps (the first and the last
always, and the points a stopping rule is judged by), so its shape survives any number of epochs
at a bounded size.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Iterator, Sequence

from kubetune.api import MAX_CURVE_POINTS, CurvePoint

PROGRESS_PREFIX = "kubetune:"
STEP_KEYS = ("epoch", "step")

_TOKEN = re.compile(r"^([A-Za-z_][A-Za-z0-9_.\-/]*)=(\S+)$")


def progress_tokens(line: str) -> list[tuple[str, str]] | None:
    """The ``(name, text)`` tokens of a progress line, or None when the line is not one."""
    line = line.strip()
    if line.startswith(PROGRESS_PREFIX):
        tokens = line[len(PROGRESS_PREFIX):].split()
        matches = [_TOKEN.match(t) for t in tokens]
        return [(m.group(1), m.group(2)) for m in matches if m]
    tokens = line.split()
    if not tokens:
        return None
    matches = [_TOKEN.match(t) for t in tokens]
    if not all(matches):
        return None
    return [(m.group(1), m.group(2)) for m in matches if m]


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _step(tokens: Sequence[tuple[str, str]]) -> int | None:
    for name, text in tokens:
        if name in STEP_KEYS:
            value = _number(text)
            if value is not None and math.isfinite(value) and value >= 0 and value == int(value):
                return int(value)
    return None


def parse_points(lines: Iterable[str], names: Collection[str], *, after: int | None = None) -> list[CurvePoint]:
    """The points in ``lines`` (in order); ``after`` is the step of the last point already held."""
    points: list[CurvePoint] = []
    last = after
    for line in lines:
        tokens = progress_tokens(line)
        if not tokens:
            continue
        metrics: dict[str, float] = {}
        non_finite: list[str] = []
        for name, text in tokens:
            if name in names and name not in STEP_KEYS:
                value = _number(text)
                if value is None:
                    continue  # a log is noisy: an unreadable value is skipped, not fatal
                if math.isfinite(value):
                    metrics[name] = value
                elif name not in non_finite:
                    non_finite.append(name)
        if not metrics and not non_finite:
            continue
        step = _step(tokens)
        if step is None:
            step = 0 if last is None else last + 1
        points.append(CurvePoint(step=step, metrics=metrics, non_finite=non_finite))
        last = step
    return points


def merge(curve: Sequence[CurvePoint], new: Iterable[CurvePoint], *, protect: Collection[int] = (),
          limit: int = MAX_CURVE_POINTS) -> list[CurvePoint]:
    """``curve`` with ``new`` points added, in step order, thinned to ``limit`` points.

    A point for a step the curve already holds replaces it (the same line read twice); a point
    for an earlier step than the last is ignored (a curve only moves forward). ``protect``: steps
    thinning must keep.
    """
    points = list(curve)
    for point in new:
        if points and point.step < points[-1].step:
            continue
        if points and point.step == points[-1].step:
            points[-1] = point
        else:
            points.append(point)
    return thin(points, limit=limit, protect=protect)


def thin(points: Sequence[CurvePoint], *, limit: int = MAX_CURVE_POINTS,
         protect: Collection[int] = ()) -> list[CurvePoint]:
    """At most ``limit`` points: those on a stride of steps, plus the first, the last and ``protect``.

    The stride is the smallest power of two (in units of the curve's step granularity) whose
    points fit. Points already on a coarser stride stay on it, so repeated thinning never eats
    into the start of a curve: older parts end up evenly spaced at the coarsest stride used.
    """
    kept = list(points)
    if len(kept) <= limit:
        return kept
    first = kept[0].step
    unit = 0
    for p in kept[1:]:
        unit = math.gcd(unit, p.step - first)
    stride = 2 * (unit or 1)
    last = len(kept) - 1
    while True:
        candidate = [p for i, p in enumerate(kept)
                     if i in (0, last) or p.step in protect or (p.step - first) % stride == 0]
        if len(candidate) <= limit or len(candidate) == len([p for p in candidate if p.step in protect]) + 2:
            return candidate
        stride *= 2


def values(curve: Sequence[CurvePoint], metric: str) -> Iterator[tuple[int, float]]:
    """``(step, value)`` of every point that has ``metric``; a non-finite value comes out as nan."""
    for point in curve:
        if metric in point.metrics:
            yield point.step, point.metrics[metric]
        elif metric in point.non_finite:
            yield point.step, math.nan


def last_metrics(curve: Sequence[CurvePoint]) -> dict[str, float]:
    """The finite metrics of the last point (what a stopped trial had reached)."""
    if not curve:
        return {}
    return dict(curve[-1].metrics)
