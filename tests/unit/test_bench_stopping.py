"""The early-stopping benchmark's bookkeeping: the simulated runner, the synthetic curves, the summary."""

from __future__ import annotations

import argparse
import math
from typing import Any

import pytest
from bench import synthetic_curves
from bench.early_stopping import experiment, run, summarize, table
from bench.stopping_sim import best_at, epochs_to_reach, simulate

from kubetune.api import Params

CONTAINER = {"name": "train", "image": "trainer:1", "command": ["python", "train.py"]}
PARAMETERS = [{"name": "x", "type": "double", "min": 0.0, "max": 1.0}]


def make(mode: str, *, trials: int = 7, parallel: int = 3, max_steps: int = 9, proposer: str = "random",
         factor: int = 3) -> Any:
    return experiment(parameters=PARAMETERS, container=CONTAINER, proposer=proposer, mode=mode, seed=1,
                      trials=trials, parallel=parallel, max_steps=max_steps, factor=factor)


def rising(params: Params, epoch: int) -> dict[str, float]:
    """Accuracy x·epoch/9: the ranking at every epoch is the final one."""
    return {"accuracy": float(params["x"]) * epoch / 9}


def test_without_stopping_every_trial_runs_max_steps_and_the_epochs_are_exact() -> None:
    result = simulate(make("none"), rising, max_steps=9)
    assert [t.epochs for t in result.trials] == [9] * 7
    assert all(t.phase == "Succeeded" for t in result.trials)
    assert result.epochs == 7 * 9
    assert result.trace[-1][1] == 7 * 9
    # 3 workers: 3 + 3 + 1 trials one after another, 9 epochs each
    assert result.time == 3 * 9
    assert result.ended == "MaxTrialsReached"
    # kubetune's own trial time agrees: one epoch is one simulated minute
    assert result.trial_seconds == 7 * 9 * 60
    # the best is what lifecycle.best_trial picks: the largest final accuracy
    assert result.trace[-1][2] == pytest.approx(max(t.value for t in result.trials if t.value is not None))


def test_a_stopped_trial_stops_counting_epochs_and_frees_its_worker() -> None:
    result = simulate(make("asha", trials=8, factor=3), rising, max_steps=9)
    stopped = [t for t in result.trials if t.phase == "EarlyStopped"]
    assert stopped, "asha stops the trials behind at a rung"
    for t in stopped:
        # rungs 1 and 3 for maxSteps 9: stopped as it reaches one, or later, when a rung it passed
        # before minTrials trials got there is ranked
        rung = int(t.message.split()[3])
        assert rung in (1, 3) and t.epochs >= rung, t
        assert t.reason == "AshaRung"
    finished = [t for t in result.trials if t.phase == "Succeeded"]
    assert all(t.epochs == 9 for t in finished)
    assert result.epochs == sum(t.epochs for t in result.trials)
    assert result.epochs < 24 * 9
    # freed workers are refilled at once: three trials run at every instant until trials run out
    assert result.time < 24 * 9 / 3
    assert result.trial_seconds == result.epochs * 60


def test_median_rule_stops_trials_whose_best_is_below_the_running_averages() -> None:
    result = simulate(make("median", trials=6, factor=3), rising, max_steps=9)
    stopped = [t for t in result.trials if t.phase == "EarlyStopped"]
    assert stopped and all(t.reason == "MedianRule" and t.epochs >= 3 for t in stopped)
    assert result.epochs == sum(t.epochs for t in result.trials)


def test_a_diverging_trial_fails_at_its_epoch_and_counts_it() -> None:
    def diverging(params: Params, epoch: int) -> dict[str, float] | None:
        if float(params["x"]) > 0.5 and epoch >= 2:
            return None  # non-finite loss at epoch 2: train.py exits 3
        return rising(params, epoch)

    result = simulate(make("none"), diverging, max_steps=9)
    failed = [t for t in result.trials if t.phase == "Failed"]
    assert failed and all(t.epochs == 2 and t.reason == "NonZeroExit" for t in failed)
    assert result.epochs == 9 * (7 - len(failed)) + 2 * len(failed)


def test_the_epoch_budget_cuts_the_run() -> None:
    result = simulate(make("median", trials=7, factor=10), rising, max_steps=9, epoch_budget=40)
    assert result.ended == "EpochBudget"
    assert 40 <= result.epochs <= 40 + 2


def test_epochs_to_reach_and_best_at_read_the_trace() -> None:
    trace: list[tuple[int, int, float | None]] = [(0, 0, None), (1, 3, None), (2, 6, 0.5), (3, 9, 0.7)]
    assert epochs_to_reach(trace, 0.5) == 6
    assert epochs_to_reach(trace, 0.7) == 9
    assert epochs_to_reach(trace, 0.8) is None
    assert best_at(trace, 5) is None
    assert best_at(trace, 8) == 0.5
    assert best_at(trace, 100) == 0.7


def test_synthetic_curves_are_deterministic_and_have_their_regions() -> None:
    good = {"learning_rate": 0.03, "weight_decay": 2e-4, "momentum": 0.9, "init_scale": 0.05, "dropout": 0.5}
    curve = [synthetic_curves.accuracy(0, good, e) for e in range(1, 28)]
    assert curve == [synthetic_curves.accuracy(0, good, e) for e in range(1, 28)]
    assert curve != [synthetic_curves.accuracy(1, good, e) for e in range(1, 28)]  # noise differs by seed
    assert all(v is not None for v in curve)
    assert curve[-1] is not None and curve[-1] > 0.9
    assert synthetic_curves.mean_accuracy(good, 27) > synthetic_curves.mean_accuracy(good, 3)
    # a large step at a large init diverges within three epochs
    wild = dict(good, learning_rate=0.9, momentum=0.95, init_scale=0.5)
    at = synthetic_curves.diverges_at(wild)
    assert at is not None and 1 <= at <= 3
    assert synthetic_curves.accuracy(0, wild, at) is None
    # strong weight decay: flat at chance
    flat = dict(good, weight_decay=0.09)
    assert synthetic_curves.mean_accuracy(flat, 27) == pytest.approx(synthetic_curves.CHANCE)
    # curves cross: a fast starter leads at epoch 1, the slow one ends higher
    fast = dict(good, learning_rate=0.2, dropout=0.0)
    assert synthetic_curves.mean_accuracy(fast, 1) > synthetic_curves.mean_accuracy(good, 1)
    assert synthetic_curves.mean_accuracy(fast, 27) < synthetic_curves.mean_accuracy(good, 27)


def test_a_small_benchmark_runs_and_summarizes(tmp_path: Any) -> None:
    args = argparse.Namespace(problem="synthetic", trials=6, parallel=3, max_steps=9, trials_factor=3,
                              modes=["none", "median", "asha"], proposers=["random"], seed_list=[0, 1],
                              results=tmp_path)
    results = run(args)
    assert len(results["runs"]) == 6
    again = run(args)  # resumes: nothing left to run
    assert again["runs"] == results["runs"]
    summary = summarize(results)
    none = summary["rows"][("random", "none")]
    # the no-stopping run reaches its own final best, at most at its last epoch
    assert all(v is not None and v <= e for v, e in zip(none["to_target"], none["epochs"], strict=True))
    assert none["ratio"] == [1.0, 1.0]
    for mode in ("median", "asha"):
        row = summary["rows"][("random", mode)]
        assert all(e <= 6 * 9 + 2 for e in row["epochs"])  # the same epoch budget, cut
        assert all(r == 0.0 or r > 0 for r in row["ratio"]) and not any(math.isnan(r) for r in row["ratio"])
    text = table(summary)
    assert text.count("\n| random |") == 2 * 3  # a row per mode in each of the two tables
