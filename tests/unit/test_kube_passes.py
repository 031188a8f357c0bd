"""The operator's passes against an in-memory API server: plan executed, trials run, nothing doubled."""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from kubetune.kube import experiments, trials
from kubetune.kube.client import EXPERIMENTS, JOBS, PODS, TRIALS, ApiError, Body, Resource
from kubetune.kube.events import EventPoster
from kubetune.kube.metrics import OperatorMetrics
from kubetune.kube.patching import merge_patch
from kubetune.kube.runtime import OperatorConfig, Runtime
from kubetune.lifecycle import Event

NS = "default"


def _apply_merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _apply_merge(result.get(key), value)
    return result


class FakeApi:
    """Objects keyed by (plural, name); resourceVersion checks on status patches; no watches."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], Body] = {}
        self.versions = itertools.count(1)
        self.uids = itertools.count(1)
        self.creates: list[tuple[str, str]] = []
        self.logs: dict[str, str] = {}

    async def get(self, resource: Resource, namespace: str, name: str) -> Body | None:
        found = self.objects.get((resource.plural, name))
        return copy.deepcopy(found) if found else None

    async def list(self, resource: Resource, namespace: str | None, *, selector: str | None = None) -> list[Body]:
        key, _, value = (selector or "").partition("=")
        return [copy.deepcopy(o) for (plural, _), o in sorted(self.objects.items()) if plural == resource.plural
                and (not key or (o["metadata"].get("labels") or {}).get(key) == value)]

    async def create(self, resource: Resource, namespace: str, body: Body) -> Body:
        name = body["metadata"]["name"]
        if (resource.plural, name) in self.objects:
            raise ApiError(409, "AlreadyExists", f"{name} exists")
        stored = copy.deepcopy(body)
        stored["metadata"].update(namespace=namespace, uid=f"uid-{next(self.uids)}",
                                  resourceVersion=str(next(self.versions)), creationTimestamp="2026-01-01T00:00:00Z")
        stored.setdefault("apiVersion", "kubetune.io/v1alpha1")
        self.objects[(resource.plural, name)] = stored
        self.creates.append((resource.plural, name))
        return copy.deepcopy(stored)

    async def patch(self, resource: Resource, namespace: str, name: str, patch: Body, *, status: bool = False) -> Body:
        stored = self.objects.get((resource.plural, name))
        if stored is None:
            raise ApiError(404, "NotFound", name)
        wanted = (patch.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != stored["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "the object has been modified")
        updated = _apply_merge(stored, {"status": patch["status"]} if status else patch)
        updated["metadata"]["resourceVersion"] = str(next(self.versions))
        self.objects[(resource.plural, name)] = updated
        return copy.deepcopy(updated)

    async def delete(self, resource: Resource, namespace: str, name: str, *, propagation: str = "Background") -> bool:
        return self.objects.pop((resource.plural, name), None) is not None

    async def read_log(self, namespace: str, pod: str, container: str, *, limit_bytes: int) -> str:
        return self.logs.get(pod, "")

    async def read_log_since(self, namespace: str, pod: str, container: str, *, since: str | None,
                             limit_bytes: int) -> str:
        """The log with one timestamp per line (line i at second i), as the kubelet adds them."""
        lines = self.logs.get(pod, "").splitlines()
        stamped = [f"2026-01-01T00:00:{i:02d}.000000001Z {line}\n" for i, line in enumerate(lines)]
        if since:
            stamped = [line for line in stamped if line[:19] >= since[:19]]
        return "".join(stamped)[:limit_bytes]

    def finish_pod(self, trial: str, *, message: str | None = None, exit_code: int = 0, log: str = "") -> None:
        """What the Job controller and kubelet would do: a pod of the trial's Job that terminated."""
        job = self.objects[("jobs", trial)]
        name = f"{trial}-pod"
        self.logs[name] = log
        self.objects[("pods", name)] = {
            "metadata": {"name": name, "namespace": NS, "labels": {"kubetune.io/trial": trial},
                         "creationTimestamp": "2026-01-01T00:00:01Z",
                         "ownerReferences": [{"uid": job["metadata"]["uid"]}]},
            "spec": {"containers": [{"name": "trial"}]},
            "status": {"phase": "Succeeded" if exit_code == 0 else "Failed", "containerStatuses": [{
                "name": "trial", "state": {"terminated": {"exitCode": exit_code, "message": message}}}]},
        }


def experiment_body(max_trials: int = 4, parallel: int = 2) -> Body:
    return {
        "apiVersion": "kubetune.io/v1alpha1", "kind": "Experiment",
        "metadata": {"name": "exp", "namespace": NS, "uid": "exp-uid", "resourceVersion": "1", "generation": 1},
        "spec": {
            "objective": {"metric": "score", "goal": "maximize"},
            "algorithm": {"name": "sobol", "seed": 1},
            "maxTrials": max_trials, "parallelTrials": parallel,
            "parameters": [{"name": "x", "type": "double", "min": 0.0, "max": 1.0}],
            "trialTemplate": {"spec": {"template": {"spec": {"containers": [
                {"name": "trial", "image": "img", "command": ["python3", "-c", "pass"]}]}}}},
        },
    }


@pytest.fixture
def world() -> Iterator[tuple[Runtime, FakeApi]]:
    api = FakeApi()
    api.objects[("experiments", "exp")] = experiment_body()
    pool = ThreadPoolExecutor(max_workers=1)
    rt = Runtime(api=api, config=OperatorConfig(), metrics=OperatorMetrics(CollectorRegistry()),  # type: ignore[arg-type]
                 plans=pool, events=EventPoster(api))  # type: ignore[arg-type]
    yield rt, api
    pool.shutdown()


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def phases(api: FakeApi) -> dict[str, str]:
    return {n: (o.get("status") or {}).get("phase", "Pending") for (p, n), o in api.objects.items() if p == "trials"}


def test_a_pass_creates_trials_and_their_jobs_at_once(world: tuple[Runtime, FakeApi]) -> None:
    rt, api = world
    run(experiments.reconcile(rt, NS, "exp"))
    assert sorted(api.creates) == [("jobs", "exp-0"), ("jobs", "exp-1"), ("trials", "exp-0"), ("trials", "exp-1")]
    assert api.creates.index(("trials", "exp-0")) < api.creates.index(("jobs", "exp-0"))
    job = api.objects[("jobs", "exp-0")]
    assert job["metadata"]["ownerReferences"][0]["uid"] == api.objects[("trials", "exp-0")]["metadata"]["uid"]
    assert api.objects[("trials", "exp-0")]["status"]["startTime"]
    status = api.objects[("experiments", "exp")]["status"]
    assert status["phase"] == "Running"


def test_the_loop_runs_to_the_end_and_a_repeated_pass_changes_nothing(world: tuple[Runtime, FakeApi]) -> None:
    rt, api = world
    for _ in range(10):
        run(experiments.reconcile(rt, NS, "exp"))
        for name, phase in phases(api).items():
            if phase not in ("Succeeded", "Failed") and ("pods", f"{name}-pod") not in api.objects:
                api.finish_pod(name, message='{"score": 0.5}')
            run(trials.sync_trial(rt, NS, name))
    status = api.objects[("experiments", "exp")]["status"]
    assert status["phase"] == "Succeeded"
    assert status["trials"]["succeeded"] == 4
    assert sorted(n for p, n in api.creates if p == "trials") == ["exp-0", "exp-1", "exp-2", "exp-3"]
    assert sorted(n for p, n in api.creates if p == "jobs") == ["exp-0", "exp-1", "exp-2", "exp-3"]
    version = api.objects[("experiments", "exp")]["metadata"]["resourceVersion"]
    run(experiments.reconcile(rt, NS, "exp"))
    assert api.objects[("experiments", "exp")]["metadata"]["resourceVersion"] == version, "status rewritten"


@pytest.mark.parametrize(("message", "exit_code", "log", "reason"), [
    ('{"score": 0.5}', 0, "", "Completed"),
    (None, 1, "loading\nboom: gave up\n", "NonZeroExit"),
    ("score: very good{", 0, "", "MetricsInvalid"),
    ('{"other": 1}', 0, "", "ObjectiveMissing"),
])
def test_a_finished_pod_is_harvested(world: tuple[Runtime, FakeApi], message: str | None, exit_code: int,
                                     log: str, reason: str) -> None:
    rt, api = world
    run(experiments.reconcile(rt, NS, "exp"))
    api.finish_pod("exp-0", message=message, exit_code=exit_code, log=log)
    run(trials.sync_trial(rt, NS, "exp-0"))
    status = api.objects[("trials", "exp-0")]["status"]
    assert status["reason"] == reason
    assert status["phase"] == ("Succeeded" if reason == "Completed" else "Failed")
    if reason == "NonZeroExit":
        assert status["message"] == "exited with code 1: boom: gave up"


def test_a_deleted_job_fails_its_trial_and_is_never_recreated(world: tuple[Runtime, FakeApi]) -> None:
    rt, api = world
    run(experiments.reconcile(rt, NS, "exp"))
    run(api.delete(JOBS, NS, "exp-0"))
    run(trials.sync_trial(rt, NS, "exp-0"))
    assert api.objects[("trials", "exp-0")]["status"]["reason"] == "JobDeleted"
    assert ("jobs", "exp-0") not in api.objects


def test_a_trial_recorded_before_a_crash_gets_its_job_on_the_next_pass(world: tuple[Runtime, FakeApi]) -> None:
    rt, api = world
    exp = api.objects[("experiments", "exp")]
    manifest = trials.trial_manifest(exp, "exp-0", 0, {"x": 0.5})
    run(api.create(TRIALS, NS, manifest))  # the operator died right after this
    run(trials.sync_trial(rt, NS, "exp-0"))
    assert ("jobs", "exp-0") in api.objects
    run(trials.sync_trial(rt, NS, "exp-0"))
    assert [c for c in api.creates if c == ("jobs", "exp-0")] == [("jobs", "exp-0")]


def test_an_invalid_spec_fails_the_experiment_once(world: tuple[Runtime, FakeApi]) -> None:
    rt, api = world
    api.objects[("experiments", "exp")]["spec"]["parameters"][0]["max"] = -1.0
    run(experiments.reconcile(rt, NS, "exp"))
    status = api.objects[("experiments", "exp")]["status"]
    assert status["phase"] == "Failed"
    condition = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert condition["reason"] == "InvalidSpec"
    assert "spec.parameters[0].max" in condition["message"]
    version = api.objects[("experiments", "exp")]["metadata"]["resourceVersion"]
    run(experiments.reconcile(rt, NS, "exp"))
    assert api.objects[("experiments", "exp")]["metadata"]["resourceVersion"] == version


def test_a_status_conflict_is_retried_on_the_fresh_object(world: tuple[Runtime, FakeApi]) -> None:
    rt, api = world
    from kubetune.kube.patching import write_status

    stale = copy.deepcopy(api.objects[("experiments", "exp")])
    run(api.patch(EXPERIMENTS, NS, "exp", {"status": {"kopf": {"progress": {}}}}, status=True))
    written = run(write_status(rt.api, EXPERIMENTS, stale, {"phase": "Running"}))
    assert written["status"] == {"phase": "Running", "kopf": {"progress": {}}}
    assert merge_patch(written["status"], {"phase": "Running", "kopf": {"progress": {}}}) == {}


def test_resource_paths_name_the_namespace_object_and_subresource() -> None:
    assert PODS.path(NS, "p", "log") == "/api/v1/namespaces/default/pods/p/log"
    assert TRIALS.path(NS, "t", "status") == "/apis/kubetune.io/v1alpha1/namespaces/default/trials/t/status"
    assert EXPERIMENTS.path(None) == "/apis/kubetune.io/v1alpha1/experiments"


class TimeoutAfterCreate(FakeApi):
    """The first create lands but its answer is lost (a client timeout): the poster retries."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts = 1

    async def create(self, resource: Resource, namespace: str, body: Body) -> Body:
        created = await super().create(resource, namespace, body)
        if self.timeouts:
            self.timeouts -= 1
            raise TimeoutError("no answer")
        return created


def test_an_event_is_created_once_however_often_it_is_posted() -> None:
    api = TimeoutAfterCreate()
    poster = EventPoster(api)  # type: ignore[arg-type]
    body = experiment_body()
    created = Event("Normal", "TrialCreated", "trial exp-0 created with x=0.5")

    async def post_all() -> None:
        for event in (created, created, Event("Normal", "TrialCreated", "trial exp-1 created with x=0.25")):
            poster.on_experiment(body, event)
        while not poster.queue.empty():
            await poster._send(poster.queue.get_nowait())

    run(post_all())
    posted = [o for (plural, _), o in api.objects.items() if plural == "events"]
    # the timed-out create landed, its retry and the repeated post found it: one Event per message
    assert sorted(o["message"] for o in posted) == ["trial exp-0 created with x=0.5", "trial exp-1 created with x=0.25"]
    assert all(o["involvedObject"]["uid"] == "exp-uid" for o in posted)


def test_the_metrics_endpoint_counts_experiments_and_trials_by_phase() -> None:
    from prometheus_client import generate_latest

    from kubetune.api import ExperimentPhase, TrialCounts

    registry = CollectorRegistry()
    metrics = OperatorMetrics(registry)
    metrics.snapshot.update("ns", "a", ExperimentPhase.SUCCEEDED,
                            TrialCounts(created=5, succeeded=2, failed=1, early_stopped=2))
    text = generate_latest(registry).decode()
    assert 'kubetune_experiments{phase="Succeeded"} 1.0' in text
    assert 'kubetune_trials{phase="EarlyStopped"} 2.0' in text and 'kubetune_trials{phase="Failed"} 1.0' in text


@pytest.mark.parametrize(("path", "what"), [
    ("/api/v1/namespaces/n/pods/p/log", "pods/log"),
    ("/apis/kubetune.io/v1alpha1/namespaces/n/trials/t/status", "trials/status"),
    ("/apis/kubetune.io/v1alpha1/namespaces/n/trials", "trials"),
    ("/apis/batch/v1/namespaces/n/jobs/j", "jobs"),
    ("/apis/kubetune.io/v1alpha1/experiments", "experiments"),
])
def test_requests_are_counted_by_resource_and_subresource(path: str, what: str) -> None:
    from kubetune.kube.client import _what

    assert _what(path) == what
