"""One row per trial: the columns of :meth:`kubetune.client.Client.trials_frame` (a pandas frame) and
of any other table of an experiment's trials. Pure: models in, plain dicts out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kubetune.api import ExperimentSpec, Trial, parse_rfc3339, seconds_between


def trial_columns(spec: ExperimentSpec, trials: Sequence[Trial] = ()) -> list[str]:
    """name, index, phase, reason, objective, ``params_<p>`` each, ``metrics_<m>`` each, times, duration."""
    metrics = [spec.objective.metric, *spec.objective.additional_metrics]
    extra = sorted({m for t in trials for m in t.status.metrics} - set(metrics))
    return ["name", "index", "phase", "reason", "objective", *(f"params_{p.name}" for p in spec.parameters),
            *(f"metrics_{m}" for m in [*metrics, *extra]), "start_time", "completion_time", "duration_seconds"]


def trial_rows(trials: Sequence[Trial], spec: ExperimentSpec) -> list[dict[str, Any]]:
    """One dict per trial, by index, keyed by :func:`trial_columns` (None where a value is missing)."""
    columns = trial_columns(spec, trials)
    rows = []
    for t in sorted(trials, key=lambda t: t.spec.index):
        row: dict[str, Any] = dict.fromkeys(columns)
        row.update(name=t.metadata.name, index=t.spec.index, phase=t.status.phase.value,
                   reason=t.status.reason.value if t.status.reason else None, objective=t.status.objective_value,
                   start_time=parse_rfc3339(t.status.start_time),
                   completion_time=parse_rfc3339(t.status.completion_time),
                   duration_seconds=seconds_between(t.status.start_time, t.status.completion_time))
        row.update({f"params_{k}": v for k, v in t.spec.params.items() if f"params_{k}" in row})
        row.update({f"metrics_{k}": v for k, v in t.status.metrics.items()})
        rows.append(row)
    return rows
