"""kubetune on a real cluster: Helm install, least-privilege RBAC, a PyTorch experiment end to end.

In file order the tests tell one story, step by step: install → RBAC proof → All-CNN on digits
until Succeeded → helm test → helm upgrade → deleting an Experiment removes its children → helm
uninstall keeps Experiments and Trials.

No test depends on another having run: what a test needs comes from a fixture that makes it when it
is missing. ``release`` (before each test) installs the chart unless it is deployed with a Ready
operator; ``allcnn`` (once per module) applies the All-CNN Experiment unless it exists, and waits
for it to finish. So any test runs alone (``-k printer``) or in any order, and a full run still
installs once and runs the experiment once.

    .venv/bin/pytest tests/e2e -m e2e -v      # KUBETUNE_CLUSTER=offline|kind|existing (conftest.py)
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import browser
from tests.e2e import rbac
from tests.e2e.conftest import OPERATOR_IMAGE, Cluster, sh
from tests.e2e.tools import CHART, KUBERNETES_VERSION, REPO

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]

RELEASE = "kubetune"
SYSTEM_NS = "kubetune-system"  # the operator's namespace
WATCHED_NS = "kt-e2e"  # the one namespace it watches (namespaced RBAC)
OTHER_NS = "kt-e2e-other"  # a namespace it must not touch
EXPERIMENT = "allcnn-digits"
#: The example asks 8 trials of 1 CPU each; the test applies a copy with 6 trials (the same
#: epochs) and half a CPU per trial, so two trials and the operator fit a 2-core CI node.
MAX_TRIALS, TRIAL_CPU = 6, "500m"
OPERATOR_SA = f"system:serviceaccount:{SYSTEM_NS}:{RELEASE}"


def install_args() -> list[str]:
    repository, tag = OPERATOR_IMAGE.split(":")
    return [str(CHART), "--namespace", SYSTEM_NS, "--create-namespace", "--wait", "--timeout", "5m",
            "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
            "--set", "image.pullPolicy=IfNotPresent", "--set", f"watchNamespaces={{{WATCHED_NS}}}"]


def get_json(cluster: Cluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def exists(cluster: Cluster, *args: str) -> bool:
    return cluster.kubectl("get", *args, "-o", "name", check=False).returncode == 0


def experiment(cluster: Cluster, name: str = EXPERIMENT) -> dict[str, Any]:
    result: dict[str, Any] = get_json(cluster, "experiment", name, "-n", WATCHED_NS)
    return result


def trials_of(cluster: Cluster, name: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get_json(cluster, "trials", "-n", WATCHED_NS, "-l",
                                           f"kubetune.io/experiment={name}")["items"]
    return items


def operator_ready(cluster: Cluster) -> bool:
    got = cluster.kubectl("get", "deployment", RELEASE, "-n", SYSTEM_NS, "-o", "json", check=False)
    if got.returncode != 0:
        return False
    deployment = json.loads(got.stdout)
    status = deployment.get("status", {})
    return bool(status.get("readyReplicas") == 1 and status.get("updatedReplicas") == 1
                and status.get("observedGeneration") == deployment["metadata"]["generation"])


def deployed(cluster: Cluster) -> bool:
    """Helm has the release, deployed (not uninstalled, not failed)."""
    got = cluster.helm("status", RELEASE, "--namespace", SYSTEM_NS, "-o", "json", check=False)
    return got.returncode == 0 and json.loads(got.stdout).get("info", {}).get("status") == "deployed"


def create_namespace(cluster: Cluster, name: str) -> None:
    """The namespace, made unless it exists; one an earlier run's cleanup is still deleting is
    waited out first (the cleanup deletes with --wait=false)."""
    def settled() -> bool:
        got = cluster.kubectl("get", "namespace", name, "-o", "jsonpath={.status.phase}", check=False)
        return got.returncode != 0 or got.stdout.strip() != "Terminating"

    cluster.wait_for(f"namespace {name} to finish terminating", settled, 300)
    cluster.kubectl("create", "namespace", name, check=False)


def ensure_release(cluster: Cluster) -> None:
    """The chart installed with a Ready operator: installed here unless it is deployed already (a
    deployed release is kept as it is, values included, and only awaited)."""
    if deployed(cluster):
        if not operator_ready(cluster):
            wait_serving(cluster)
        return
    for namespace in (SYSTEM_NS, WATCHED_NS, OTHER_NS):
        create_namespace(cluster, namespace)
    started = time.monotonic()
    cluster.helm("upgrade", "--install", RELEASE, *install_args())
    wait_serving(cluster)
    phase = "helm install" if "helm install" not in cluster.timings else "helm install again"
    cluster.timings[phase] = time.monotonic() - started


def wait_serving(cluster: Cluster, what: str = "the operator Deployment to be Ready") -> None:
    """The operator Ready and its webhook reachable. A Ready pod reaches the Service's endpoints,
    then kube-proxy's rules, a moment later; until then the API server cannot call the webhook
    ("connection refused"), as a user right after `helm install` or `helm upgrade` would see too
    (docs/install.md)."""
    cluster.wait_for(what, lambda: operator_ready(cluster), 300)
    cluster.wait_for("the webhook to answer through its Service", lambda: webhook_answers(cluster), 120)


def webhook_answers(cluster: Cluster) -> bool:
    """A server-side dry run in the watched namespace reached the webhook (whatever it decided)."""
    attempt = cluster.kubectl("apply", "--dry-run=server", "-n", WATCHED_NS, "-f", "-", input=bad_point(),
                              check=False)
    return "failed calling webhook" not in attempt.stderr


@pytest.fixture
def release(cluster: Cluster, images: list[str]) -> Cluster:
    """The cluster with the release installed and its operator Ready (a cheap check when it is)."""
    ensure_release(cluster)
    return cluster


# --- install and RBAC --------------------------------------------------------------------------


def test_operator_is_ready_with_a_restricted_pod(release: Cluster) -> None:
    pod = get_json(release, "pods", "-n", SYSTEM_NS, "-l", "app.kubernetes.io/component=operator")["items"][0]
    container = pod["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["status"]["containerStatuses"][0]["ready"] is True
    assert f"--namespace={WATCHED_NS}" in container["args"]


def test_the_webhook_refuses_at_apply_time_what_cel_cannot_check(release: Cluster) -> None:
    """Through the chart's Service and generated certificate to the operator pod, in the watched
    namespace only (a namespaced operator judges no Experiment it would not run)."""
    refused = release.kubectl("apply", "--dry-run=server", "-n", WATCHED_NS, "-f", "-", input=bad_point(),
                              check=False)
    assert refused.returncode != 0
    assert ('admission webhook "experiments.kubetune.io" denied the request: invalid Experiment: '
            "spec: initialPoints[0].x: 1.5 is outside [0, 1]") in refused.stderr, refused.stderr
    create_namespace(release, OTHER_NS)
    elsewhere = release.kubectl("apply", "--dry-run=server", "-n", OTHER_NS, "-f", "-", input=bad_point(),
                                check=False)
    assert elsewhere.returncode == 0, elsewhere.stderr


def can_i_list(cluster: Cluster, user: str, namespace: str) -> set[rbac.Permission]:
    return rbac.parse_can_i_list(cluster.kubectl("auth", "can-i", "--list", f"--as={user}", "-n", namespace).stdout)


@pytest.fixture(scope="module")
def baseline(cluster: Cluster) -> set[rbac.Permission]:
    """What any ServiceAccount may do (self reviews, discovery): a fresh one with no binding."""
    create_namespace(cluster, OTHER_NS)
    cluster.kubectl("create", "serviceaccount", "rbac-baseline", "-n", OTHER_NS, check=False)
    return can_i_list(cluster, f"system:serviceaccount:{OTHER_NS}:rbac-baseline", OTHER_NS)


def test_namespaced_rbac_is_exactly_the_minimal_set(release: Cluster, baseline: set[rbac.Permission]) -> None:
    assert can_i_list(release, OPERATOR_SA, WATCHED_NS) - baseline == rbac.NAMESPACED | rbac.CLUSTER
    # Nothing in any other namespace, its own included: only the cluster-scoped CRD watch.
    assert can_i_list(release, OPERATOR_SA, OTHER_NS) - baseline == rbac.CLUSTER
    assert can_i_list(release, OPERATOR_SA, SYSTEM_NS) - baseline == rbac.CLUSTER
    for verb, resource in (("list", "pods"), ("create", "jobs.batch"), ("list", "experiments.kubetune.io")):
        answer = release.kubectl("auth", "can-i", verb, resource, f"--as={OPERATOR_SA}", "-n", OTHER_NS, check=False)
        assert answer.stdout.strip() == "no", (verb, resource)
    assert release.kubectl("auth", "can-i", "list", "secrets", f"--as={OPERATOR_SA}", "-n", WATCHED_NS,
                           check=False).stdout.strip() == "no"


def test_cluster_wide_rbac_is_exactly_the_minimal_set(release: Cluster, baseline: set[rbac.Permission]) -> None:
    """The cluster-wide mode's RBAC, applied on its own (a second operator would race the first)."""
    rendered = release.helm("template", "kt-cw", str(CHART), "--namespace", OTHER_NS,
                            "--kube-version", KUBERNETES_VERSION, "--show-only", "templates/serviceaccount.yaml",
                            "--show-only", "templates/rbac.yaml").stdout
    release.kubectl("apply", "-f", "-", input=rendered)
    try:
        user = f"system:serviceaccount:{OTHER_NS}:kt-cw-kubetune"
        for namespace in (WATCHED_NS, "default"):
            assert can_i_list(release, user, namespace) - baseline == rbac.NAMESPACED | rbac.CLUSTER
        assert release.kubectl("auth", "can-i", "list", "namespaces", f"--as={user}",
                               check=False).stdout.strip() == "no"
    finally:
        release.kubectl("delete", "-f", "-", "--wait=false", input=rendered, check=False)


# --- a real experiment -------------------------------------------------------------------------


def example_copy() -> str:
    """examples/allcnn-digits.yaml with fewer trials and a smaller CPU request (see MAX_TRIALS)."""
    manifest = yaml.safe_load((REPO / "examples" / "allcnn-digits.yaml").read_text())
    manifest["spec"]["maxTrials"] = MAX_TRIALS
    assert manifest["spec"]["parallelTrials"] == 2
    container = manifest["spec"]["trialTemplate"]["spec"]["template"]["spec"]["containers"][0]
    container["resources"]["requests"]["cpu"] = TRIAL_CPU
    return yaml.safe_dump(manifest)


def finished(cluster: Cluster, name: str) -> bool:
    return experiment(cluster, name).get("status", {}).get("phase") in ("Succeeded", "Failed")


@pytest.fixture(scope="module")
def allcnn(cluster: Cluster, images: list[str]) -> Cluster:
    """The All-CNN Experiment, finished: applied here unless it exists, then awaited (once per module)."""
    ensure_release(cluster)
    created = not exists(cluster, "experiment", EXPERIMENT, "-n", WATCHED_NS)
    if created:
        cluster.kubectl("apply", "-n", WATCHED_NS, "-f", "-", input=example_copy())
    took = cluster.wait_for(f"{EXPERIMENT} to finish", lambda: finished(cluster, EXPERIMENT), 1800, interval=5)
    if created:
        cluster.timings["experiment"] = took
    return cluster


def parse_time(timestamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(timestamp)


def most_at_once(trials: list[dict[str, Any]]) -> int:
    """The most Trials active at one moment, from each one's ``[startTime, completionTime)``.

    The stamps have whole seconds: a trial that ends in the second the next one starts counts as
    ended first (the next trial is only created once the operator has recorded the end)."""
    edges = sorted([(parse_time(t["status"]["startTime"]), 1) for t in trials]
                   + [(parse_time(t["status"]["completionTime"]), -1) for t in trials])
    most = active = 0
    for _, step in edges:
        active += step
        most = max(most, active)
    return most


def test_experiment_runs_to_success(allcnn: Cluster) -> None:
    status = experiment(allcnn)["status"]
    assert status["phase"] == "Succeeded", json.dumps(status, indent=2)
    trials = trials_of(allcnn, EXPERIMENT)
    assert all(t["status"].get("startTime") and t["status"].get("completionTime") for t in trials), \
        [t["status"] for t in trials]
    assert most_at_once(trials) == 2, "parallelTrials: 2 should have run two trials at once, never more"


def test_printer_columns(allcnn: Cluster) -> None:
    table = allcnn.kubectl("get", "experiments", "-n", WATCHED_NS).stdout.splitlines()
    header = table[0].split()
    assert header[:8] == ["NAME", "PHASE", "TRIALS", "RUNNING", "STOPPED", "BEST", "PARETO", "TRIAL-TIME"], table[0]
    line = next(line for line in table[1:] if line.startswith(EXPERIMENT))
    starts = [table[0].index(name) for name in header] + [len(line)]  # cells by the header's columns: one is empty
    row = {name: line[a:b].strip() for name, a, b in zip(header, starts, starts[1:], strict=False)}
    status = experiment(allcnn)["status"]
    assert row["PHASE"] == "Succeeded"
    assert row["TRIALS"] == status["progress"] and row["TRIALS"].endswith(f"/{MAX_TRIALS}")
    assert row["RUNNING"] == "0"
    assert row["STOPPED"] == str(status["trials"]["earlyStopped"])
    assert float(row["BEST"]) == pytest.approx(status["bestTrial"]["objectiveValue"], rel=1e-6)
    assert row["TRIAL-TIME"] == status["trialTime"] and status["trialSeconds"] > 0
    assert row["PARETO"] == ""  # one objective


def test_every_trial_that_trained_has_its_learning_curve_and_stopped_ones_are_gone(allcnn: Cluster) -> None:
    status = experiment(allcnn)["status"]
    trials = trials_of(allcnn, EXPERIMENT)
    stopped = [t for t in trials if t["status"]["phase"] == "EarlyStopped"]
    assert status["trials"]["earlyStopped"] == len(stopped)
    for trial in trials:
        st = trial["status"]
        if st["phase"] not in ("Succeeded", "EarlyStopped"):
            continue  # a diverged trial fails at its first epoch, before it reports one
        steps = [p["step"] for p in st["curve"]]
        assert steps == list(range(1, len(steps) + 1)), (trial["metadata"]["name"], steps)  # one point per epoch
        assert all(0 <= p["metrics"]["accuracy"] <= 1 for p in st["curve"])
        if st["phase"] == "Succeeded":  # the final report is the last epoch's validation accuracy
            assert st["curve"][-1]["metrics"]["accuracy"] == pytest.approx(st["objectiveValue"], abs=1e-6)
        else:
            assert st["reason"] == "AshaRung" and "by asha" in st["message"], st
            assert not exists(allcnn, "job", trial["metadata"]["name"], "-n", WATCHED_NS)
    print(f"\n{len(stopped)} of {len(trials)} trials stopped early; trial time {status['trialTime']}")


def test_trials_carry_real_accuracies_and_the_best_is_the_best(allcnn: Cluster) -> None:
    status = experiment(allcnn)["status"]
    trials = trials_of(allcnn, EXPERIMENT)
    assert len(trials) == MAX_TRIALS
    succeeded = [t for t in trials if t["status"]["phase"] == "Succeeded"]
    assert succeeded, [t["status"] for t in trials]
    for trial in succeeded:
        metrics = trial["status"]["metrics"]
        assert 0 < metrics["accuracy"] <= 1 and metrics["loss"] >= 0, metrics
        assert trial["status"]["objectiveValue"] == metrics["accuracy"]
        assert trial["metadata"]["ownerReferences"][0]["name"] == EXPERIMENT
    best = max(succeeded, key=lambda t: t["status"]["objectiveValue"])
    print(f"\n{len(succeeded)}/{len(trials)} trials succeeded; best {best['metadata']['name']} "
          f"accuracy={best['status']['objectiveValue']:.4f} params={best['spec']['params']}")
    assert status["bestTrial"]["name"] == best["metadata"]["name"]
    assert status["bestTrial"]["objectiveValue"] == best["status"]["objectiveValue"]
    # ...and that value is what the trial's pod reported in its termination message. The pod is
    # always there: the operator deletes a Job only to stop its trial or after failing it, never
    # after a harvest; the Job sets no ttlSecondsAfterFinished; a Job's finished pods stay with it.
    # The operator harvests from the terminated pod, so the Job controller may count the success
    # a moment after the Trial is Succeeded (seen once with the best trial the last to finish).
    def job_counted() -> bool:
        return get_json(allcnn, "job", best["metadata"]["name"], "-n", WATCHED_NS)["status"].get("succeeded") == 1

    allcnn.wait_for(f"job {best['metadata']['name']} to count its succeeded pod", job_counted, 60)
    job = get_json(allcnn, "job", best["metadata"]["name"], "-n", WATCHED_NS)
    assert job["status"].get("succeeded") == 1 and "ttlSecondsAfterFinished" not in job["spec"], job["status"]
    pods = get_json(allcnn, "pods", "-n", WATCHED_NS, "-l", f"kubetune.io/trial={best['metadata']['name']}")["items"]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]  # backoffLimit: 0
    report = json.loads(pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]["message"])
    assert report["accuracy"] == pytest.approx(best["status"]["objectiveValue"], rel=1e-9)


def test_events_tell_the_story(allcnn: Cluster) -> None:
    events = get_json(allcnn, "events", "-n", WATCHED_NS, "--field-selector",
                      f"involvedObject.kind=Experiment,involvedObject.name={EXPERIMENT}")["items"]
    reasons = {e["reason"] for e in events}
    assert {"TrialCreated", "NewBestTrial", "ExperimentSucceeded"} <= reasons, reasons
    messages = [e["message"] for e in events if e["reason"] == "TrialCreated"]
    assert len(messages) == len(set(messages)) == MAX_TRIALS, messages  # each posted once
    created = " ".join(messages)
    for trial in trials_of(allcnn, EXPERIMENT):
        assert f"trial {trial['metadata']['name']} created" in created, created
    described = allcnn.kubectl("describe", "experiment", EXPERIMENT, "-n", WATCHED_NS).stdout
    assert "ExperimentSucceeded" in described and "Conditions" in described


def test_kubectl_tune_report_shows_the_run_in_a_browser(allcnn: Cluster, tmp_path: Path) -> None:
    """What a user does after the run: one HTML file from the API server, opened in Chromium."""
    bin_dir = str(Path(sys.executable).parent)  # where pip put the kubectl-tune plugin
    env = {**allcnn.env, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    made = sh(allcnn.kubectl_bin, "tune", "report", EXPERIMENT, "-n", WATCHED_NS, "--out", str(tmp_path), env=env)
    page = tmp_path / f"{EXPERIMENT}.html"
    assert str(page) in made.stdout and page.is_file(), made.stdout
    visit = browser.visit(page, browser.REPORT_CHECK)
    assert visit.errors == [] and all(u.startswith(("file:", "data:")) for u in visit.requests), visit.errors
    checked = visit.evaluated
    assert [i["alt"] for i in checked["images"]] == ["Search history", "Parameter importance", "Parameters",
                                                     "Learning curves"], checked["images"]
    assert all(i["complete"] and i["width"] > 300 for i in checked["images"]), checked["images"]
    status = experiment(allcnn)["status"]
    assert checked["descending"][0] == status["bestTrial"]["name"]
    assert len(checked["before"]) == MAX_TRIALS
    (tmp_path / "screenshot.png").write_bytes(visit.screenshot)
    print(f"\nreport: {page}; screenshot: {tmp_path / 'screenshot.png'}")
    summary = sh(allcnn.kubectl_bin, "tune", "report", EXPERIMENT, "-n", WATCHED_NS, "--format", "md", env=env)
    assert f"**{status['bestTrial']['name']}**" in summary.stdout and "## Parameter importance" in summary.stdout


def test_the_namespaced_operator_never_asks_for_what_its_rbac_forbids(release: Cluster) -> None:
    # with named namespaces kopf must not scan the cluster's namespaces and CRDs
    log = release.kubectl("logs", f"deployment/{RELEASE}", "-n", SYSTEM_NS).stdout
    forbidden = [line for line in log.splitlines() if "forbidden" in line.lower()]
    assert not forbidden, forbidden[:5]


def test_operator_metrics_endpoint(release: Cluster, allcnn: Cluster) -> None:
    path = f"/api/v1/namespaces/{SYSTEM_NS}/services/{RELEASE}-metrics:8080/proxy/metrics"

    def counted() -> bool:  # an operator started since the experiment ended counts it on its first pass
        got = release.kubectl("get", "--raw", path, check=False)
        return got.returncode == 0 and 'kubetune_experiments{phase="Succeeded"}' in got.stdout

    release.wait_for("the metrics to count the Succeeded experiment", counted, 120)


# --- helm test, upgrade --------------------------------------------------------------------------


def test_helm_test_passes(release: Cluster) -> None:
    started = time.monotonic()
    # no --logs: the test pod is deleted as soon as it succeeds (hook-delete-policy hook-succeeded)
    release.helm("test", RELEASE, "--namespace", SYSTEM_NS, "--timeout", "6m")
    release.timings["helm test"] = time.monotonic() - started


def bad_point() -> str:
    bad = yaml.safe_load(SLEEPER.replace("IMAGE", OPERATOR_IMAGE))
    bad["metadata"]["name"] = "bad-point"
    bad["spec"]["initialPoints"] = [{"x": 1.5}]
    return json.dumps(bad)


def test_helm_upgrade_with_changed_values_keeps_working(release: Cluster, allcnn: Cluster) -> None:
    certificate = get_json(release, "secret", f"{RELEASE}-webhook", "-n", SYSTEM_NS)["data"]
    release.helm("upgrade", RELEASE, *install_args(), "--set", "operator.verbose=true",
                 "--set", "resources.limits.memory=768Mi")
    wait_serving(release, "the upgraded operator to be Ready")
    # the webhook's certificate is kept, not made anew, and the webhook still answers
    assert get_json(release, "secret", f"{RELEASE}-webhook", "-n", SYSTEM_NS)["data"] == certificate
    (webhook,) = get_json(release, "validatingwebhookconfiguration", RELEASE)["webhooks"]
    assert webhook["clientConfig"]["caBundle"] == certificate["ca.crt"]
    refused = release.kubectl("apply", "--dry-run=server", "-n", WATCHED_NS, "-f", "-", input=bad_point(), check=False)
    assert refused.returncode != 0 and "initialPoints[0].x: 1.5 is outside [0, 1]" in refused.stderr, refused.stderr
    deployment = get_json(release, "deployment", RELEASE, "-n", SYSTEM_NS)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["kubetune", "--verbose", "operator"]
    assert container["resources"]["limits"]["memory"] == "768Mi"
    assert experiment(release)["status"]["phase"] == "Succeeded"  # kept across the restart
    release.helm("test", RELEASE, "--namespace", SYSTEM_NS, "--timeout", "6m")


# --- deleting, uninstalling ----------------------------------------------------------------------

SLEEPER = """
apiVersion: kubetune.io/v1alpha1
kind: Experiment
metadata: {name: sleeper}
spec:
  objective: {metric: score, goal: maximize}
  algorithm: {name: random, seed: 1}
  maxTrials: 4
  parallelTrials: 2
  parameters: [{name: x, type: double, min: 0, max: 1}]
  trialTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
          containers:
            - name: trial
              image: IMAGE
              imagePullPolicy: IfNotPresent
              command: [python, -c, "import time; time.sleep(600)"]
              resources: {requests: {cpu: 10m, memory: 32Mi}}
              securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
"""


def children(cluster: Cluster, kind: str, name: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get_json(cluster, kind, "-n", WATCHED_NS, "-l",
                                           f"kubetune.io/experiment={name}")["items"]
    return items


def test_deleting_an_experiment_removes_its_trials_jobs_and_pods(release: Cluster) -> None:
    release.kubectl("apply", "-n", WATCHED_NS, "-f", "-", input=SLEEPER.replace("IMAGE", OPERATOR_IMAGE))
    release.wait_for("two sleeper pods to run", lambda: len(
        [p for p in children(release, "pods", "sleeper") if p["status"].get("phase") == "Running"]) == 2, 180)
    assert len(children(release, "trials", "sleeper")) == 2 and len(children(release, "jobs", "sleeper")) == 2
    release.kubectl("delete", "experiment", "sleeper", "-n", WATCHED_NS, "--wait=true", timeout=180)
    release.wait_for("the sleeper's trials, jobs and pods to go", lambda: not any(
        children(release, kind, "sleeper") for kind in ("trials", "jobs", "pods")), 180)


def test_uninstall_removes_the_operator_and_keeps_experiments_and_trials(release: Cluster, allcnn: Cluster) -> None:
    release.helm("uninstall", RELEASE, "--namespace", SYSTEM_NS, "--wait", "--timeout", "3m")
    assert release.kubectl("get", "deployment", RELEASE, "-n", SYSTEM_NS, check=False).returncode != 0
    assert release.kubectl("get", "clusterrole", f"{RELEASE}-crds", check=False).returncode != 0
    assert release.kubectl("get", "role", RELEASE, "-n", WATCHED_NS, check=False).returncode != 0
    # the webhook goes with the operator: with failurePolicy Fail, one left behind would refuse every apply
    assert release.kubectl("get", "validatingwebhookconfiguration", RELEASE, check=False).returncode != 0
    release.kubectl("apply", "--dry-run=server", "-n", WATCHED_NS, "-f", "-", input=bad_point())
    # Helm never deletes what it installed from crds/: the CRDs stay, and every object with them.
    release.kubectl("get", "crd", "experiments.kubetune.io", "trials.kubetune.io")
    left = experiment(release)
    assert left["status"]["phase"] == "Succeeded"
    trials = trials_of(release, EXPERIMENT)
    assert len(trials) == MAX_TRIALS
    # No finalizer on either (no deletion handler, daemon or timer asks kopf for one), so they can
    # be deleted without an operator: the garbage collector takes the Trials, Jobs and pods.
    assert not any(o["metadata"].get("finalizers") for o in [left, *trials]), \
        {o["metadata"]["name"]: o["metadata"].get("finalizers") for o in [left, *trials]}


@pytest.fixture(scope="module", autouse=True)
def cleanup(cluster: Cluster) -> Any:
    """Afterwards: the test namespaces and the release go.

    Experiments and Trials carry no finalizer (test_uninstall checks it); any one found is dropped
    all the same, so that a failed check never leaves a namespace Terminating for the next run.
    KUBETUNE_E2E_KEEP=1 leaves everything as the tests left it, for a look after a failure."""
    yield
    if os.environ.get("KUBETUNE_E2E_KEEP") == "1":
        return
    cluster.helm("uninstall", RELEASE, "--namespace", SYSTEM_NS, check=False)
    for kind in ("experiments", "trials"):
        listed = cluster.kubectl("get", kind, "-n", WATCHED_NS, "-o", "name", check=False).stdout.split()
        for name in listed:
            cluster.kubectl("patch", name, "-n", WATCHED_NS, "--type=merge", "-p",
                            '{"metadata":{"finalizers":null}}', check=False)
    for namespace in (WATCHED_NS, OTHER_NS, SYSTEM_NS):
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
