"""Kubernetes Events about Experiments and Trials, posted through kopf's poster.

kopf queues events and posts them in the background with retries (``settings.posting``), so a
slow or failing Events API never delays a reconcile pass.
"""

from __future__ import annotations

from typing import cast

import kopf

from kubetune.api import API_VERSION
from kubetune.kube.client import Body
from kubetune.lifecycle import Event

#: Kubernetes caps an Event's message at 1 KiB; kopf does not shorten it for us.
MAX_MESSAGE = 1000


def _reference(body: Body, kind: str) -> Body:
    """``body`` with apiVersion and kind (list items may lack them)."""
    return {"apiVersion": body.get("apiVersion") or API_VERSION, "kind": body.get("kind") or kind,
            "metadata": body["metadata"]}


def post(body: Body, kind: str, event: Event) -> None:
    reference = cast(kopf.Body, _reference(body, kind))  # kopf reads it as a mapping
    kopf.event(reference, type=event.type, reason=event.reason, message=event.message[:MAX_MESSAGE])


def post_on_experiment(body: Body, event: Event) -> None:
    post(body, "Experiment", event)


def post_on_trial(body: Body, event: Event) -> None:
    post(body, "Trial", event)
