"""Fixtures of the end-to-end tests: a cluster, the images in it, kubectl and helm against it.

Which cluster, by ``KUBETUNE_CLUSTER``:

``offline`` (default)
    the single-node cluster of hack/cluster (built and started here when it is not up; stopped
    at the end only if this session started it). Images go in with hack/cluster/load-image.sh.
``kind``
    the kind cluster ``$KIND_CLUSTER_NAME`` (default ``kubetune-e2e``) that ``$KUBECONFIG``
    points to (hack/e2e-kind.sh makes both). Images go in with ``kind load docker-image``.
``existing``
    whatever ``$KUBECONFIG`` points to; the images must already be pullable there.

``KUBETUNE_E2E_BUILD=0`` skips building the images (they must exist in docker).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.tools import CACHE, REPO, find_tool

OPERATOR_IMAGE = "kubetune/operator:dev"
TRAINER_IMAGE = "kubetune/trainer:dev"


def sh(*cmd: str, timeout: float = 600, env: dict[str, str] | None = None, check: bool = True,
       input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure, fail the test with its output."""
    done = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, input=input,
                          env={**os.environ, **(env or {})}, cwd=REPO)
    if check and done.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}",
                    pytrace=False)
    return done


@dataclass
class Cluster:
    kind: str
    kubeconfig: str
    kubectl_bin: str
    helm_bin: str
    load: Callable[[list[str]], None]
    #: Filled as tests run: how long each phase took (printed at the end of the session).
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {"KUBECONFIG": self.kubeconfig}

    def kubectl(self, *args: str, timeout: float = 120, check: bool = True,
                input: str | None = None) -> subprocess.CompletedProcess[str]:
        return sh(self.kubectl_bin, *args, timeout=timeout, env=self.env, check=check, input=input)

    def helm(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh(self.helm_bin, *args, timeout=timeout, env=self.env, check=check)

    def wait_for(self, what: str, condition: Callable[[], bool], timeout: float, interval: float = 2.0) -> float:
        """Poll ``condition`` until true; the seconds it took. Fails the test on timeout."""
        started = time.monotonic()
        while not condition():
            if time.monotonic() - started > timeout:
                pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}", pytrace=False)
            time.sleep(interval)
        return time.monotonic() - started


def _reachable(kubectl: str, kubeconfig: str) -> bool:
    """The API server answers /readyz and a node is Ready."""
    env = {"KUBECONFIG": kubeconfig}
    if sh(kubectl, "get", "--raw", "/readyz", env=env, check=False, timeout=30).returncode != 0:
        return False
    ready = sh(kubectl, "get", "nodes", "-o", "jsonpath={.items[*].status.conditions[?(@.type=='Ready')].status}",
               env=env, check=False, timeout=30)
    return "True" in ready.stdout


def _offline_cluster() -> Iterator[Cluster]:
    hack = REPO / "hack" / "cluster"
    bin_dir = Path(sh(str(hack / "build.sh"), timeout=3600).stdout.strip().splitlines()[-1])
    kubectl = str(bin_dir / "kubectl")
    cluster_dir = Path(os.environ.get("CLUSTER_DIR") or CACHE / "cluster")
    kubeconfig = os.environ.get("KUBECONFIG") or str(cluster_dir / "kubeconfig" / "admin.kubeconfig")
    # A cluster that answers is used as it is (another session may be using it too): up.sh is
    # run, and down.sh at the end, only when none does.
    started_here = False
    if not (Path(kubeconfig).exists() and _reachable(kubectl, kubeconfig)):
        up = sh(str(hack / "up.sh"), timeout=600)
        # only a cluster this session started is stopped at its end (another may be starting one)
        started_here = "# kubetune-cluster: started" in up.stdout
        kubeconfig = next(line.split("=", 1)[1] for line in up.stdout.splitlines()
                          if line.startswith("export KUBECONFIG="))

    def load(images: list[str]) -> None:
        sh(str(hack / "load-image.sh"), *images, timeout=900)

    yield Cluster("offline", kubeconfig, kubectl, str(bin_dir / "helm"), load)
    if started_here and os.environ.get("KUBETUNE_E2E_KEEP_CLUSTER") != "1":
        sh(str(hack / "down.sh"), timeout=300, check=False)


def _kind_cluster() -> Iterator[Cluster]:
    name = os.environ.get("KIND_CLUSTER_NAME", "kubetune-e2e")
    kind = find_tool("kind")

    def load(images: list[str]) -> None:
        for image in images:
            sh(kind, "load", "docker-image", "--name", name, image, timeout=900)

    kubeconfig = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    yield Cluster("kind", kubeconfig, find_tool("kubectl"), find_tool("helm"), load)


def _existing_cluster() -> Iterator[Cluster]:
    kubeconfig = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    yield Cluster("existing", kubeconfig, find_tool("kubectl"), find_tool("helm"), lambda images: None)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    kind = os.environ.get("KUBETUNE_CLUSTER", "offline")
    factories = {"offline": _offline_cluster, "kind": _kind_cluster, "existing": _existing_cluster}
    if kind not in factories:
        pytest.fail(f"KUBETUNE_CLUSTER={kind}: expected one of {sorted(factories)}", pytrace=False)
    started = time.monotonic()
    generator = factories[kind]()
    found = next(generator)
    found.kubectl("version")
    found.timings["cluster up"] = time.monotonic() - started
    yield found
    print("\ne2e timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in found.timings.items()))
    next(generator, None)


@pytest.fixture(scope="session")
def images(cluster: Cluster) -> list[str]:
    """The operator and trainer images, built (unless KUBETUNE_E2E_BUILD=0) and loaded into the cluster."""
    started = time.monotonic()
    if os.environ.get("KUBETUNE_E2E_BUILD", "1") != "0":
        sh(str(REPO / "hack" / "build-operator-image.sh"), timeout=1800)
        sh(str(REPO / "trainer-image" / "build.sh"), timeout=3600)
    cluster.timings["images built"] = time.monotonic() - started
    started = time.monotonic()
    cluster.load([OPERATOR_IMAGE, TRAINER_IMAGE])
    cluster.timings["images loaded"] = time.monotonic() - started
    return [OPERATOR_IMAGE, TRAINER_IMAGE]
