"""The command line: clear errors for bad files, nothing written; CRDs and status output."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kubetune.cli import main
from kubetune.crds import render_all
from tests.unit.factories import experiment_dict

REPO = Path(__file__).resolve().parents[2]


def test_invalid_experiment_exits_2_naming_the_field_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = experiment_dict(parameters=[
        {"name": "a", "type": "int", "min": 1, "max": 5},
        {"name": "b", "type": "double", "min": 1, "max": 0.5},
    ])
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(document))
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "spec.parameters[1].max: must be greater than min" in err
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize(("content", "message"), [
    ("spec: [unclosed", "not valid YAML"),
    ("kind: Deployment\n", "expected exactly one document of kind Experiment, found 0"),
])
def test_unusable_files_are_explained(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str,
                                      message: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(content)
    assert main(["validate", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "/nonexistent/exp.yaml"]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_examples_validate(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(REPO / "examples" / "quickstart.yaml")]) == 0


def test_crd_prints_both_definitions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crd"]) == 0
    out = capsys.readouterr().out
    assert out == render_all()
    kinds = [d["spec"]["names"]["kind"] for d in yaml.safe_load_all(out)]
    assert kinds == ["Experiment", "Trial"]


def test_status_of_a_missing_state_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["status", str(tmp_path / "none.state.yaml")]) == 2
    assert "no such state file" in capsys.readouterr().err
