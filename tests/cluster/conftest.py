"""Fixtures of the cluster tests: a real API server and node, the CRDs, the operator as a process.

The session uses ``$KUBECONFIG`` when it reaches a cluster; otherwise it brings up the offline one
with ``hack/cluster/{build,images,up}.sh`` and tears it down at the end (only if it started it). A
missing tool fails the session loudly: these tests are never skipped for want of a cluster.

The operator runs out of cluster (``python -m kubetune.cli operator``) with the admin kubeconfig;
tests that kill and restart it use :class:`OperatorProcess`. Each test gets its own namespace.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.cluster.manifests import PYTHON_IMAGE

ROOT = Path(__file__).resolve().parents[2]
HACK = ROOT / "hack" / "cluster"
T = TypeVar("T")


def wait_for(condition: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.3) -> T:
    """Poll ``condition`` until it returns something truthy; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        last = condition()
        if last:
            return last
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what} (last: {str(last)[:500]})")
        time.sleep(interval)


class Kubectl:
    def __init__(self, binary: str, kubeconfig: str) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.env = {**os.environ, "KUBECONFIG": kubeconfig}

    def run(self, *args: str, input: str | None = None, check: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([self.binary, *args], input=input, capture_output=True, text=True,
                                env=self.env, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        result = self.run("get", kind, name, "-n", namespace, "-o", "json", "--ignore-not-found", check=False)
        if result.returncode != 0 or not result.stdout.strip():
            return None
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    def items(self, kind: str, namespace: str, selector: str | None = None) -> list[dict[str, Any]]:
        args = ["get", kind, "-n", namespace]
        if selector:
            args += ["-l", selector]
        return list(self.json(*args)["items"])

    def apply(self, manifest: dict[str, Any] | str, namespace: str, *,
              check: bool = True) -> subprocess.CompletedProcess[str]:
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        return self.run("apply", "-n", namespace, "-f", "-", input=text, check=check)


def _reachable(kubectl: str, kubeconfig: str) -> bool:
    if not Path(kubeconfig).is_file():
        return False
    result = subprocess.run([kubectl, "--kubeconfig", kubeconfig, "--request-timeout=5s", "get", "--raw", "/readyz"],
                            capture_output=True, text=True)
    return result.returncode == 0 and "ok" in result.stdout


def _script(name: str, *args: str, timeout: float = 1800) -> str:
    path = HACK / name
    if not path.exists():
        pytest.fail(f"{path} is missing: the cluster tests need the offline cluster scripts", pytrace=False)
    started = time.monotonic()
    result = subprocess.run(["bash", str(path), *args], capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        pytest.fail(f"{name} failed ({result.returncode}) after {time.monotonic() - started:.0f} s:\n"
                    f"{result.stderr[-4000:]}", pytrace=False)
    return result.stdout.strip()


def _kubectl_binary(*, required: bool = True) -> str:
    """The kubectl that hack/cluster/build.sh pinned, else the one on PATH."""
    if (HACK / "bin-path.sh").exists():
        candidate = Path(_script("bin-path.sh")) / "kubectl"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("kubectl") or ""
    if not found and required:
        pytest.fail("kubectl not found (neither hack/cluster/build.sh's nor one on PATH)", pytrace=False)
    return found


@pytest.fixture(scope="session")
def kube() -> Iterator[Kubectl]:
    """A reachable cluster: ``$KUBECONFIG``'s, or the offline one brought up (and down) here."""
    started_here = False
    kubeconfig = os.environ.get("KUBECONFIG", "")
    kubectl = _kubectl_binary(required=False)
    if kubeconfig and kubectl and _reachable(kubectl, kubeconfig):
        if (HACK / "kubeconfig-path.sh").exists() and _script("kubeconfig-path.sh") == kubeconfig:
            _script("load-image.sh", PYTHON_IMAGE)  # the offline cluster: make sure the trials' image is there
    else:
        for tool in ("bash", "docker", "go"):
            if not shutil.which(tool):
                pytest.fail(f"{tool} is required to bring up the offline cluster and is not installed",
                            pytrace=False)
        _script("build.sh")
        kubectl = _kubectl_binary()
        kubeconfig = _script("kubeconfig-path.sh")
        if not _reachable(kubectl, kubeconfig):
            _script("images.sh")
            # only a cluster this session started is stopped at its end (another may be starting one)
            started_here = "# kubetune-cluster: started" in _script("up.sh")
        _script("load-image.sh", PYTHON_IMAGE)
    client = Kubectl(kubectl, kubeconfig)
    wait_for(lambda: _reachable(kubectl, kubeconfig), timeout=60, what="the API server's /readyz")
    try:
        yield client
    finally:
        if started_here and not os.environ.get("KUBETUNE_KEEP_CLUSTER"):
            _script("down.sh")


@pytest.fixture(scope="session")
def crds(kube: Kubectl) -> Kubectl:
    kube.run("apply", "-f", str(ROOT / "crds"))
    for name in ("experiments.kubetune.io", "trials.kubetune.io"):
        kube.run("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    return kube


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serving_certificate(directory: Path) -> Path:
    """A self-signed certificate for 127.0.0.1 (``tls.crt``, ``tls.key`` in ``directory``): the API
    server reaches the operator's webhook on the host, as the chart's Service reaches its pod."""
    directory.mkdir(parents=True, exist_ok=True)
    if not shutil.which("openssl"):
        pytest.fail("openssl is required to make the webhook's test certificate and is not installed", pytrace=False)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "7", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(directory / "tls.key"),
                    "-out", str(directory / "tls.crt")], check=True, capture_output=True, timeout=60)
    return directory


class OperatorProcess:
    """``kubetune operator`` as a child process that tests may SIGKILL and start again.

    It serves its admission webhook on 127.0.0.1 (a port and a certificate of its own, kept across
    restarts); the ``webhook`` fixture points the API server at it for labelled namespaces only."""

    def __init__(self, kubeconfig: str, log_dir: Path) -> None:
        self.kubeconfig = kubeconfig
        self.log_dir = log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.metrics_port = _free_port()
        self.health_port = _free_port()
        self.webhook_port = _free_port()
        self.certificate = serving_certificate(log_dir / "webhook")

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"operator-{self.starts}.log"

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "the operator is already running"
        self.starts += 1
        env = {**os.environ, "KUBECONFIG": self.kubeconfig, "PYTHONUNBUFFERED": "1",
               "KUBETUNE_UNSCHEDULABLE_SECONDS": "15", "KUBETUNE_RESYNC_SECONDS": "5",
               "KUBETUNE_PROGRESS_SECONDS": "2", "KUBETUNE_TRIAL_KINDS": "JobSet"}
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kubetune.cli", "operator", "--metrics-port", str(self.metrics_port),
             "--health-port", str(self.health_port), "--webhook-port", str(self.webhook_port),
             "--webhook-cert-dir", str(self.certificate)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self.healthy, timeout=60, what=f"the operator's /healthz (log: {self.log_path})")

    def healthy(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            pytest.fail(f"the operator exited; see {self.log_path}:\n{self.log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            return str(response.read().decode())

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye, as a node failure would do it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="session")
def operator(crds: Kubectl, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    process = OperatorProcess(crds.kubeconfig, tmp_path_factory.mktemp("operator"))
    process.start()
    try:
        yield process
    finally:
        process.stop()


#: Namespaces with this label are judged by the operator's webhook (the ``webhook`` fixture); the
#: others are not, so that tests which kill the operator never find applies refused meanwhile.
WEBHOOK_LABEL = "kubetune.io/webhook-test"


@pytest.fixture(scope="session")
def webhook(operator: OperatorProcess, crds: Kubectl) -> Iterator[OperatorProcess]:
    """A ValidatingWebhookConfiguration as the chart's, pointing at the operator process's webhook."""
    from kubetune.kube.admission import WEBHOOK_ID, WEBHOOK_NAME

    bundle = base64.b64encode((operator.certificate / "tls.crt").read_bytes()).decode()
    configuration = {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "kubetune-tests"},
        "webhooks": [{
            "name": WEBHOOK_NAME, "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "failurePolicy": "Fail", "timeoutSeconds": 10,
            "clientConfig": {"url": f"https://127.0.0.1:{operator.webhook_port}/{WEBHOOK_ID}", "caBundle": bundle},
            "rules": [{"apiGroups": ["kubetune.io"], "apiVersions": ["v1alpha1"], "operations": ["CREATE", "UPDATE"],
                       "resources": ["experiments"], "scope": "Namespaced"}],
            "namespaceSelector": {"matchLabels": {WEBHOOK_LABEL: "true"}},
        }],
    }
    crds.run("apply", "-f", "-", input=json.dumps(configuration))
    probe = f"kt-webhook-probe-{uuid.uuid4().hex[:5]}"
    crds.run("create", "namespace", probe)
    crds.run("label", "namespace", probe, f"{WEBHOOK_LABEL}=true")
    bad = {"apiVersion": "kubetune.io/v1alpha1", "kind": "Experiment", "metadata": {"name": "probe"},
           "spec": {"objective": {"metric": "m", "goal": "maximize"}, "maxTrials": 1,
                    "parameters": [{"name": "x", "type": "double", "min": 0, "max": 1}],
                    "initialPoints": [{"y": 1}],
                    "trialTemplate": {"spec": {"template": {"spec": {"containers": [
                        {"name": "t", "image": PYTHON_IMAGE, "command": ["true"]}]}}}}}}

    def refusing() -> bool:  # the API server picks a new configuration up within a second or so
        done = crds.run("apply", "--dry-run=server", "-n", probe, "-f", "-", input=json.dumps(bad), check=False)
        return done.returncode != 0 and "denied the request" in done.stderr

    try:
        wait_for(refusing, timeout=60, what="the API server to call the operator's webhook")
        yield operator
    finally:
        crds.run("delete", "namespace", probe, "--wait=false", check=False)
        crds.run("delete", "validatingwebhookconfiguration", "kubetune-tests", "--ignore-not-found", check=False)


@pytest.fixture
def namespace(crds: Kubectl, request: pytest.FixtureRequest) -> Iterator[str]:
    # 8 random hex digits: with 5, two of the 60 parametrized cases sharing a prefix once drew the same
    # name while the first namespace was still being deleted (AlreadyExists).
    name = f"kt-{request.node.name.split('[')[0].replace('_', '-')[:40]}-{uuid.uuid4().hex[:8]}".lower()
    crds.run("create", "namespace", name)
    wait_for(lambda: crds.get("serviceaccount", "default", name), timeout=30, what="the default service account")
    try:
        yield name
    finally:
        crds.run("delete", "namespace", name, "--wait=false", check=False)
