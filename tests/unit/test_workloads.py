"""Multi-node trials: a JobSet (or PyTorchJob) template rendered for a trial, and its outcome read."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from kubetune.api import Experiment, ObjectMeta, Trial, TrialReason, TrialSpec, TrialStatus
from kubetune.api.workloads import pod_templates
from kubetune.kube.classification import (
    CreateJob,
    Disrupted,
    Fail,
    Harvest,
    MarkRunning,
    Queue,
    Wait,
    classify_workload,
)
from kubetune.trial import render_job, render_process
from tests.unit.factories import experiment_dict

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
JUST_NOW = "2026-01-01T11:59:59Z"
TEN_MIN = dt.timedelta(minutes=10)


def container(name: str) -> dict[str, Any]:
    return {"name": name, "image": "trainer:1", "command": ["torchrun", "train.py", "--lr=${params.lr}"],
            "env": [{"name": "LAYERS", "value": "${params.layers}"}]}


JOBSET_SPEC: dict[str, Any] = {"replicatedJobs": [
    {"name": "trainer", "replicas": 1, "template": {"spec": {"parallelism": 2, "completions": 2, "template": {
        "spec": {"containers": [container("trainer")]}}}}},
    {"name": "evaluator", "replicas": 1, "template": {"spec": {"template": {
        "metadata": {"labels": {"role": "eval"}}, "spec": {"containers": [container("eval")]}}}}},
]}


def jobset_experiment(**template: Any) -> Experiment:
    body = experiment_dict()
    body["spec"]["trialTemplate"] = {"kind": "JobSet", "spec": copy.deepcopy(JOBSET_SPEC), **template}
    return Experiment.model_validate(body)


def a_trial(retries: int = 0, **status: Any) -> Trial:
    return Trial(metadata=ObjectMeta(name="exp-3", uid="trial-uid"),
                 spec=TrialSpec(index=3, params={"lr": 0.01, "layers": 2, "opt": "adam"}),
                 status=TrialStatus(retries=retries, **status))


def test_every_replica_gets_the_parameters_the_env_and_the_trial_labels() -> None:
    manifest = render_job(jobset_experiment(), a_trial(retries=1))
    assert (manifest["apiVersion"], manifest["kind"]) == ("jobset.x-k8s.io/v1alpha2", "JobSet")
    assert manifest["metadata"]["name"] == "exp-3"
    assert manifest["metadata"]["annotations"]["kubetune.io/attempt"] == "1"
    pods = list(pod_templates(manifest["spec"]))
    assert [path for path, _ in pods] == ["spec.replicatedJobs[0].template.spec.template",
                                          "spec.replicatedJobs[1].template.spec.template"]
    for _, pod in pods:
        labels = pod["metadata"]["labels"]
        assert (labels["kubetune.io/trial"], labels["kubetune.io/experiment"], labels["kubetune.io/attempt"]) == (
            "exp-3", "exp", "1")
        assert pod["spec"]["restartPolicy"] == "Never"
        (c,) = pod["spec"]["containers"]
        assert c["command"] == ["torchrun", "train.py", "--lr=0.01"]
        env = {e["name"]: e["value"] for e in c["env"]}
        assert (env["LAYERS"], env["KUBETUNE_PARAM_LR"], env["KUBETUNE_TRIAL"]) == ("2", "0.01", "exp-3")
    assert pods[1][1]["metadata"]["labels"]["role"] == "eval"  # the template's own labels are kept
    assert "backoffLimit" not in manifest["spec"]  # a Job's default, not a JobSet's


def test_a_local_run_of_a_jobset_runs_its_first_pod_templates_first_container() -> None:
    spec = render_process(jobset_experiment(), a_trial(), workdir="/tmp", metrics_file="/tmp/m.json", base_env={})
    assert spec.argv == ["torchrun", "train.py", "--lr=0.01"] and spec.env["LAYERS"] == "2"


def test_primary_pod_defaults_to_rank_zero_of_the_first_replica_group() -> None:
    assert jobset_experiment().spec.trial_template.primary_labels() == {
        "jobset.sigs.k8s.io/replicatedjob-name": "trainer", "jobset.sigs.k8s.io/job-index": "0",
        "batch.kubernetes.io/job-completion-index": "0"}
    given = jobset_experiment(primaryPodLabels={"role": "eval"}).spec.trial_template
    assert given.primary_labels() == {"role": "eval"}
    body = experiment_dict()
    body["spec"]["trialTemplate"] = {"kind": "PyTorchJob", "spec": {"pytorchReplicaSpecs": {
        "Master": {"replicas": 1, "template": {"spec": {"containers": [container("pytorch")]}}},
        "Worker": {"replicas": 2, "template": {"spec": {"containers": [container("pytorch")]}}}}}}
    template = Experiment.model_validate(body).spec.trial_template
    assert template.primary_labels() == {"training.kubeflow.org/replica-type": "master",
                                         "training.kubeflow.org/replica-index": "0"}
    assert (template.resolved_api_version, template.resolved_success_condition) == ("kubeflow.org/v1", "Succeeded")
    assert len(template.pods()) == 2


@pytest.mark.parametrize(("template", "words"), [
    ({"kind": "JobSet", "spec": {"template": {"spec": {"containers": [container("t")]}}}}, "not in spec.template"),
    ({"kind": "JobSet", "spec": {"replicatedJobs": []}}, "has no pod template"),
    ({"kind": "Job", "spec": {"backoffLimit": 1}}, "needs spec.template"),
    ({"kind": "ArgoWorkflow", "spec": {}}, "kind"),
    ({"kind": "JobSet", "spec": {"replicatedJobs": [{"name": "a", "template": {"spec": {"template": {"spec": {
        "containers": [{"name": "a", "image": "i", "args": ["${params.nope}"]}]}}}}}]}},
     "trialTemplate.spec.replicatedJobs[0].template.spec.template.spec.containers[0].args[0]: ${params.nope} "
     "refers to no parameter"),
])
def test_a_template_that_does_not_fit_its_kind_is_refused(template: dict[str, Any], words: str) -> None:
    body = experiment_dict()
    body["spec"]["trialTemplate"] = template
    with pytest.raises(ValidationError, match=None) as err:
        Experiment.model_validate(body)
    assert words in str(err.value)


# --- the outcome of a JobSet ------------------------------------------------------------------------


def jobset(*conditions: str, suspend: bool = False, attempt: int = 0) -> dict[str, Any]:
    return {"metadata": {"name": "exp-3", "uid": "js-uid", "creationTimestamp": JUST_NOW,
                         "ownerReferences": [{"uid": "trial-uid"}],
                         "annotations": {"kubetune.io/attempt": str(attempt)}},
            "spec": {"suspend": suspend},
            "status": {"conditions": [{"type": t, "status": "True", "reason": f"{t}Reason", "message": f"it {t}"}
                                      for t in conditions]}}


def pod(name: str, phase: str, *, rank: int = 0, job: str = "trainer", exit_code: int | None = None,
        report: str | None = None, attempt: int = 0, disrupted: bool = False) -> dict[str, Any]:
    state = {"terminated": {"exitCode": exit_code, **({"message": report} if report else {})}} \
        if exit_code is not None else {}
    status: dict[str, Any] = {"phase": phase, "containerStatuses": [{"name": "trainer", "state": state}]}
    if disrupted:
        status["conditions"] = [{"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                                 "message": "preempted"}]
    labels = {"kubetune.io/trial": "exp-3", "kubetune.io/attempt": str(attempt),
              "jobset.sigs.k8s.io/replicatedjob-name": job, "jobset.sigs.k8s.io/job-index": "0",
              "batch.kubernetes.io/job-completion-index": str(rank)}
    return {"metadata": {"name": name, "creationTimestamp": JUST_NOW, "labels": labels},
            "spec": {"containers": [{"name": "trainer"}]}, "status": status}


RANK0_OK = pod("r0", "Succeeded", exit_code=0, report='{"accuracy": 0.9}')
RANK1_OK = pod("r1", "Succeeded", rank=1, exit_code=0)

CASES: list[tuple[str, Trial, dict[str, Any] | None, list[dict[str, Any]], object]] = [
    ("not made yet", a_trial(), None, [], CreateJob()),
    ("made, gone", a_trial(start_time=JUST_NOW), None, [],
     Fail(TrialReason.JOB_DELETED, "JobSet exp-3 was deleted before the trial finished")),
    ("rank 0 runs", a_trial(start_time=JUST_NOW), jobset(), [pod("r1", "Running", rank=1), pod("r0", "Running")],
     MarkRunning("r0", "trainer")),
    ("only rank 1 runs", a_trial(start_time=JUST_NOW), jobset(), [pod("r1", "Running", rank=1), pod("r0", "Pending")],
     Wait("2 pod(s), the primary one not running yet")),
    ("completed: rank 0's report", a_trial(start_time=JUST_NOW), jobset("Completed"), [RANK1_OK, RANK0_OK],
     Harvest("r0", "trainer", 0, '{"accuracy": 0.9}')),
    ("pods of the disrupted attempt are not this one's", a_trial(retries=1, attempt_time=JUST_NOW),
     jobset("Completed", attempt=1), [RANK0_OK, pod("r0b", "Succeeded", exit_code=0, report='{"accuracy": 0.8}',
                                                   attempt=1)],
     Harvest("r0b", "trainer", 0, '{"accuracy": 0.8}')),
    ("completed, no rank 0", a_trial(start_time=JUST_NOW), jobset("Completed"), [RANK1_OK],
     Fail(TrialReason.METRICS_UNAVAILABLE, "the JobSet succeeded but no pod matches primaryPodLabels "
          "{'jobset.sigs.k8s.io/job-index': '0', 'jobset.sigs.k8s.io/replicatedjob-name': 'trainer', "
          "'batch.kubernetes.io/job-completion-index': '0'}, so its report cannot be read")),
    ("failed: rank 0 exited 1", a_trial(start_time=JUST_NOW), jobset("Failed"),
     [pod("r0", "Failed", exit_code=1), pod("r1", "Failed", rank=1, exit_code=143, disrupted=True)],
     Harvest("r0", "trainer", 1, None)),
    ("failed: a worker was preempted", a_trial(start_time=JUST_NOW), jobset("Failed"),
     [pod("r0", "Failed", exit_code=143), pod("r1", "Failed", rank=1, exit_code=143, disrupted=True)],
     Disrupted("r1", "PreemptionByScheduler", "pod r1 was disrupted (PreemptionByScheduler): preempted")),
    ("failed, no pod says why", a_trial(start_time=JUST_NOW), jobset("Failed"), [],
     Fail(TrialReason.JOB_FAILED, "JobSet FailedReason: it Failed")),
    ("suspended by a queue", a_trial(start_time=JUST_NOW), jobset(suspend=True), [], Queue(True)),
]


@pytest.mark.parametrize(("case", "the_trial", "obj", "pods", "expected"), CASES, ids=[c[0] for c in CASES])
def test_classify_a_jobset(case: str, the_trial: Trial, obj: dict[str, Any] | None, pods: list[dict[str, Any]],
                           expected: object) -> None:
    template = jobset_experiment().spec.trial_template
    assert classify_workload(the_trial, obj, pods, template=template, now=NOW,
                             unschedulable_after=TEN_MIN) == expected
