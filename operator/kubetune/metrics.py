"""Reading a trial's metrics: the final JSON report and declared-name progress lines.

Purely computational: callers hand in the text they read (a termination message, a metrics file,
a log) and the exit code; this module decides whether the trial succeeded and says exactly why
not. Only declared metric names count, so a stray ``lr=0.01`` print is never taken for a metric.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from kubetune.api import MetricsSource, Objective

#: Kubernetes caps a termination message at 4096 bytes; local reports are held to the same limit.
MAX_REPORT_BYTES = 4096
PROGRESS_PREFIX = "kubetune:"

_TOKEN = re.compile(r"^([A-Za-z_][A-Za-z0-9_.\-/]*)=(\S+)$")


class MetricsError(ValueError):
    """A report that cannot be used; ``reason`` is a CamelCase word for ``status.reason``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Outcome:
    """What a finished trial amounts to."""

    succeeded: bool
    reason: str
    message: str
    metrics: dict[str, float] = field(default_factory=dict)
    objective_value: float | None = None


def _number(name: str, raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise MetricsError("MetricsInvalid", f"metric {name!r} is not a number: {raw!r}")
    value = float(raw)
    if not math.isfinite(value):
        raise MetricsError("MetricsNotFinite", f"metric {name!r} is not finite: {raw!r}")
    return value


def parse_report(text: str, names: Iterable[str]) -> dict[str, float]:
    """The declared metrics of a final JSON report such as ``{"accuracy": 0.91, "loss": 0.31}``.

    Undeclared keys are ignored; a declared key with a non-numeric or non-finite value fails.
    """
    size = len(text.encode())
    if size > MAX_REPORT_BYTES:
        raise MetricsError("ReportTooLarge", f"metrics report is {size} bytes, over the {MAX_REPORT_BYTES}-byte limit")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        snippet = text.strip().splitlines()[0][:80] if text.strip() else ""
        raise MetricsError("MetricsInvalid", f"metrics report is not JSON ({err.msg}): {snippet!r}") from None
    if not isinstance(data, dict):
        raise MetricsError("MetricsInvalid", f"metrics report must be a JSON object, got {type(data).__name__}")
    return {name: _number(name, data[name]) for name in names if name in data}


def parse_progress(text: str, names: Iterable[str]) -> dict[str, float]:
    """The last value of each declared metric in progress lines.

    A line counts when it starts with ``kubetune:`` (``kubetune: epoch=3 accuracy=0.84``) or when it
    consists only of ``name=value`` tokens (``accuracy=0.84``). Values that do not parse are skipped
    here: a log is noisy, and the final report is the authority.
    """
    wanted = set(names)
    found: dict[str, float] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(PROGRESS_PREFIX):
            tokens = line[len(PROGRESS_PREFIX):].split()
        else:
            tokens = line.split()
            if not tokens or not all(_TOKEN.match(t) for t in tokens):
                continue
        for token in tokens:
            match = _TOKEN.match(token)
            if not match or match.group(1) not in wanted:
                continue
            try:
                found[match.group(1)] = float(match.group(2))
            except ValueError:
                continue
    return found


def last_line(text: str | None, limit: int = 200) -> str:
    """The last non-empty line of some output, shortened: the one-line reason a failing script gives."""
    for line in reversed((text or "").splitlines()):
        if line.strip():
            return line.strip()[:limit]
    return ""


def harvest(
    *,
    objective: Objective,
    source: MetricsSource,
    exit_code: int | None,
    report: str | None,
    output: str | None,
) -> Outcome:
    """Decide a finished trial's outcome from its exit code, final report and output."""
    if exit_code not in (0, None):
        detail = last_line(output)
        message = f"exited with code {exit_code}" + (f": {detail}" if detail else "")
        return Outcome(False, "NonZeroExit", message)
    names = objective.metric_names
    metrics: dict[str, float] = {}
    try:
        if source in (MetricsSource.TERMINATION_MESSAGE, MetricsSource.BOTH) and report and report.strip():
            metrics = parse_report(report, names)
        elif source in (MetricsSource.STDOUT, MetricsSource.BOTH):
            progress = parse_progress(output or "", names)
            metrics = {name: _number(name, value) for name, value in progress.items()}
    except MetricsError as err:
        return Outcome(False, err.reason, str(err))
    if objective.metric not in metrics:
        where = {
            MetricsSource.TERMINATION_MESSAGE: "in the final report",
            MetricsSource.STDOUT: "on stdout",
            MetricsSource.BOTH: "in the final report or on stdout",
        }[source]
        return Outcome(False, "ObjectiveMissing", f"objective metric {objective.metric!r} was not reported {where}",
                       metrics=metrics)
    value = metrics[objective.metric]
    return Outcome(True, "Completed", f"{objective.metric}={value:g}", metrics=metrics, objective_value=value)
