"""Status writes: the smallest merge patch from the status read to the status wanted.

:func:`merge_patch` is pure (RFC 7386 diff of two JSON values); :func:`write_status` does the I/O:
it patches the status subresource with the resourceVersion it read, so a concurrent writer makes
the API server answer 409, and then re-reads and re-diffs (the wanted status is recomputed from the
Trials every pass, so re-applying it to the fresh object is always right). Keys the operator does
not own (``status.kopf``, kopf's progress storage) are never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from kubetune.kube.client import ApiError, Body, KubeApi, Resource

#: Status keys written by others (kopf's progress storage) and never diffed away.
FOREIGN_STATUS_KEYS = frozenset({"kopf"})

CONFLICT_RETRIES = 5


def without_kopf(body: Body) -> Body:
    """``body`` without the status keys the API models do not know (kopf's own storage)."""
    status = body.get("status")
    if not isinstance(status, dict) or not FOREIGN_STATUS_KEYS & status.keys():
        return body
    return {**body, "status": {k: v for k, v in status.items() if k not in FOREIGN_STATUS_KEYS}}


def merge_patch(old: Any, new: Any) -> Any:
    """The RFC 7386 merge patch that turns ``old`` into ``new`` ({} when they are equal).

    Objects are diffed key by key (a removed key becomes ``None``); anything else, lists included,
    is replaced whole.
    """
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            if isinstance(old[key], dict) and isinstance(value, dict):
                patch[key] = merge_patch(old[key], value)
            else:
                patch[key] = value
    return patch


def status_patch(current: Body | None, wanted: Body, *, keep: Iterable[str] = FOREIGN_STATUS_KEYS) -> Body:
    """The patch of ``status`` from ``current`` to ``wanted``, leaving ``keep`` keys alone."""
    kept = set(keep)
    old = {k: v for k, v in (current or {}).items() if k not in kept}
    new = {k: v for k, v in wanted.items() if k not in kept}
    result: Body = merge_patch(old, new)
    return result


async def update_status(api: KubeApi, resource: Resource, body: Body,
                        change: Callable[[Body], Body | None]) -> Body | None:
    """Set ``body``'s status to ``change(body)``; on a conflict, read again and ask ``change`` again.

    ``change`` gets the object as last read and returns the status wanted, or None when there is
    nothing to write (e.g. the Trial finished meanwhile). Because it is asked again with the fresh
    object after a 409, a write never reverts another writer's fields: the operator's two writers
    of a Trial's status (its own pass: curve, outcome; the Experiment's pass: stop requests,
    rungs) each recompute from what the other wrote. One PATCH when the status differs, none when
    it does not. Returns the patched object, or None when nothing was written.
    """
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    for attempt in range(CONFLICT_RETRIES):
        wanted = change(body)
        if wanted is None:
            return None
        patch = status_patch(body.get("status"), wanted)
        if not patch:
            return None
        request = {"metadata": {"resourceVersion": body["metadata"]["resourceVersion"]}, "status": patch}
        try:
            return await api.patch(resource, namespace, name, request, status=True)
        except ApiError as err:
            if not err.conflict or attempt == CONFLICT_RETRIES - 1:
                if err.not_found:
                    return None
                raise
        fresh = await api.get(resource, namespace, name)
        if fresh is None:
            return None
        body = fresh
    return None


async def write_status(api: KubeApi, resource: Resource, body: Body, wanted: Body, *,
                       unless: Callable[[Body], bool] | None = None) -> Body | None:
    """Make ``body``'s status equal ``wanted`` (the Experiment's: recomputed whole every pass).

    On a conflict the object is read again; ``unless(fresh)`` true means someone else's write
    settled the matter and nothing is written. Returns the patched object, or None.
    """
    def change(current: Body) -> Body | None:
        if unless is not None and current is not body and unless(current):
            return None
        return wanted

    return await update_status(api, resource, body, change)
