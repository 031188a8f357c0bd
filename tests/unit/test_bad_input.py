"""Every bad Experiment of tests/bad_experiments.py is refused by `kubetune validate`, naming the problem.

The cluster tier checks the same table against `kubectl apply` (tests/cluster/test_crds.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kubetune.cli import main
from tests.bad_experiments import BASE, CASES, Case, _yaml


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_validate_refuses_it_naming_the_problem(case: Case, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(case.yaml)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    for words in case.local:
        assert words in err, f"{case.name}: {words!r} not in:\n{err}"


def test_the_base_of_the_table_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "good.yaml"
    path.write_text(_yaml(BASE))
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err


def test_every_case_not_checked_by_the_api_server_says_why() -> None:
    for case in CASES:
        assert case.where in ("both", "webhook", "local"), case.name
        assert bool(case.why) == (case.where != "both"), case.name
        assert bool(case.cluster) == (case.where == "both"), case.name
