"""A real experiment with real pods: trials run in parallel, metrics are harvested, the best is right."""

from __future__ import annotations

from typing import Any

import pytest

from kubetune.api import EXPERIMENT_LABEL
from tests.cluster.conftest import Kubectl, OperatorProcess, wait_for
from tests.cluster.manifests import PARAMETERS, QUADRATIC, experiment, score

pytestmark = pytest.mark.cluster


def finished(kube: Kubectl, namespace: str, name: str, *, active_seen: list[int] | None = None) -> Any:
    body = kube.get("experiment", name, namespace)
    status = (body or {}).get("status") or {}
    if active_seen is not None and status.get("trials"):
        active_seen.append(status["trials"].get("running", 0) + status["trials"].get("pending", 0))
    return body if status.get("phase") in ("Succeeded", "Failed") else None


def trials_of(kube: Kubectl, namespace: str, name: str) -> list[dict[str, Any]]:
    return sorted(kube.items("trials", namespace, f"{EXPERIMENT_LABEL}={name}"), key=lambda t: t["spec"]["index"])


def check_succeeded_experiment(kube: Kubectl, namespace: str, name: str, body: dict[str, Any],
                               max_trials: int) -> list[dict[str, Any]]:
    status = body["status"]
    trials = trials_of(kube, namespace, name)
    assert [t["metadata"]["name"] for t in trials] == [f"{name}-{i}" for i in range(max_trials)]
    for trial in trials:
        assert trial["status"]["phase"] == "Succeeded", trial["status"]
        expected = score(trial["spec"]["params"])
        assert trial["status"]["objectiveValue"] == pytest.approx(expected, abs=1e-12)
        assert trial["status"]["metrics"]["x2"] == pytest.approx(float(trial["spec"]["params"]["x"]) ** 2)
        assert trial["status"]["startTime"] <= trial["status"]["completionTime"]
        # the progress line it printed is its learning curve (read from the pod's log at harvest)
        (point,) = trial["status"]["curve"]
        assert point["step"] == 0 and point["metrics"]["score"] == pytest.approx(expected, abs=1e-9)
    best = max(trials, key=lambda t: (t["status"]["objectiveValue"], -t["spec"]["index"]))
    assert status["phase"] == "Succeeded"
    assert status["bestTrial"]["name"] == best["metadata"]["name"]
    assert status["bestTrial"]["objectiveValue"] == best["status"]["objectiveValue"]
    assert status["trials"] == {"created": max_trials, "pending": 0, "running": 0, "succeeded": max_trials,
                                "failed": 0, "killed": 0, "earlyStopped": 0, "infeasible": 0, "queued": 0}
    assert status["progress"] == f"{max_trials}/{max_trials}"
    condition = next(c for c in status["conditions"] if c["type"] == "Succeeded")
    assert condition["status"] == "True" and condition["reason"] == "MaxTrialsReached"
    jobs = kube.items("jobs", namespace, EXPERIMENT_LABEL + "=" + name)
    assert sorted(j["metadata"]["name"] for j in jobs) == sorted(t["metadata"]["name"] for t in trials)
    return trials


def test_an_experiment_runs_its_trials_as_pods_and_finds_the_best(
        operator: OperatorProcess, crds: Kubectl, namespace: str) -> None:
    # the known optimum as the first of the initialPoints: trial 0 runs it, so it is the best
    crds.apply(experiment("quad", max_trials=8, parallel=3, sleep=1.0, initialPoints=[{"x": 0.3, "y": 0.7}]),
               namespace)
    active_seen: list[int] = []
    body = wait_for(lambda: finished(crds, namespace, "quad", active_seen=active_seen), timeout=240,
                    what="experiment quad to finish", interval=0.5)
    trials = check_succeeded_experiment(crds, namespace, "quad", body, 8)
    assert trials[0]["spec"]["params"] == {"x": 0.3, "y": 0.7}
    assert body["status"]["bestTrial"]["name"] == "quad-0" and body["status"]["bestTrial"]["objectiveValue"] == 1.0
    assert max(active_seen) <= 3, "more trials ran at once than parallelTrials"
    assert max(active_seen) >= 2, "trials never overlapped"

    table = crds.run("get", "experiments", "-n", namespace).stdout
    header, row = table.splitlines()[:2]
    assert header.split() == ["NAME", "PHASE", "TRIALS", "RUNNING", "STOPPED", "BEST", "PARETO", "TRIAL-TIME",
                              "AGE"], header
    assert row.split()[:5] == ["quad", "Succeeded", "8/8", "0", "0"]
    assert float(row.split()[5]) == pytest.approx(body["status"]["bestTrial"]["objectiveValue"], abs=1e-3)
    pareto = header.index("PARETO")
    assert row[pareto:header.index("TRIAL-TIME")].strip() == ""  # one objective: no Pareto front, an empty cell
    assert row.split()[6] == body["status"]["trialTime"] and body["status"]["trialSeconds"] >= 0

    events = crds.items("events", namespace)
    reasons = {e["reason"] for e in events}
    assert {"TrialCreated", "TrialSucceeded", "ExperimentSucceeded"} <= reasons, reasons
    metrics = operator.metrics()
    assert "kubetune_trials_created_total" in metrics and "kubetune_plan_duration_seconds_bucket" in metrics


def test_bayes_tunes_on_the_cluster(operator: OperatorProcess, crds: Kubectl, namespace: str) -> None:
    algorithm = {"name": "bayes", "seed": 3, "settings": {"initialTrials": 4}}
    crds.apply(experiment("gp", algorithm=algorithm, max_trials=8, parallel=2), namespace)
    body = wait_for(lambda: finished(crds, namespace, "gp"), timeout=300, what="experiment gp to finish",
                    interval=0.5)
    check_succeeded_experiment(crds, namespace, "gp", body, 8)
    assert body["status"]["suggester"]["algorithm"] == "bayes"


def test_two_objectives_keep_a_pareto_front_on_the_cluster(
        operator: OperatorProcess, crds: Kubectl, namespace: str) -> None:
    # score (maximize) peaks at x = 0.3, x² (minimize) at x = 0: every x in [0, 0.3] is a trade-off;
    # a trial with y above 0.8 breaks the constraint and is on no front
    objective = {"metric": "score", "goal": "maximize", "additionalObjectives": [{"metric": "x2", "goal": "minimize"}],
                 "constraints": [{"metric": "y", "max": 0.8}]}
    script = QUADRATIC.replace("'x2': x * x}", "'x2': x * x, 'y': y}")
    # and a conditional parameter: gain exists only in trials with mode scaled
    parameters = [*PARAMETERS, {"name": "mode", "type": "categorical", "values": ["plain", "scaled"]},
                  {"name": "gain", "type": "double", "min": 1.0, "max": 2.0, "when": {"mode": ["scaled"]}}]
    crds.apply(experiment("pareto", script, algorithm={"name": "bayes", "seed": 4, "settings": {"initialTrials": 4}},
                          max_trials=8, parallel=2, objective=objective, parameters=parameters), namespace)
    body = wait_for(lambda: finished(crds, namespace, "pareto"), timeout=300, what="experiment pareto to finish",
                    interval=0.5)
    assert body["status"]["phase"] == "Succeeded"
    trials = trials_of(crds, namespace, "pareto")
    feasible = [t for t in trials if t["status"]["metrics"]["y"] <= 0.8]
    assert body["status"]["trials"]["infeasible"] == len(trials) - len(feasible)
    for t in trials:
        if t not in feasible:
            assert "infeasible: y=" in t["status"]["message"] and "above max 0.8" in t["status"]["message"]
    losses = {t["metadata"]["name"]: (-t["status"]["metrics"]["score"], t["status"]["metrics"]["x2"])
              for t in feasible}
    expected = [name for name, own in losses.items()
                if not any(all(a <= b for a, b in zip(other, own, strict=True)) and other != own
                           for other in losses.values())]
    front = body["status"]["paretoFront"]
    assert sorted(p["name"] for p in front) == sorted(expected) and body["status"]["paretoSize"] == len(expected)
    for point in front:
        assert point["values"] == {"score": -losses[point["name"]][0], "x2": losses[point["name"]][1]}
    row = crds.run("get", "experiment", "pareto", "-n", namespace).stdout.splitlines()[1].split()
    assert row[6] == str(len(expected))  # the PARETO column
    modes = {t["spec"]["params"]["mode"] for t in trials}
    assert modes == {"plain", "scaled"}, modes
    for t in trials:
        scaled = t["spec"]["params"]["mode"] == "scaled"
        assert ("gain" in t["spec"]["params"]) == scaled, t["spec"]["params"]
        job = crds.get("job", t["metadata"]["name"], namespace)
        assert job is not None
        env = {e["name"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert ("KUBETUNE_PARAM_GAIN" in env) == scaled, env


def test_a_warm_start_reads_the_finished_trials_of_an_earlier_experiment(
        operator: OperatorProcess, crds: Kubectl, namespace: str) -> None:
    crds.apply(experiment("earlier", max_trials=3, parallel=3), namespace)
    wait_for(lambda: finished(crds, namespace, "earlier"), timeout=180, what="experiment earlier to finish",
             interval=0.5)
    crds.apply(experiment("later", max_trials=2, parallel=2, algorithm={"name": "bayes", "seed": 2},
                          warmStart={"experiments": ["earlier", "gone"]}), namespace)
    body = wait_for(lambda: finished(crds, namespace, "later"), timeout=180, what="experiment later to finish",
                    interval=0.5)
    status = body["status"]
    assert status["phase"] == "Succeeded" and status["trials"]["created"] == 2  # the prior trials are not its own
    assert status["warmStart"] == {"observations": 3, "sources": [{"experiment": "earlier", "observations": 3}],
                                   "missing": [f"no Experiment gone in namespace {namespace}"]}
    condition = next(c for c in status["conditions"] if c["type"] == "WarmStart")
    assert condition["status"] == "False" and condition["reason"] == "SourceMissing"
    events = [e for e in crds.items("events", namespace) if e["reason"] == "WarmStartSourceMissing"]
    assert len(events) == 1 and "gone" in events[0]["message"] and events[0]["type"] == "Warning"


def test_metrics_from_the_log_when_the_source_is_stdout(
        operator: OperatorProcess, crds: Kubectl, namespace: str) -> None:
    crds.apply(experiment("logs", max_trials=2, parallel=2, metricsSource="Stdout"), namespace)
    body = wait_for(lambda: finished(crds, namespace, "logs"), timeout=120, what="experiment logs to finish",
                    interval=0.5)
    assert body["status"]["phase"] == "Succeeded"
    for trial in trials_of(crds, namespace, "logs"):
        # the script prints only `kubetune: score=...`; x2 is in its termination message, not read here
        assert trial["status"]["metrics"] == {"score": pytest.approx(score(trial["spec"]["params"]))}
