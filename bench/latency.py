"""Suggestion latency: one batch of 8 in 10 dimensions after 100, 1,000 and 10,000 observations.

    python -m bench.latency --sizes 100,1000,10000 --peer-sizes 100,1000

``bayes`` is timed twice per size: *cold* (no state: the GP fit starts from its defaults) and
*warm* (the state of a previous call, as the operator runs it). Optuna's GPSampler is timed
asking 8 trials after the same observations (added with ``study.add_trials``).
BLAS threads are pinned to 1, as in the optimizer benchmark. Wall and CPU (process) time are both
printed: on a loaded machine the CPU time is the one that says what the code costs.
"""

from __future__ import annotations

import argparse
import os
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402

from kubetune.api import Parameter  # noqa: E402
from kubetune.space import Space  # noqa: E402
from kubetune.suggest.base import Observation, SuggestRequest  # noqa: E402
from kubetune.suggest.bayes import BayesSearch  # noqa: E402

DIM = 10
BATCH = 8
PARAMETERS = [Parameter(name=f"x{i}", type="double", min=-5, max=10) for i in range(DIM)]


def loss(x: np.ndarray) -> float:  # type: ignore[type-arg]
    return float(np.sum(x * x) + 10 * np.sum(1 - np.cos(2 * np.pi * x)))  # Rastrigin


def observations(n: int, seed: int = 0) -> list[Observation]:
    space = Space(PARAMETERS)
    params = space.from_unit(np.random.default_rng(seed).random((n, DIM)))
    return [Observation(p, loss(np.array([p[f"x{i}"] for i in range(DIM)], dtype=float))) for p in params]


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = _clock()
    return wall - start[0], cpu - start[1]


def time_bayes(n: int) -> tuple[tuple[float, float], tuple[float, float]]:
    space, suggester = Space(PARAMETERS), BayesSearch()
    obs = observations(n + BATCH)
    first = SuggestRequest(space=space, observations=obs[:n], pending=[], n=BATCH, seed=0, start_index=n)
    t0 = _clock()
    state = suggester.suggest(first).state
    cold = _since(t0)
    second = SuggestRequest(space=space, observations=obs, pending=[], n=BATCH, seed=0, start_index=n + BATCH,
                            state=state)
    t0 = _clock()
    suggester.suggest(second)
    return cold, _since(t0)


def time_optuna(n: int) -> tuple[float, float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.GPSampler(seed=0))
    dist = {f"x{i}": optuna.distributions.FloatDistribution(-5, 10) for i in range(DIM)}
    study.add_trials([
        optuna.trial.create_trial(params=dict(o.params), distributions=dist, value=o.loss) for o in observations(n)
    ])
    t0 = _clock()
    for _ in range(BATCH):
        trial = study.ask()
        for name, d in dist.items():
            trial.suggest_float(name, d.low, d.high)
    return _since(t0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--peer-sizes", default="100,1000")
    args = parser.parse_args(argv)
    peer_sizes = {int(s) for s in args.peer_sizes.split(",") if s}
    print("| observations | bayes cold, wall / CPU (s) | bayes warm, wall / CPU (s) "
          "| optuna GPSampler, wall / CPU (s) |")
    print("|---|---|---|---|")

    def fmt(t: tuple[float, float]) -> str:
        return f"{t[0]:.2f} / {t[1]:.2f}"

    for n in (int(s) for s in args.sizes.split(",")):
        cold, warm = time_bayes(n)
        peer = fmt(time_optuna(n)) if n in peer_sizes else "not run"
        print(f"| {n:,} | {fmt(cold)} | {fmt(warm)} | {peer} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
