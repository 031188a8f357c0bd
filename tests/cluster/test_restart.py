"""Restart safety: the operator SIGKILLed at random moments loses nothing and duplicates nothing."""

from __future__ import annotations

import random
import time

import pytest

from kubetune.api import EXPERIMENT_LABEL
from tests.cluster.conftest import Kubectl, OperatorProcess, wait_for
from tests.cluster.manifests import experiment
from tests.cluster.test_experiment import check_succeeded_experiment, finished

pytestmark = pytest.mark.cluster

KILLS = 6


def test_sigkilled_operator_finishes_the_experiment_exactly_once(
        operator: OperatorProcess, crds: Kubectl, namespace: str) -> None:
    max_trials = 15
    crds.apply(experiment("crash", max_trials=max_trials, parallel=3, sleep=3.0), namespace)
    rng = random.Random(20261130)
    kills = 0
    try:
        while kills < KILLS and not finished(crds, namespace, "crash"):
            time.sleep(rng.uniform(0.2, 1.5))  # a random moment: mid-pass, mid-create, mid-harvest
            operator.kill()
            kills += 1
            time.sleep(rng.uniform(0.0, 1.0))  # pods keep finishing while nobody watches
            operator.start()
    finally:
        if operator.process is None or operator.process.poll() is not None:
            operator.start()
    assert kills >= 5, f"the experiment finished after only {kills} kills: make its trials slower"
    body = wait_for(lambda: finished(crds, namespace, "crash"), timeout=300, what="experiment crash to finish",
                    interval=0.5)
    trials = check_succeeded_experiment(crds, namespace, "crash", body, max_trials)
    jobs = crds.items("jobs", namespace, f"{EXPERIMENT_LABEL}=crash")
    assert len(jobs) == max_trials
    # Events may come late but none is lost or doubled: one TrialCreated and one TrialSucceeded per trial
    names = sorted(t["metadata"]["name"] for t in trials)

    def events_of(reason: str) -> list[str]:
        found = [e for e in crds.items("events", namespace) if e["reason"] == reason]
        return sorted(e["message"].split()[1] for e in found)

    wait_for(lambda: events_of("TrialCreated") == names and events_of("TrialSucceeded") == names, timeout=60,
             what="one TrialCreated and one TrialSucceeded Event per trial")
    by_uid = {t["metadata"]["uid"]: t["metadata"]["name"] for t in trials}
    for job in jobs:  # one Job per Trial, owned by it
        owners = [r["uid"] for r in job["metadata"]["ownerReferences"]]
        assert [by_uid.get(uid) for uid in owners] == [job["metadata"]["name"]]
