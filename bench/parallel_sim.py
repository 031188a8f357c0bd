"""Run an ask/tell optimizer the way the operator runs an Experiment: ``parallel`` trials at a time.

The clock counts trained epochs (a trial that diverges at epoch k costs k), so a run is deterministic
whatever the machine's speed. At the start the optimizer is asked for ``parallel`` assignments at
once; whenever trials finish it is told their results and asked for as many new ones as slots came
free, while the others are still running (kubetune's adapter passes them as ``pending``, as
``lifecycle.plan`` does). Evaluations are numbered in the order they finish, as an Experiment's
best-so-far is.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.peers import AskTell
from kubetune.api import Params


@dataclass(frozen=True)
class Evaluation:
    """What training one assignment gave: accuracy (None: diverged), epochs it took, wall seconds."""

    accuracy: float | None
    epochs: int
    seconds: float = 0.0


@dataclass(frozen=True)
class Finished:
    params: Params
    accuracy: float | None
    epochs: int
    started: float
    finished: float
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"params": self.params, "accuracy": self.accuracy, "epochs": self.epochs,
                "started": self.started, "finished": self.finished, "seconds": round(self.seconds, 2)}


def run(optimizer: AskTell, evaluate: Callable[[Params], Evaluation], *, evals: int,
        parallel: int) -> tuple[list[Finished], float]:
    """The ``evals`` trials in the order they finished, and the seconds spent asking the optimizer."""
    if evals < 1 or parallel < 1:
        raise ValueError("evals and parallel must be ≥ 1")
    running: list[tuple[float, int, Params, Evaluation, float]] = []  # (finish, order, params, result, start)
    done: list[Finished] = []
    asked = 0
    ask_seconds = 0.0

    def start(count: int, clock: float) -> None:
        nonlocal asked, ask_seconds
        count = min(count, evals - asked)
        if count <= 0:
            return
        t0 = time.perf_counter()
        batch = optimizer.ask(count)
        ask_seconds += time.perf_counter() - t0
        if len(batch) != count:
            raise RuntimeError(f"asked for {count} assignments, got {len(batch)}")
        for params in batch:
            result = evaluate(params)
            heapq.heappush(running, (clock + max(1, result.epochs), asked, params, result, clock))
            asked += 1

    start(parallel, 0.0)
    while running:
        clock = running[0][0]
        finished = []
        while running and running[0][0] == clock:
            finished.append(heapq.heappop(running))
        for _, _, params, result, began in finished:
            done.append(Finished(params, result.accuracy, result.epochs, began, clock, result.seconds))
        optimizer.tell([f[2] for f in finished],
                       [math.nan if f[3].accuracy is None else -f[3].accuracy for f in finished])
        start(len(finished), clock)
    return done, ask_seconds
