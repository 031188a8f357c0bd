"""The operator's expected permissions, in one place: the chart's rules must grant exactly these.

Each permission is ``(apiGroup, resource, verb)``; the core group is ``""``. Used by the chart's
unit tests (the rendered Roles) and by the e2e RBAC proof (``kubectl auth can-i --list``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Permission = tuple[str, str, str]

#: In each namespace the operator watches.
NAMESPACED: frozenset[Permission] = frozenset(
    [("kubetune.io", r, v) for r in ("experiments", "trials") for v in ("get", "list", "watch", "patch")]
    + [("kubetune.io", "trials", "create")]
    + [("kubetune.io", "experiments/status", "patch"), ("kubetune.io", "trials/status", "patch")]
    + [("kubetune.io", "experiments/finalizers", "update"), ("kubetune.io", "trials/finalizers", "update")]
    + [("batch", "jobs", v) for v in ("get", "list", "watch", "create", "delete")]
    + [("", "pods", v) for v in ("get", "list", "watch")]
    + [("", "pods/log", "get"), ("", "events", "create")]
)

#: What each trialKinds entry adds, in each watched namespace: the workload kind, as Jobs are granted.
TRIAL_KINDS: dict[str, frozenset[Permission]] = {
    kind: frozenset((group, resource, v) for v in ("get", "list", "watch", "create", "delete"))
    for kind, group, resource in (("JobSet", "jobset.x-k8s.io", "jobsets"),
                                  ("PyTorchJob", "kubeflow.org", "pytorchjobs"))
}

#: Cluster-scoped and read-only: kopf's watch of CustomResourceDefinitions.
CLUSTER: frozenset[Permission] = frozenset(
    ("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("list", "watch"))


def flatten(rules: Iterable[dict[str, Any]]) -> set[Permission]:
    """The permissions a list of RBAC PolicyRules grants (no wildcards expected)."""
    out: set[Permission] = set()
    for rule in rules:
        assert not rule.get("resourceNames"), rule
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                for verb in rule.get("verbs", []):
                    assert "*" not in (group, resource, verb), f"wildcard in {rule}"
                    out.add((group, resource, verb))
    return out


def parse_can_i_list(text: str) -> set[Permission]:
    """``kubectl auth can-i --list`` as permissions (non-resource URLs left out).

    Rows look like ``jobs.batch   []   []   [get list watch create delete]``; a subresource
    prints as ``experiments.kubetune.io/status`` (``pods/log`` in the core group).
    """
    lines = [line for line in text.splitlines() if line.strip()]
    header, rows = lines[0], lines[1:]
    urls_at = header.index("Non-Resource URLs")
    out: set[Permission] = set()
    for row in rows:
        resource = row[:urls_at].strip()
        if not resource:
            continue  # a non-resource URL such as /healthz
        verbs = row[row.rindex("[") + 1:row.rindex("]")].split()
        name, _, group = resource.partition(".")
        if "/" in group:  # experiments.kubetune.io/status
            group, subresource = group.split("/", 1)
            name = f"{name}/{subresource}"
        out.update((group, name, verb) for verb in verbs)
    return out
