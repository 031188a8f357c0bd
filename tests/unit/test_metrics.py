"""Harvesting a trial's metrics: what counts as success, and the reason given for every failure."""

from __future__ import annotations

import pytest

from kubetune.api import Goal, MetricsSource, Objective
from kubetune.metrics import MAX_REPORT_BYTES, harvest, parse_progress

OBJ = Objective(metric="accuracy", goal=Goal.MAXIMIZE, additional_metrics=["loss"])
BOTH, MSG, OUT = MetricsSource.BOTH, MetricsSource.TERMINATION_MESSAGE, MetricsSource.STDOUT

# (source, exit code, report, output, succeeded, reason, message fragment)
CASES = [
    (BOTH, 0, '{"accuracy": 0.91, "loss": 0.3, "lr": 0.1}', "", True, "Completed", "accuracy=0.91"),
    (BOTH, 0, "", "kubetune: epoch=1 accuracy=0.5\nkubetune: epoch=2 accuracy=0.8 loss=0.4", True, "Completed", ""),
    (BOTH, 0, None, "accuracy=0.7", True, "Completed", ""),
    (BOTH, 3, '{"accuracy": 0.9}', "loading\nValueError: bad lr\n", False, "NonZeroExit",
     "exited with code 3: ValueError: bad lr"),
    (BOTH, 0, '{"loss": 0.3}', "", False, "ObjectiveMissing", "'accuracy' was not reported"),
    (BOTH, 0, '{"accuracy": NaN}', "", False, "MetricsNotFinite", "'accuracy' is not finite"),
    (BOTH, 0, '{"accuracy": Infinity}', "", False, "MetricsNotFinite", "'accuracy' is not finite"),
    (BOTH, 0, '{"accuracy": "high"}', "", False, "MetricsInvalid", "'accuracy' is not a number: 'high'"),
    (BOTH, 0, '{"accuracy": true}', "", False, "MetricsInvalid", "'accuracy' is not a number: True"),
    (BOTH, 0, "accuracy: 0.9", "", False, "MetricsInvalid", "not JSON"),
    (BOTH, 0, "[0.9]", "", False, "MetricsInvalid", "must be a JSON object, got list"),
    (BOTH, 0, '{"accuracy": 0.9, "pad": "' + "x" * MAX_REPORT_BYTES + '"}', "", False, "ReportTooLarge", "4096"),
    (MSG, 0, None, "accuracy=0.9", False, "ObjectiveMissing", "in the final report"),
    (OUT, 0, '{"accuracy": 0.9}', "", False, "ObjectiveMissing", "on stdout"),
    (OUT, 0, None, "kubetune: accuracy=nan", False, "MetricsNotFinite", "not finite"),
]


@pytest.mark.parametrize(("source", "code", "report", "output", "ok", "reason", "fragment"), CASES,
                         ids=[f"{c[5]}-{i}" for i, c in enumerate(CASES)])
def test_harvest(source: MetricsSource, code: int, report: str | None, output: str, ok: bool, reason: str,
                 fragment: str) -> None:
    outcome = harvest(objective=OBJ, source=source, exit_code=code, report=report, output=output)
    assert (outcome.succeeded, outcome.reason) == (ok, reason)
    assert fragment in outcome.message
    if ok:
        assert outcome.objective_value == outcome.metrics["accuracy"]
        assert set(outcome.metrics) <= {"accuracy", "loss"}  # only declared names count


def test_progress_lines_count_only_declared_names_and_the_last_value_wins() -> None:
    text = "\n".join([
        "lr=0.01",  # undeclared: a stray print
        "epoch 1: accuracy is 0.3",  # prose, not a metric line
        "kubetune: epoch=1 accuracy=0.5 loss=1.0",
        "accuracy=0.6 loss=0.8",
        "kubetune: accuracy=oops",
    ])
    assert parse_progress(text, ["accuracy", "loss"]) == {"accuracy": 0.6, "loss": 0.8}
