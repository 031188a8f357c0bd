"""All-CNN-C learning curves trained lazily, one epoch at a time, and cached.

The early-stopping benchmark asks for epoch ``e`` of a configuration only when a simulated trial
gets there, so a trial that is stopped costs only the epochs it ran. Each configuration's curve
is cached (``(seed, params)`` → its points, and the epoch it diverged at): a configuration
proposed again, in another mode of the same seed, reuses the cached prefix, and a benchmark that
is interrupted and started again reuses every epoch trained before.

Training is ``trainer-image/train.py``'s own :func:`train.train`, unchanged, run in a thread of
its own per configuration: its ``progress`` callback (called after each epoch with the validation
accuracy and loss) parks the thread until the next epoch is wanted. Only one thread ever runs at
a time, and each one's state of torch's global random generator (dropout draws from it) is saved
when it parks and restored when it resumes, so every curve is exactly what one uninterrupted
``train.py --seed S`` run prints, whatever the interleaving (on CPU, with
``torch.use_deterministic_algorithms``, which ``train.train`` turns on). When a parked thread is
gone (a restart, or one evicted to bound memory) and more epochs are wanted, the configuration is
trained again from its first epoch; the cached points it passes are checked against the new ones.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bench.allcnn_reproduction import train
from kubetune.api import Params

#: Parked training threads kept at most (each holds a small model and its optimizer).
MAX_SESSIONS = 400


class _Cancelled(BaseException):
    """Unwinds a parked training thread that is no longer wanted."""


class _Session:
    """One configuration's ``train.train`` in its own thread, advanced an epoch at a time."""

    def __init__(self, hp: Any, opts: Any, splits: Any) -> None:
        self._go = threading.Semaphore(0)
        self._done = threading.Semaphore(0)
        self._cancelled = False
        self._rng: Any = None
        self.result: tuple[Any, ...] = ()
        self._thread = threading.Thread(target=self._run, args=(hp, opts, splits), daemon=True)
        self._thread.start()

    def _run(self, hp: Any, opts: Any, splits: Any) -> None:
        self._go.acquire()
        if self._cancelled:
            return
        try:
            train.train(hp, opts, progress=self._progress, splits=splits)
            self.result = ("finished",)
        except _Cancelled:
            return
        except train.Diverged as error:
            self.result = ("diverged", error.epoch)
        except Exception as error:  # handed to the caller, raised there
            self.result = ("error", error)
        self._done.release()

    def _progress(self, epoch: int, **metrics: float) -> None:
        self.result = ("point", epoch, dict(metrics))
        self._rng = train.torch.get_rng_state()
        self._done.release()
        self._go.acquire()
        if self._cancelled:
            raise _Cancelled
        train.torch.set_rng_state(self._rng)

    def step(self) -> tuple[Any, ...]:
        """Train the next epoch: ("point", epoch, metrics), ("diverged", epoch) or ("finished",)."""
        self._go.release()
        self._done.acquire()
        if self.result and self.result[0] == "error":
            raise self.result[1]
        return self.result

    def close(self) -> None:
        self._cancelled = True
        self._go.release()
        self._thread.join(timeout=60)


def params_key(seed: int, params: Params) -> str:
    return json.dumps([seed, {k: params[k] for k in sorted(params)}], separators=(",", ":"))


class LazyCurves:
    """``epoch(seed, params, e)`` → metrics after epoch e, or None (diverged), trained on demand."""

    def __init__(self, cache_path: Path, make_run: Callable[[int, Params], tuple[Any, Any]], splits: Any,
                 *, save_every: int = 50) -> None:
        self.cache_path = cache_path
        self.make_run = make_run  # (seed, params) → (train.HyperParams, train.Options)
        self.splits = splits
        self.cache: dict[str, dict[str, Any]] = {}
        if cache_path.exists():
            self.cache = json.loads(cache_path.read_text())
        self.sessions: OrderedDict[str, tuple[_Session, int]] = OrderedDict()
        self.trained = 0  # epochs actually trained by this process
        self.replayed = 0  # epochs trained again to reach a lost thread's state
        self.mismatches = 0
        self._unsaved = 0
        self.save_every = save_every

    def epoch(self, seed: int, params: Params, e: int) -> Mapping[str, float] | None:
        key = params_key(seed, params)
        entry = self.cache.setdefault(key, {"points": [], "diverged": None})
        while len(entry["points"]) < e and entry["diverged"] is None:
            self._train_next(key, seed, params, entry)
        if e <= len(entry["points"]):
            point: dict[str, float] = entry["points"][e - 1]
            return point
        return None  # diverged at or before epoch e

    def _train_next(self, key: str, seed: int, params: Params, entry: dict[str, Any]) -> None:
        session, at = self.sessions.pop(key, (None, 0))
        if session is None:
            hp, opts = self.make_run(seed, params)
            session = _Session(hp, opts, self.splits)
        wanted = len(entry["points"]) + 1
        while at < wanted:
            result = session.step()
            self.trained += 1
            if result[0] == "point":
                at = result[1]
                if at < wanted:  # a cached epoch trained again: it must be the same
                    self.replayed += 1
                    if result[2] != entry["points"][at - 1]:
                        self.mismatches += 1
                else:
                    entry["points"].append(result[2])
            else:
                session.close()
                if result[0] != "diverged":
                    raise RuntimeError(f"epoch {wanted} wanted of a run that trains {at} epochs")
                entry["diverged"] = result[1]
                self._mark()
                return
        self.sessions[key] = (session, at)
        while len(self.sessions) > MAX_SESSIONS:
            _, (old, _) = self.sessions.popitem(last=False)
            old.close()
        self._mark()

    def _mark(self) -> None:
        self._unsaved += 1
        if self._unsaved >= self.save_every:
            self.save()

    def save(self) -> None:
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.cache, separators=(",", ":")))
        tmp.replace(self.cache_path)
        self._unsaved = 0

    def close_all(self) -> None:
        """End every parked thread (their curves stay cached)."""
        while self.sessions:
            _, (session, _) = self.sessions.popitem()
            session.close()
        self.save()
