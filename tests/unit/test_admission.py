"""The admission webhook's decision (kubetune.kube.admission.review), table-driven over the bad Experiments.

What the webhook refuses is what ``kubetune validate`` refuses, in the same words; the cluster tier
(tests/cluster/test_crds.py) sends the same table through a real API server to the real webhook.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from kubetune.cli import main
from kubetune.documents import load_all
from kubetune.kube import ConfigError, OperatorConfig
from kubetune.kube.admission import message, review
from tests.bad_experiments import BASE, BY_WHERE, Case

REFUSED = BY_WHERE["both"] + BY_WHERE["webhook"]


def document(case: Case) -> dict[str, Any]:
    """The case as the API server gets it: YAML read as kubectl reads it (an unquoted y is true)."""
    (loaded,) = load_all(case.yaml)
    assert isinstance(loaded, dict)
    return loaded


@pytest.mark.parametrize("case", REFUSED, ids=[c.name for c in REFUSED])
def test_a_bad_experiment_is_refused_on_create_in_validates_words(case: Case) -> None:
    problems = review("CREATE", document(case), None)
    assert problems, f"{case.name}: admitted"
    for words in case.local:
        assert words in message(problems), f"{case.name}: {words!r} not in {message(problems)!r}"


def test_a_valid_experiment_is_admitted_on_create_and_update() -> None:
    assert review("CREATE", copy.deepcopy(BASE), None) == []
    changed = copy.deepcopy(BASE)
    changed["spec"]["maxTrials"] = 8
    assert review("UPDATE", changed, copy.deepcopy(BASE)) == []


def test_the_operators_own_status_keys_are_no_problem() -> None:
    body = copy.deepcopy(BASE)
    body["status"] = {"phase": "Running", "kopf": {"progress": {"experiment_changed": {"retries": 1}}}}
    assert review("CREATE", body, None) == []


def test_an_update_that_makes_the_spec_invalid_is_refused() -> None:
    (case,) = [c for c in BY_WHERE["webhook"] if c.name == "an initial value outside the range"]
    problems = review("UPDATE", document(case), copy.deepcopy(BASE))
    assert problems and "initialPoints[0].x: 1.5 is outside [0, 1]" in message(problems)


def test_an_update_that_keeps_the_spec_is_admitted_even_when_the_spec_is_invalid() -> None:
    # an Experiment stored before a rule existed can still be labelled, annotated and written by
    # the operator; only a change of its spec is judged
    bad = document(BY_WHERE["webhook"][0])
    labelled = copy.deepcopy(bad)
    labelled["metadata"]["labels"] = {"team": "vision"}
    assert review("CREATE", bad, None)
    assert review("UPDATE", labelled, bad) == []


def test_deleting_is_never_refused() -> None:
    bad = document(BY_WHERE["webhook"][0])
    deleting = copy.deepcopy(bad)
    deleting["metadata"]["deletionTimestamp"] = "2026-12-02T00:00:00Z"
    deleting["spec"]["maxTrials"] = 5
    assert review("UPDATE", deleting, bad) == []
    assert review("DELETE", None, bad) == []
    assert review("CONNECT", bad, None) == []


@pytest.mark.parametrize(("kinds", "refused"), [((), True), (("JobSet",), True), (("PyTorchJob",), False)])
def test_a_trial_kind_is_admitted_only_where_the_operator_runs_it(kinds: tuple[str, ...], refused: bool) -> None:
    body = copy.deepcopy(BASE)
    body["spec"]["trialTemplate"] = {"kind": "PyTorchJob", "spec": {"pytorchReplicaSpecs": {"Master": {
        "replicas": 1, "template": BASE["spec"]["trialTemplate"]["spec"]["template"]}}}}
    problems = review("CREATE", body, None, kinds)
    assert bool(problems) == refused, problems
    if refused:
        assert "spec.trialTemplate.kind: PyTorchJob is not enabled in this operator (enabled: Job" in problems[0]


def test_the_message_is_one_line_with_every_problem() -> None:
    body = copy.deepcopy(BASE)
    body["spec"]["maxTrials"] = 0
    body["spec"]["parallelTrials"] = 0
    text = message(review("CREATE", body, None))
    assert "\n" not in text
    assert text.startswith("invalid Experiment: ")
    assert "spec.maxTrials: Input should be greater than or equal to 1; " in text
    assert "spec.parallelTrials: Input should be greater than or equal to 1" in text


# --- the operator's webhook settings -------------------------------------------------------------


def test_a_webhook_without_its_certificate_stops_the_operator_before_it_starts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    config = OperatorConfig(webhook_port=9443, webhook_cert_dir=str(tmp_path))
    with pytest.raises(ConfigError, match=r"needs its certificate: no .*tls\.crt and no .*tls\.key"):
        config.check()
    (tmp_path / "tls.crt").write_text("cert")
    with pytest.raises(ConfigError, match=r"no .*tls\.key \(--webhook-cert-dir"):
        config.check()
    (tmp_path / "tls.key").write_text("key")
    config.check()
    OperatorConfig().check()  # no webhook, nothing to check
    # the command line says it in one line, exit 2, and never reaches kopf
    assert main(["operator", "--webhook-port", "9443", "--webhook-cert-dir", str(tmp_path / "none")]) == 2
    assert "needs its certificate: no " in capsys.readouterr().err
    monkeypatch.setenv("KUBETUNE_TRIAL_KINDS", "Argo")
    assert main(["operator"]) == 2
    assert "KUBETUNE_TRIAL_KINDS: unknown kind(s) Argo" in capsys.readouterr().err
