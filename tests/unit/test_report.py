"""The trial-side reporting helper: parameters in, progress lines and the final JSON report out."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kubetune import report
from kubetune.report import ReportError

# --- final metrics -----------------------------------------------------------------------------


def test_report_metrics_writes_one_compact_json_object(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    report.report_metrics({"accuracy": 0.91, "loss": 0.31, "epochs_run": 3}, str(target))
    assert json.loads(target.read_text()) == {"accuracy": 0.91, "loss": 0.31, "epochs_run": 3}
    assert "\n" not in target.read_text()


def test_report_metrics_defaults_to_the_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "from-env.json"
    monkeypatch.setenv(report.METRICS_FILE_ENV, str(target))
    report.report_metrics({"accuracy": 0.5})
    assert json.loads(target.read_text()) == {"accuracy": 0.5}


def test_metrics_path_falls_back_to_the_termination_log() -> None:
    assert report.metrics_path({}) == "/dev/termination-log"
    assert report.metrics_path({"KUBETUNE_METRICS_FILE": "/tmp/m.json"}) == "/tmp/m.json"


def test_report_metrics_replaces_atomically_and_leaves_no_temp_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "metrics.json"
    target.write_text('{"accuracy": 0.1}')
    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        # The new content is complete before the rename makes it visible.
        assert json.loads(Path(src).read_text()) == {"accuracy": 0.7}
        assert json.loads(Path(dst).read_text()) == {"accuracy": 0.1}
        replaced.append((src, dst))
        real_replace(src, dst)

    monkeypatch.setattr(report.os, "replace", spy)
    report.report_metrics({"accuracy": 0.7}, str(target))
    assert len(replaced) == 1 and replaced[0][1] == str(target)
    assert json.loads(target.read_text()) == {"accuracy": 0.7}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_report_metrics_writes_in_place_where_rename_is_impossible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # /dev/termination-log is a bind mount: rename onto it fails with EBUSY.
    target = tmp_path / "termination-log"
    target.write_text("old content that is longer than the new one" * 10)

    def busy(src: str, dst: str) -> None:
        raise OSError(16, "Device or resource busy")

    monkeypatch.setattr(report.os, "replace", busy)
    report.report_metrics({"accuracy": 0.8}, str(target))
    assert json.loads(target.read_text()) == {"accuracy": 0.8}
    assert [p.name for p in tmp_path.iterdir()] == ["termination-log"]


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        ({"accuracy": math.nan}, "not finite"),
        ({"accuracy": math.inf}, "not finite"),
        ({"loss": -math.inf}, "not finite"),
        ({"accuracy": "0.9"}, "must be a number"),
        ({"accuracy": None}, "must be a number"),
        ({"accuracy": True}, "must be a number"),
        ({"bad name": 1.0}, "invalid metric name"),
        ({"": 1.0}, "invalid metric name"),
        ({}, "no metrics"),
        ({f"metric_{i:04d}": 0.123456789 for i in range(300)}, "limit is 4096"),
    ],
)
def test_report_metrics_rejects_bad_reports_and_keeps_the_old_file(
    tmp_path: Path, metrics: dict[str, object], message: str
) -> None:
    target = tmp_path / "metrics.json"
    target.write_text('{"accuracy": 0.5}')
    with pytest.raises(ReportError, match=message):
        report.report_metrics(metrics, str(target))  # type: ignore[arg-type]
    assert json.loads(target.read_text()) == {"accuracy": 0.5}


def test_a_report_of_exactly_the_limit_is_accepted(tmp_path: Path) -> None:
    overhead = len('{"m":}')
    value = int("1" * (report.MAX_REPORT_BYTES - overhead))
    report.report_metrics({"m": value}, str(tmp_path / "m.json"))
    assert (tmp_path / "m.json").stat().st_size == report.MAX_REPORT_BYTES


# --- progress ----------------------------------------------------------------------------------


def test_progress_line_format(capsys: pytest.CaptureFixture[str]) -> None:
    report.report_progress(3, accuracy=0.84, loss=0.5)
    report.report_progress(accuracy=0.123456789)
    assert capsys.readouterr().out.splitlines() == [
        "kubetune: epoch=3 accuracy=0.84 loss=0.5",
        "kubetune: accuracy=0.123457",
    ]


@pytest.mark.parametrize(
    ("step", "metrics", "message"),
    [
        (1, {"loss": math.nan}, "not finite"),
        (1, {"loss": "low"}, "must be a number"),
        (1.5, {"loss": 1.0}, "step must be an int"),
    ],
)
def test_progress_rejects_what_a_parser_would_misread(
    step: object, metrics: dict[str, object], message: str
) -> None:
    with pytest.raises(ReportError, match=message):
        report.format_progress(step, **metrics)  # type: ignore[arg-type]


# --- parameters --------------------------------------------------------------------------------


ENV = {
    "KUBETUNE_PARAM_LEARNING_RATE": "0.05",
    "KUBETUNE_PARAM_EPOCHS": "120",
    "KUBETUNE_PARAM_DEPTH": "3.0",
    "KUBETUNE_PARAM_OPTIMIZER": "sgd",
    "KUBETUNE_PARAM_NESTEROV": "true",
    "KUBETUNE_PARAM_": "ignored",
    "KUBETUNE_TRIAL": "exp-3",
    "HOME": "/root",
}


def test_params_lists_every_parameter_lower_cased() -> None:
    assert report.params(ENV) == {
        "learning_rate": "0.05",
        "epochs": "120",
        "depth": "3.0",
        "optimizer": "sgd",
        "nesterov": "true",
    }


@pytest.mark.parametrize(
    ("name", "kind", "expected"),
    [
        ("learning_rate", float, 0.05),
        ("epochs", int, 120),
        ("depth", int, 3),
        ("optimizer", str, "sgd"),
        ("nesterov", bool, True),
        ("Learning_Rate", float, 0.05),
    ],
)
def test_param_converts_by_type(name: str, kind: type, expected: object) -> None:
    value = report.param(name, kind, environ=ENV)
    assert value == expected and type(value) is kind


def test_param_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBETUNE_PARAM_WIDTH", "0.25")
    assert report.param("width", float) == 0.25


def test_param_default_when_unset_or_empty() -> None:
    assert report.param("momentum", float, 0.9, environ={}) == 0.9
    assert report.param("momentum", float, 0.9, environ={"KUBETUNE_PARAM_MOMENTUM": ""}) == 0.9


@pytest.mark.parametrize(
    ("env", "kind", "message"),
    [
        ({}, float, "is not set"),
        ({"KUBETUNE_PARAM_X": "abc"}, float, "KUBETUNE_PARAM_X='abc' is not a valid float"),
        ({"KUBETUNE_PARAM_X": "nan"}, float, "not a valid float"),
        ({"KUBETUNE_PARAM_X": "2.5"}, int, "not a valid int"),
        ({"KUBETUNE_PARAM_X": "maybe"}, bool, "not a valid bool"),
    ],
)
def test_param_errors_name_the_variable(env: dict[str, str], kind: type, message: str) -> None:
    with pytest.raises(ReportError, match=message):
        report.param("x", kind, environ=env)


def test_param_rejects_invalid_names_and_types() -> None:
    with pytest.raises(ReportError, match="invalid parameter name"):
        report.param("learning-rate", float, environ=ENV)
    with pytest.raises(ReportError, match="unsupported parameter type"):
        report.param("epochs", list, environ=ENV)  # type: ignore[type-var]


def test_trial_name() -> None:
    assert report.trial_name(ENV) == "exp-3"
    assert report.trial_name({}) is None


def test_imports_with_the_standard_library_only() -> None:
    # Training images copy report.py alone: it must not pull numpy, pydantic or the rest of kubetune.
    code = (
        "import sys\n"
        "for name in ('numpy', 'scipy', 'pydantic', 'yaml', 'kubetune.api'):\n"
        "    sys.modules[name] = None\n"
        "import kubetune.report\n"
        "print(sorted(m for m, v in sys.modules.items() if m.startswith('kubetune') and v))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['kubetune', 'kubetune.report']"


def test_what_report_writes_is_what_the_runners_harvest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from kubetune import metrics

    target = tmp_path / "metrics.json"
    report.report_metrics({"accuracy": 0.91, "loss": 0.31, "epochs_run": 3}, str(target))
    report.report_progress(2, accuracy=0.84, loss=0.5, lr=0.01)
    assert metrics.parse_report(target.read_text(), ["accuracy", "loss"]) == {"accuracy": 0.91, "loss": 0.31}
    assert metrics.parse_progress(capsys.readouterr().out, ["accuracy", "loss"]) == {"accuracy": 0.84, "loss": 0.5}
