"""The operator's pure parts: what a Trial's Job and pods amount to, status diffs, pass coalescing."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from kubetune.api import MetricsSource, ObjectMeta, Trial, TrialReason, TrialSpec, TrialStatus
from kubetune.kube.classification import (
    CreateJob,
    DeleteJob,
    Disrupted,
    Fail,
    Harvest,
    MarkRunning,
    Queue,
    StopJob,
    Stopped,
    Wait,
    classify,
)
from kubetune.kube.coalescing import Coalescer
from kubetune.kube.patching import merge_patch, status_patch, without_kopf
from kubetune.metrics import needs_output
from kubetune.outcomes import early_stop

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
LONG_AGO = "2026-01-01T11:00:00Z"
JUST_NOW = "2026-01-01T11:59:59Z"
TEN_MIN = dt.timedelta(minutes=10)


def trial(started: bool = True, stopping: bool = False, *, retries: int = 0, attempt_made: bool = False,
          queued: bool = False) -> Trial:
    stop = early_stop(TrialReason.ASHA_RUNG, "stopped at rung 1 (step 1) by asha: …", JUST_NOW) if stopping else None
    return Trial(metadata=ObjectMeta(name="exp-0", uid="trial-uid"), spec=TrialSpec(index=0, params={"x": 1.0}),
                 status=TrialStatus(start_time=JUST_NOW if started else None, stop=stop, retries=retries,
                                    attempt_time=JUST_NOW if attempt_made else None, queued=queued))


def job(*conditions: tuple[str, str], deleting: bool = False, created: str = JUST_NOW, uid: str = "trial-uid",
        deadline: int | None = None, attempt: int | None = None, suspend: bool = False, backoff: int = 0,
        started: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "exp-0", "uid": "job-uid", "creationTimestamp": created,
                            "ownerReferences": [{"uid": uid}]}
    if deleting:
        meta["deletionTimestamp"] = JUST_NOW
    if attempt is not None:
        meta["annotations"] = {"kubetune.io/attempt": str(attempt)}
    status: dict[str, Any] = {"conditions": [{"type": t, "status": "True", "reason": r, "message": "m"}
                                             for t, r in conditions]}
    if started:
        status["startTime"] = started
    return {"metadata": meta, "spec": {"backoffLimit": backoff, "activeDeadlineSeconds": deadline, "suspend": suspend},
            "status": status}


def pod(phase: str, *, terminated: dict[str, Any] | None = None, waiting: str | None = None,
        unschedulable: bool = False, created: str = JUST_NOW, reason: str | None = None,
        disrupted: str | None = None, deleting: bool = False) -> dict[str, Any]:
    state: dict[str, Any] = {}
    if terminated is not None:
        state["terminated"] = terminated
    if waiting is not None:
        state["waiting"] = {"reason": waiting, "message": "no such image"}
    status: dict[str, Any] = {"phase": phase, "containerStatuses": [{"name": "main", "image": "img", "state": state}]}
    if unschedulable:
        status["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                 "message": "0/1 nodes are available"}]
    if reason:
        status["reason"] = reason
    if disrupted:
        status["conditions"] = [{"type": "DisruptionTarget", "status": "True", "reason": disrupted,
                                 "message": "Eviction API: evicting"}]
    meta: dict[str, Any] = {"name": "exp-0-abcde", "creationTimestamp": created,
                            "ownerReferences": [{"uid": "job-uid"}]}
    if deleting:
        meta["deletionTimestamp"] = JUST_NOW
    return {"metadata": meta, "spec": {"containers": [{"name": "main"}]}, "status": status}


CASES = [
    ("no job, never started", trial(started=False), None, [], CreateJob()),
    ("no job after start", trial(), None, [], Fail("JobDeleted", "Job exp-0 was deleted before the trial finished")),
    ("job being deleted", trial(), job(deleting=True), [], Fail("JobDeleted",
                                                                "Job exp-0 was deleted before the trial finished")),
    ("job of an older namesake", trial(), job(uid="other"), [], Wait(
        "a Job of that name belongs to an older Trial; waiting for it to be collected")),
    ("no pod yet", trial(), job(), [], Wait("no pod yet")),
    ("running", trial(), job(), [pod("Running")], MarkRunning("exp-0-abcde")),
    ("succeeded", trial(), job(), [pod("Succeeded", terminated={"exitCode": 0, "message": '{"y": 1}'})],
     Harvest("exp-0-abcde", "main", 0, '{"y": 1}')),
    ("exit 1", trial(), job(), [pod("Failed", terminated={"exitCode": 1})], Harvest("exp-0-abcde", "main", 1, None)),
    ("container done, pod phase not yet", trial(), job(),
     [pod("Running", terminated={"exitCode": 0, "message": '{"y": 2}'})],
     Harvest("exp-0-abcde", "main", 0, '{"y": 2}')),
    ("container failed, pod phase not yet", trial(), job(), [pod("Running", terminated={"exitCode": 3})],
     Harvest("exp-0-abcde", "main", 3, None)),
    ("oom", trial(), job(), [pod("Failed", terminated={"exitCode": 137, "reason": "OOMKilled"})],
     Fail("OOMKilled", "container main was killed for exceeding its memory limit (exit code 137)")),
    ("deadline", trial(), job(("FailureTarget", "DeadlineExceeded"), deadline=5),
     [pod("Failed", terminated={"exitCode": 143})],
     Fail("DeadlineExceeded", "ran longer than activeDeadlineSeconds=5")),
    ("never pull", trial(), job(), [pod("Pending", waiting="ErrImageNeverPull")],
     Fail("ImagePullFailed", "cannot pull img: no such image", delete_job=True)),
    ("unschedulable, recent", trial(), job(), [pod("Pending", unschedulable=True)], Wait("unschedulable")),
    ("unschedulable, too long", trial(), job(created=LONG_AGO), [pod("Pending", unschedulable=True, created=LONG_AGO)],
     Fail("Unschedulable", "unschedulable for over 10 min: 0/1 nodes are available", delete_job=True)),
    ("job failed, pod gone (deleted)", trial(), job(("Failed", "BackoffLimitExceeded")), [],
     Disrupted("job/job-uid", "PodDeleted",
               "the Job's pod was deleted before the trial finished (the Job failed, no pod is left)")),
    ("job failed otherwise, pod gone", trial(), job(("Failed", "SomethingElse")), [],
     Fail("JobFailed", "SomethingElse: m")),
    ("job complete, pod gone", trial(), job(("Complete", "")), [],
     Fail("MetricsUnavailable", "the Job completed but its pod is gone, so its report cannot be read")),
    # disruptions: retried, not judged
    ("evicted by the kubelet", trial(), job(), [pod("Failed", reason="Evicted")],
     Disrupted("exp-0-abcde", "Evicted", "pod exp-0-abcde was evicted by the kubelet: no message")),
    ("evicted through the Eviction API", trial(), job(),
     [pod("Failed", terminated={"exitCode": 143}, disrupted="EvictionByEvictionAPI")],
     Disrupted("exp-0-abcde", "EvictionByEvictionAPI",
               "pod exp-0-abcde was disrupted (EvictionByEvictionAPI): Eviction API: evicting")),
    ("node lost", trial(), job(("Failed", "BackoffLimitExceeded")),
     [pod("Failed", disrupted="DeletionByPodGC", deleting=True)],
     Disrupted("exp-0-abcde", "DeletionByPodGC",
               "pod exp-0-abcde was disrupted (DeletionByPodGC): Eviction API: evicting")),
    ("pod deleted by hand", trial(), job(("Failed", "BackoffLimitExceeded")),
     [pod("Failed", terminated={"exitCode": 143}, deleting=True)],
     Disrupted("exp-0-abcde", "PodDeleted", "pod exp-0-abcde was deleted before the trial finished")),
    ("pod deleted, still terminating", trial(), job(("Failed", "BackoffLimitExceeded")),
     [pod("Running", deleting=True)], Wait("the failed Job's pod is terminating")),
    ("disrupted, the Job replaces the pod (backoffLimit 1)", trial(), job(backoff=1),
     [pod("Failed", terminated={"exitCode": 143}, disrupted="PreemptionByScheduler")], Wait("pod Failed")),
    ("podFailurePolicy failed the Job on a disruption", trial(), job(("Failed", "PodFailurePolicy")),
     [pod("Failed", terminated={"exitCode": 143}, disrupted="PreemptionByScheduler")],
     Fail("JobFailed", "PodFailurePolicy: m")),
    ("podFailurePolicy failed the Job on an exit code", trial(), job(("Failed", "PodFailurePolicy")),
     [pod("Failed", terminated={"exitCode": 42})], Harvest("exp-0-abcde", "main", 42, None)),
    # a retry: the old attempt's Job goes, then the retry's is made
    ("retry: the disrupted attempt's Job is there", trial(retries=1), job(attempt=0), [], DeleteJob()),
    ("retry: the old Job has no attempt mark", trial(retries=1), job(), [], DeleteJob()),
    ("retry: the old Job is going", trial(retries=1), job(attempt=0, deleting=True), [],
     Wait("the disrupted attempt's Job is being deleted")),
    ("retry: no Job yet", trial(retries=1), None, [], CreateJob()),
    ("retry: its Job was made and is gone", trial(retries=1, attempt_made=True), None, [],
     Fail("JobDeleted", "Job exp-0 was deleted before the trial finished")),
    ("retry: its Job runs", trial(retries=1, attempt_made=True), job(attempt=1), [pod("Running")],
     MarkRunning("exp-0-abcde")),
    # queues: a suspended Job waits for quota, and is never unschedulable for it
    ("suspended by a queue", trial(), job(suspend=True, created=LONG_AGO), [], Queue(True)),
    ("still queued", trial(queued=True), job(suspend=True, created=LONG_AGO), [],
     Wait("the Job is suspended until a queue admits it")),
    ("admitted", trial(queued=True), job(created=LONG_AGO, started=JUST_NOW), [], Queue(False)),
    ("admitted long after it was made", trial(), job(created=LONG_AGO, started=JUST_NOW), [], Wait("no pod yet")),
    ("queued, it had finished", trial(queued=True), job(suspend=True),
     [pod("Succeeded", terminated={"exitCode": 0, "message": '{"y": 4}'})],
     Harvest("exp-0-abcde", "main", 0, '{"y": 4}')),
    # a stop request: delete the Job while it runs, record the stop once it is gone, keep a real result
    ("stop: the pod runs", trial(stopping=True), job(), [pod("Running")], StopJob()),
    ("stop: the pod is pending", trial(stopping=True), job(), [pod("Pending", unschedulable=True)], StopJob()),
    ("stop: the Job is gone", trial(stopping=True), None, [], Stopped()),
    ("stop: the Job is being deleted", trial(stopping=True), job(deleting=True), [pod("Running")], Stopped()),
    ("stop: never started", trial(started=False, stopping=True), None, [], Stopped()),
    ("stop: it had finished", trial(stopping=True), job(deleting=True),
     [pod("Succeeded", terminated={"exitCode": 0, "message": '{"y": 3}'})],
     Harvest("exp-0-abcde", "main", 0, '{"y": 3}')),
    ("stop: killed by it", trial(stopping=True), None, [pod("Failed", terminated={"exitCode": 143})], Stopped()),
]


@pytest.mark.parametrize(("case", "the_trial", "the_job", "pods", "expected"), CASES, ids=[c[0] for c in CASES])
def test_classify(case: str, the_trial: Trial, the_job: dict[str, Any] | None, pods: list[dict[str, Any]],
                  expected: object) -> None:
    assert classify(the_trial, the_job, pods, now=NOW, unschedulable_after=TEN_MIN) == expected


@pytest.mark.parametrize(("source", "code", "report", "expected"), [
    (MetricsSource.BOTH, 0, '{"y": 1}', False),
    (MetricsSource.BOTH, 0, "", True),
    (MetricsSource.TERMINATION_MESSAGE, 0, None, False),
    (MetricsSource.STDOUT, 0, '{"y": 1}', True),
    (MetricsSource.TERMINATION_MESSAGE, 2, '{"y": 1}', True),
])
def test_the_log_is_read_only_when_it_can_matter(source: MetricsSource, code: int, report: str | None,
                                                  expected: bool) -> None:
    assert needs_output(source, code, report) is expected


def test_merge_patch_nulls_removed_keys_and_replaces_lists() -> None:
    old = {"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2], "gone": True}
    new = {"a": 1, "b": {"c": 2, "d": 4}, "l": [1], "new": "x"}
    assert merge_patch(old, new) == {"b": {"d": 4}, "l": [1], "gone": None, "new": "x"}
    assert merge_patch(new, new) == {}


def test_status_patch_leaves_kopf_storage_alone() -> None:
    current = {"phase": "Running", "kopf": {"progress": {"h": {}}}}
    assert status_patch(current, {"phase": "Running"}) == {}
    assert status_patch(current, {"phase": "Succeeded"}) == {"phase": "Succeeded"}
    assert without_kopf({"status": current}) == {"status": {"phase": "Running"}}


def test_coalescer_runs_one_pass_at_a_time_and_repeats_once_for_triggers_during_it() -> None:
    coalescer = Coalescer()
    runs: list[int] = []
    gate = asyncio.Event()

    async def step() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            await gate.wait()

    async def scenario() -> None:
        first = asyncio.create_task(coalescer.run("k", step))
        await asyncio.sleep(0)
        assert coalescer.busy("k")
        assert await coalescer.run("k", step) is False
        assert await coalescer.run("k", step) is False
        gate.set()
        assert await first is True

    asyncio.run(scenario())
    assert runs == [0, 1]
