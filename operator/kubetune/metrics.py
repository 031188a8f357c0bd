"""Reading a trial's metrics: the final JSON report, and declared-name progress lines as a fallback.

Purely computational: callers hand in the text they read (a termination message, a metrics file,
a log) and the exit code; this module decides whether the trial succeeded and says exactly why
not. Only declared metric names count, so a stray ``lr=0.01`` print is never taken for a metric.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from kubetune.api import MetricsSource, Objective, TrialReason
from kubetune.curves import STEP_KEYS, progress_tokens

#: Kubernetes caps a termination message at 4096 bytes; local reports are held to the same limit.
MAX_REPORT_BYTES = 4096
#: Messages stored in a status are cut here (an Event's message is capped at 1 KiB).
MAX_MESSAGE = 1000


class MetricsError(ValueError):
    """A report that cannot be used; ``reason`` goes to ``status.reason``."""

    def __init__(self, reason: TrialReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Outcome:
    """What a finished trial's own output amounts to."""

    succeeded: bool
    reason: TrialReason
    message: str
    metrics: dict[str, float] = field(default_factory=dict)
    objective_value: float | None = None


def clean_text(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` safe to store and print: control characters (NUL, ESC, …) escaped, at most ``limit`` chars."""
    out = []
    for char in text:
        if char in "\t" or not unicodedata.category(char).startswith("C"):
            out.append(char)
        else:
            out.append(f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")
    return "".join(out)[:limit]


def _number(name: str, raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise MetricsError(TrialReason.METRICS_INVALID, f"metric {name!r} is not a number: {raw!r}")
    value = float(raw)
    if not math.isfinite(value):
        raise MetricsError(TrialReason.METRICS_NOT_FINITE, f"metric {name!r} is not finite: {raw!r}")
    return value


def parse_report(text: str, names: Iterable[str]) -> dict[str, float]:
    """The declared metrics of a final JSON report such as ``{"accuracy": 0.91, "loss": 0.31}``.

    Undeclared keys are ignored; a declared key with a non-numeric or non-finite value fails.
    """
    size = len(text.encode())
    if size > MAX_REPORT_BYTES:
        raise MetricsError(TrialReason.REPORT_TOO_LARGE,
                           f"metrics report is {size} bytes, over the {MAX_REPORT_BYTES}-byte limit")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        snippet = text.strip().splitlines()[0][:80] if text.strip() else ""
        raise MetricsError(TrialReason.METRICS_INVALID,
                           f"metrics report is not JSON ({err.msg}): {clean_text(repr(snippet))}") from None
    if not isinstance(data, dict):
        raise MetricsError(TrialReason.METRICS_INVALID,
                           f"metrics report must be a JSON object, got {type(data).__name__}")
    return {name: _number(name, data[name]) for name in names if name in data}


def parse_progress(text: str, names: Iterable[str]) -> dict[str, float]:
    """The last value of each declared metric in progress lines (see :mod:`kubetune.curves`).

    Values that do not parse are skipped here: a log is noisy, and the final report is the
    authority. Non-finite values are kept (and judged by :func:`harvest`).
    """
    wanted = set(names) - set(STEP_KEYS)
    found: dict[str, float] = {}
    for line in text.splitlines():
        for name, raw in progress_tokens(line) or []:
            if name not in wanted:
                continue
            try:
                found[name] = float(raw)
            except ValueError:
                continue
    return found


def last_line(text: str | None, limit: int = 200) -> str:
    """The last non-empty line of some output, cleaned and shortened: the one-line reason a failing script gives."""
    for line in reversed((text or "").splitlines()):
        if line.strip():
            return clean_text(line.strip(), limit)
    return ""


def needs_output(source: MetricsSource, exit_code: int | None, report: str | None) -> bool:
    """Whether the trial's output must be read to judge it (the report alone does not settle it)."""
    if exit_code not in (0, None):
        return True  # the last line is the failure's explanation
    if source is MetricsSource.STDOUT:
        return True
    return source is MetricsSource.BOTH and not (report and report.strip())


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
        return Outcome(False, TrialReason.NON_ZERO_EXIT, message)
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
    missing = [name for name in objective.objective_metrics if name not in metrics]
    if missing:
        where = {
            MetricsSource.TERMINATION_MESSAGE: "in the final report",
            MetricsSource.STDOUT: "on stdout",
            MetricsSource.BOTH: "in the final report or on stdout",
        }[source]
        what = (f"objective metric {missing[0]!r} was" if len(missing) == 1
                else f"objective metrics {', '.join(map(repr, missing))} were")
        return Outcome(False, TrialReason.OBJECTIVE_MISSING, f"{what} not reported {where}", metrics=metrics)
    value = metrics[objective.metric]
    message = f"{objective.metric}={value:g}"
    violations = objective.violations(metrics)
    if violations:
        message += f"; infeasible: {', '.join(violations)}"
    return Outcome(True, TrialReason.COMPLETED, message, metrics=metrics, objective_value=value)
