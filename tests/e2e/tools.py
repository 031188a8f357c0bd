"""Where the command-line tools the chart and e2e tests drive are: helm, kubectl, kubeconform.

Looked up in this order: the env var (``HELM``, ``KUBECTL``, ``KUBECONFORM``), the versions
hack/cluster/build.sh caches in ``~/.cache/kubetune/bin/<version>/`` (``$KUBETUNE_CACHE``),
then ``PATH``. A missing tool fails the test loudly: these tests are never skipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "kubetune"
CACHE = Path(os.environ.get("KUBETUNE_CACHE") or Path.home() / ".cache" / "kubetune")


def _version_key(path: Path) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", path.parent.name)]


def find_tool(name: str) -> str:
    """The path of ``name``, or a test failure that says how to get it."""
    explicit = os.environ.get(name.upper())
    if explicit:
        if not os.access(explicit, os.X_OK):
            pytest.fail(f"${name.upper()}={explicit} is not an executable")
        return explicit
    cached = sorted((p for p in (CACHE / "bin").glob(f"*/{name}") if os.access(p, os.X_OK)), key=_version_key)
    if cached:
        return str(cached[-1])
    found = shutil.which(name)
    if found:
        return found
    pytest.fail(f"{name} not found: run hack/cluster/build.sh (it caches helm, kubectl and kubeconform in "
                f"{CACHE}/bin/<version>/), put {name} on PATH, or set ${name.upper()}", pytrace=False)


#: The Kubernetes version whose API schemas rendered manifests are checked against.
KUBERNETES_VERSION = "1.28.0"
#: The PyPI package that ships the upstream JSON schemas (kubernetes-json-schema), per version.
SCHEMA_PACKAGE = "kubernetes-validate==1.37.0"


def _standalone(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """One kind's schema with the definitions it reaches inlined (kubeconform cannot follow the
    package's absolute ``/api/_definitions.json`` references offline)."""
    remote = "/api/_definitions.json#/$defs/"
    needed: dict[str, Any] = {}

    def rewrite(node: Any) -> Any:
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith((remote, "#/$defs/")):
                name = value.rsplit("/", 1)[-1]
                if name not in needed:
                    needed[name] = None
                    needed[name] = rewrite(definitions[name])
                out[key] = f"#/$defs/{name}"
            else:
                out[key] = rewrite(value)
        return out

    result: dict[str, Any] = rewrite({k: v for k, v in schema.items() if k != "$id"})
    result["$defs"] = needed
    return result


def kubernetes_schemas() -> Path:
    """Folder of the Kubernetes JSON schemas for kubeconform (``v<version>-standalone-strict/*.json``).

    Made from the ``kubernetes-validate`` wheel on PyPI, which ships the upstream schemas per
    Kubernetes version (downloaded once into the cache): kubeconform never needs the network.
    """
    import subprocess
    import sys
    import tempfile
    import zipfile

    root = CACHE / "kubernetes-json-schema"
    target = root / f"v{KUBERNETES_VERSION}-standalone-strict"
    if (target / "deployment-apps-v1.json").exists():
        return root
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", SCHEMA_PACKAGE, "-d", tmp]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            pytest.fail(f"cannot download the Kubernetes schemas ({' '.join(cmd)}):\n{done.stderr}", pytrace=False)
        (wheel,) = Path(tmp).glob("*.whl")
        prefix = f"kubernetes_validate/kubernetes-json-schema/v{KUBERNETES_VERSION}-local-strict/"
        with zipfile.ZipFile(wheel) as archive:
            definitions = json.loads(archive.read(prefix + "_definitions.json"))["$defs"]
            staging = Path(tmp) / "out"
            staging.mkdir()
            for member in archive.namelist():
                if not member.startswith(prefix) or member.endswith("_definitions.json"):
                    continue
                schema = json.loads(archive.read(member))
                if "x-kubernetes-group-version-kind" in schema:  # a top-level kind
                    (staging / member.removeprefix(prefix)).write_text(json.dumps(_standalone(schema, definitions)))
        root.mkdir(parents=True, exist_ok=True)
        staging.rename(target)
    return root
