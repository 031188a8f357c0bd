"""Early stopping on a real cluster: learning curves read from running pods, doomed trials stopped once."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from kubetune.api import EXPERIMENT_LABEL
from tests.cluster.conftest import Kubectl, OperatorProcess, wait_for
from tests.cluster.manifests import experiment
from tests.cluster.test_experiment import finished

pytestmark = pytest.mark.cluster

#: Known curves: quality q reaches q·(1 − 2^−epoch); a better q is better at every epoch.
CURVES = (
    "import json, os, time\n"
    "q = float(os.environ['KUBETUNE_PARAM_Q'])\n"
    "time.sleep(3)\n"  # a doomed trial stays Running for 3 s before its first point, which ends it
    "for epoch in range(1, 10):\n"
    "    print(f'kubetune: epoch={epoch} score={q * (1 - 0.5 ** epoch):.4f}', flush=True)\n"
    "    time.sleep(1.2)\n"
    "open('/dev/termination-log', 'w').write(json.dumps({'score': q * (1 - 0.5 ** 9)}))\n"
)
QUALITIES = ["0.9", "0.2", "0.5", "0.95", "0.15"]
DOOMED = {"0.2", "0.5", "0.15"}


def curves_experiment(name: str) -> dict[str, Any]:
    body = experiment(name, CURVES, max_trials=len(QUALITIES), parallel=1, algorithm={"name": "grid"})
    body["spec"]["parameters"] = [{"name": "q", "type": "categorical", "values": QUALITIES}]
    body["spec"]["objective"] = {"metric": "score", "goal": "maximize"}
    body["spec"]["earlyStopping"] = {"rule": "asha", "minSteps": 1, "maxSteps": 9, "reductionFactor": 3,
                                     "minTrials": 1}
    return body


def test_doomed_trials_are_stopped_once_their_jobs_go_and_their_curves_stay(
        operator: OperatorProcess, crds: Kubectl, namespace: str) -> None:
    crds.apply(curves_experiment("es"), namespace)

    def reporting(name: str) -> dict[str, Any] | None:
        trial = crds.get("trial", name, namespace)
        status = (trial or {}).get("status") or {}
        return trial if status.get("phase") == "Running" else None

    # The crash window, made on purpose: the operator dies right after recording a stop and before
    # carrying it out. The request is written by hand while it is down, as its pass would have.
    wait_for(lambda: reporting("es-1"), timeout=120, what="trial es-1 to run", interval=0.2)
    operator.kill()
    request = {"phase": "EarlyStopped", "reason": "AshaRung", "time": "2026-01-01T00:00:00Z",
               "message": "stopped at rung 1 (step 1) by asha: recorded just before the operator died"}
    crds.run("patch", "trial", "es-1", "-n", namespace, "--subresource=status", "--type=merge",
             "-p", json.dumps({"status": {"stop": request}}))
    wait_for(lambda: "epoch=1 " in crds.run("logs", "job/es-1", "-n", namespace, check=False).stdout,
             timeout=60, what="trial es-1 to print its first point", interval=0.5)
    operator.start()
    wait_for(lambda: reporting("es-3"), timeout=120, what="trial es-3 to run", interval=0.3)
    operator.kill()  # and once more, while a good trial runs and the last doomed one waits
    time.sleep(2)
    operator.start()

    body = wait_for(lambda: finished(crds, namespace, "es"), timeout=300, what="experiment es to finish",
                    interval=1.0)
    status = body["status"]
    assert status["phase"] == "Succeeded", status
    trials = {t["spec"]["params"]["q"]: t for t in crds.items("trials", namespace, f"{EXPERIMENT_LABEL}=es")}
    assert sorted(trials) == sorted(QUALITIES)  # exactly maxTrials, none lost, none twice
    for q, trial in trials.items():
        st = trial["status"]
        steps = [p["step"] for p in st["curve"]]
        assert steps == sorted(steps) and steps, (q, st)
        if q in DOOMED:
            assert (st["phase"], st["reason"]) == ("EarlyStopped", "AshaRung"), (q, st)
            assert st["message"].startswith("stopped at rung 1 ") and "by asha" in st["message"], st["message"]
            if q == "0.2":  # es-1: its stop was recorded, then the operator died: the record was carried out
                assert st["message"] == request["message"]
            assert steps[-1] < 9 and "objectiveValue" not in st and "stop" not in st
        else:
            assert (st["phase"], st["reason"]) == ("Succeeded", "Completed"), (q, st)
            assert steps == list(range(1, 10))  # every epoch's report is in the curve
            assert [r["step"] for r in st["rungs"]] == [1, 3]
    assert status["trials"]["earlyStopped"] == len(DOOMED) and status["trials"]["succeeded"] == 2
    assert status["bestTrial"]["params"] == {"q": "0.95"}

    # the stopped trials' Jobs and pods are gone; the finished ones' are kept
    jobs = {j["metadata"]["name"] for j in crds.items("jobs", namespace, f"{EXPERIMENT_LABEL}=es")}
    stopped = {t["metadata"]["name"] for q, t in trials.items() if q in DOOMED}
    assert not jobs & stopped
    wait_for(lambda: not [p for p in crds.items("pods", namespace, f"{EXPERIMENT_LABEL}=es")
                          if p["metadata"]["labels"].get("kubetune.io/trial") in stopped],
             timeout=60, what="the stopped trials' pods to be gone")

    # stopped once: one Event each, though the operator died with a stop in flight
    events = [e for e in crds.items("events", namespace) if e["reason"] == "TrialEarlyStopped"]
    assert sorted(e["involvedObject"]["name"] for e in events) == sorted(stopped)
