"""Kubernetes Events about Experiments and Trials, posted in the background.

A pass only enqueues an event (:meth:`EventPoster.post`); one task creates them through the API
with a few retries, so a slow or failing Events API never delays a pass. Posting is idempotent: an
Event's name is a hash of the object's uid, the reason and the message, so a retry after a timeout
whose create did land, or a pass repeated after a crash, finds the Event already there
(AlreadyExists) instead of posting it twice. The poster works from
any task (kopf's own ``kopf.event`` needs the context of an object being processed, which the
operator's resync loop does not have). kopf's posting settings still cover kopf's own warnings.

An Event still queued when the operator is killed would be lost; so the first time this process
sees an object younger than the API server's Event lifetime (:data:`REPLAY_SECONDS`), it posts
again the Events its state stands for (:func:`trial_events`, ``lifecycle.standing_events``): the
ones already there are no-ops, the lost ones arrive late but arrive.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import socket
from dataclasses import dataclass

from kubetune.api import API_VERSION
from kubetune.kube.client import EVENTS, ApiError, Body, KubeApi
from kubetune.lifecycle import Event

log = logging.getLogger(__name__)

#: Kubernetes caps an Event's message at 1 KiB.
MAX_MESSAGE = 1000
COMPONENT = "kubetune-operator"
RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0)
MAX_QUEUED = 10_000
#: The API server's default --event-ttl: an older object's Events are gone anyway, none is posted again.
REPLAY_SECONDS = 3600.0


@dataclass(frozen=True)
class Posting:
    involved: Body
    event: Event


def event_name(involved: Body, event: Event) -> str:
    """``<object>.<16 hex>``: the same event about the same object always gets the same name."""
    key = "\0".join((involved.get("uid", ""), involved["name"], event.type, event.reason, event.message))
    return f"{involved['name']}.{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def event_manifest(involved: Body, event: Event, *, now: dt.datetime, instance: str) -> Body:
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    seconds = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": event_name(involved, event), "namespace": involved["namespace"]},
        "involvedObject": involved,
        "type": event.type,
        "reason": event.reason,
        "message": event.message[:MAX_MESSAGE],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": instance,
        "firstTimestamp": seconds,
        "lastTimestamp": seconds,
        "eventTime": stamp,
        "action": event.reason,
        "count": 1,
    }


class EventPoster:
    def __init__(self, api: KubeApi) -> None:
        self.api = api
        self.queue: asyncio.Queue[Posting] = asyncio.Queue(maxsize=MAX_QUEUED)
        self.instance = socket.gethostname()

    def post(self, body: Body, kind: str, event: Event) -> None:
        """Enqueue ``event`` about ``body`` (an Experiment or Trial as read from the API)."""
        meta = body["metadata"]
        involved = {"apiVersion": body.get("apiVersion") or API_VERSION, "kind": body.get("kind") or kind,
                    "name": meta["name"], "namespace": meta["namespace"], "uid": meta.get("uid", "")}
        try:
            self.queue.put_nowait(Posting(involved, event))
        except asyncio.QueueFull:
            log.warning("event queue full, dropped %s on %s", event.reason, meta["name"])

    def on_experiment(self, body: Body, event: Event) -> None:
        self.post(body, "Experiment", event)

    def on_trial(self, body: Body, event: Event) -> None:
        self.post(body, "Trial", event)

    def on_owner(self, body: Body, event: Event) -> None:
        """Post ``event`` about ``body``'s controller (a Trial's Experiment), named by its owner reference."""
        owner = next((r for r in body["metadata"].get("ownerReferences") or [] if r.get("controller")), None)
        if owner is None:
            return
        self.post({"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                   "metadata": {"name": owner["name"], "namespace": body["metadata"]["namespace"],
                                "uid": owner["uid"]}}, owner["kind"], event)

    async def run(self) -> None:
        """Post queued events forever (a task of the operator)."""
        while True:
            posting = await self.queue.get()
            await self._send(posting)

    async def _send(self, posting: Posting) -> None:
        for delay in (*RETRY_DELAYS, None):
            manifest = event_manifest(posting.involved, posting.event, now=dt.datetime.now(dt.UTC),
                                      instance=self.instance)
            try:
                await self.api.create(EVENTS, posting.involved["namespace"], manifest)
                return
            except (TimeoutError, ApiError, OSError) as err:
                if isinstance(err, ApiError) and err.already_exists:
                    return  # posted before (a retried create that had landed, or a repeated pass)
                if isinstance(err, ApiError) and err.status in (403, 404, 422):
                    return  # namespace gone or events forbidden: retrying will not help
                if delay is None:
                    log.warning("could not post event %s: %s", posting.event.reason, err)
                    return
                await asyncio.sleep(delay)
