"""One pass at a time per object, and no trigger lost: :class:`Coalescer`.

Passes for the same Experiment (or Trial) can be asked for by several sources at once: kopf's
create/update/resume handlers, the resync task, watch events of its children. Level-based reconciliation
makes any number of triggers during a pass equivalent to one more pass afterwards, so a trigger
that arrives while a pass runs only marks the key dirty and returns; the running pass repeats once.

In-memory on purpose: it only orders work inside this process, and nothing in it matters after a
restart (every object is listed and reconciled again then). Entries vanish when their pass ends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable


class Coalescer:
    def __init__(self) -> None:
        self._running: set[Hashable] = set()
        self._dirty: set[Hashable] = set()

    def busy(self, key: Hashable) -> bool:
        return key in self._running

    async def run(self, key: Hashable, step: Callable[[], Awaitable[None]]) -> bool:
        """Run ``step`` now, or have the pass already running for ``key`` run once more.

        Returns True when this call ran the pass(es), False when it only marked the key dirty.
        An exception from ``step`` propagates to the caller that runs it and drops pending
        triggers (the caller's retry or the resync task brings the next pass).
        """
        if key in self._running:
            self._dirty.add(key)
            return False
        self._running.add(key)
        try:
            while True:
                self._dirty.discard(key)
                await step()
                if key not in self._dirty:
                    return True
        finally:
            self._running.discard(key)
            self._dirty.discard(key)
