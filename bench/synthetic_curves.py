"""Synthetic learning curves of the deep-net kind, with a known final-accuracy surface.

Five hyperparameters, as an SGD-trained network has them:

=================  ====================  =======================================================
name               range                 role
=================  ====================  =======================================================
learning_rate      1e-4 … 1, log         with momentum m, the effective step ``η = lr / (1 − m)``
weight_decay       1e-6 … 0.1, log       regularization; its best value moves with η
momentum           0 … 0.99              only through η
init_scale         1e-3 … 1, log         the init std; too small: no signal; too large: unstable
dropout            0 … 0.8               slows training, raises the final accuracy (up to 0.5)
=================  ====================  =======================================================

With ``L = log10 η``, ``W = log10 weight_decay``, ``I = log10 init_scale``, ``D = dropout``:

* **Diverges** when ``s = L + 0.7 (I − log10 0.05) > 0.3`` (a large step at a large init): the loss is
  not finite at epoch 1 when s > 0.9, at epoch 2 when s > 0.6, else at epoch 3. The trial fails
  (``train.py`` exits 3 on a non-finite loss and reports nothing for that epoch).
* **Stuck at chance** (accuracy 0.1 plus noise, flat) when ``W > −1.5`` (decay swamps the
  gradient), ``I < −2.5`` (vanishing signal) or ``L < −3.5`` (too small a step to move).
* Otherwise the **final accuracy** (at epoch ∞) is ``a∞ = 0.1 + 0.87 (0.3 + 0.7 q)`` with
  ``q = exp(−½ [((L + 0.6)/0.8)² + ((W − W*)/1.2)² + ((I + 1.3)/0.6)² + ((D − 0.5)/0.35)²])`` and
  ``W* = −3.8 + 0.4 (L + 0.6)``: between 0.36 and 0.97, best at η ≈ 0.25, weight decay ≈ 1.6e-4,
  init 0.05, dropout 0.5.
* **Convergence** ``a(t) = 0.1 + (a∞ − 0.1)(1 − exp(−t/τ))`` at epoch t, with time constant
  ``τ = 2 · 10^(−0.45 (L + 0.6)) · (1 + 3 D)`` epochs, clipped to [0.5, 60] (3.4 epochs at the
  optimum, 13 for the median configuration): a larger step learns faster (and, past the optimum,
  ends lower), dropout learns slower (and ends higher up to 0.5).
  So curves cross: a slow starter (small η, much dropout) can be last at epoch 1 and first at
  epoch 27, and a fast starter (large η) leads early and plateaus low.
* **Noise**: each epoch's reported accuracy is ``a(t) + ε``, ε ~ N(0, 0.01) independent per epoch
  (a validation set of ~2,000 images), clipped to [0, 1]; drawn from a generator seeded by
  (run seed, configuration, epoch), so a configuration has the same curve in every mode of a
  seed. The trial's objective is its accuracy at its last epoch.

Under random search 7 % of configurations diverge and 28 % stay at chance; over those that do
not diverge, the noiseless accuracy at epoch 27 has median 0.28, 90th percentile 0.54 and 99th
0.80 (the optimum: 0.96). Among all configurations that do not diverge, the best 5 % at epoch 27 are all
in the top third at epoch 1 (the stuck and the slow ones are easy to tell early), but a quarter of
them are outside the top ninth at epoch 3, and a third outside the top 27th at epoch 9: ranking
at a rung does cut eventual winners.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from kubetune.api import Params

CHANCE = 0.1
NOISE = 0.01

PARAMETERS: list[dict[str, Any]] = [
    {"name": "learning_rate", "type": "double", "min": 1e-4, "max": 1.0, "scale": "log"},
    {"name": "weight_decay", "type": "double", "min": 1e-6, "max": 0.1, "scale": "log"},
    {"name": "momentum", "type": "double", "min": 0.0, "max": 0.99},
    {"name": "init_scale", "type": "double", "min": 1e-3, "max": 1.0, "scale": "log"},
    {"name": "dropout", "type": "double", "min": 0.0, "max": 0.8},
]


def _logs(p: Params) -> tuple[float, float, float, float]:
    eta = float(p["learning_rate"]) / (1.0 - float(p["momentum"]))
    return math.log10(eta), math.log10(float(p["weight_decay"])), math.log10(float(p["init_scale"])), float(
        p["dropout"])


def diverges_at(p: Params) -> int | None:
    """The epoch whose loss is not finite, or None when the configuration is stable."""
    lr, _, init, _ = _logs(p)
    s = lr + 0.7 * (init - math.log10(0.05))
    if s <= 0.3:
        return None
    return 1 if s > 0.9 else 2 if s > 0.6 else 3


def stuck(p: Params) -> bool:
    lr, wd, init, _ = _logs(p)
    return wd > -1.5 or init < -2.5 or lr < -3.5


def final_accuracy(p: Params) -> float:
    """a∞: the accuracy the configuration converges to (chance when stuck)."""
    if stuck(p):
        return CHANCE
    lr, wd, init, d = _logs(p)
    wd_best = -3.8 + 0.4 * (lr + 0.6)
    q = math.exp(-0.5 * (((lr + 0.6) / 0.8) ** 2 + ((wd - wd_best) / 1.2) ** 2 + ((init + 1.3) / 0.6) ** 2
                         + ((d - 0.5) / 0.35) ** 2))
    return CHANCE + 0.87 * (0.3 + 0.7 * q)


def time_constant(p: Params) -> float:
    lr, _, _, d = _logs(p)
    return min(60.0, max(0.5, 2.0 * 10 ** (-0.45 * (lr + 0.6)) * (1.0 + 3.0 * d)))


def mean_accuracy(p: Params, epoch: int) -> float:
    """a(t) without noise."""
    top = final_accuracy(p)
    return CHANCE + (top - CHANCE) * (1.0 - math.exp(-epoch / time_constant(p)))


def _config_hash(p: Params) -> int:
    return zlib.crc32(json.dumps({k: p[k] for k in sorted(p)}, separators=(",", ":")).encode())


def accuracy(seed: int, p: Params, epoch: int) -> float | None:
    """The accuracy a trial reports after ``epoch`` (1-based), or None when its loss is not finite."""
    diverged = diverges_at(p)
    if diverged is not None and epoch >= diverged:
        return None
    noise = np.random.default_rng([seed, _config_hash(p), epoch]).normal(0.0, NOISE)
    return float(min(1.0, max(0.0, mean_accuracy(p, epoch) + noise)))


class SyntheticCurves:
    """The simulator's epoch function for one seed."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def __call__(self, params: Params, epoch: int) -> Mapping[str, float] | None:
        value = accuracy(self.seed, params, epoch)
        return None if value is None else {"accuracy": value}
