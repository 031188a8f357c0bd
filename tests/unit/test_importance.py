"""Parameter importance (fANOVA main effects): checked on functions whose answer is known."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from kubetune.api import CurvePoint, ExperimentStatus, Params, Trial, TrialPhase, TrialReason
from kubetune.results.history import History
from kubetune.results.importance import MIN_TRIALS, Importance, fanova_main_effects, observations, parameter_importance
from kubetune.space import Space
from tests.unit import factories

UNIT_DOUBLES = [{"name": f"x{i}", "type": "double", "min": 0.0, "max": 1.0} for i in range(4)]
#: The factories' default space: lr (double, log), layers (int 1–4), opt (sgd | adam).
MIXED = factories.experiment_dict()["spec"]["parameters"]


def history_of(parameters: list[Any], objective: Callable[[Params], float], n: int, *, seed: int = 0,
               extra: list[Trial] | None = None, goal: str = "maximize") -> History:
    """``n`` Succeeded trials at random points of the space, scored by ``objective``."""
    exp = factories.experiment(parameters=parameters, maxTrials=1000, objective={"metric": "accuracy", "goal": goal})
    space = Space(exp.spec.parameters)
    points = space.from_unit(np.random.default_rng(seed).random((n, space.dim)))
    trials = [factories.trial(i, value=objective(p), params=p) for i, p in enumerate(points)]
    trials += [t.model_copy(update={"spec": t.spec.model_copy(update={"index": n + i})})
               for i, t in enumerate(extra or [])]
    return History.of("exp", exp.spec, ExperimentStatus(), trials, source="test")


def linear_and_wave(p: Params) -> float:
    """x0 weighs most (variance 100/12), x1 less (4.5), x2 and x3 are ignored."""
    return 10 * float(p["x0"]) + 3 * math.sin(2 * math.pi * float(p["x1"]))


def importance(history: History, **kwargs: Any) -> Importance:
    result = parameter_importance(history, **kwargs)
    assert result is not None
    return result


# --- behaviour on histories ---------------------------------------------------------------------


def test_ignored_parameters_get_almost_nothing_and_the_ranking_follows_the_weights() -> None:
    values = importance(history_of(UNIT_DOUBLES, linear_and_wave, 150)).values
    assert values["x0"] > values["x1"] > max(values["x2"], values["x3"])
    assert values["x2"] < 0.05 and values["x3"] < 0.05
    # the exact main-effect shares: 8.33 / 12.83 and 4.5 / 12.83
    assert values["x0"] == pytest.approx(0.649, abs=0.06)
    assert values["x1"] == pytest.approx(0.351, abs=0.06)


def test_shares_sum_to_one_and_are_listed_in_the_spec_order() -> None:
    result = importance(history_of(UNIT_DOUBLES, linear_and_wave, 60))
    assert list(result.values) == ["x0", "x1", "x2", "x3"]
    assert sum(result.values.values()) == pytest.approx(1.0)
    assert all(0.0 <= v <= 1.0 for v in result.values.values())
    assert [name for name, _ in result.ranked()][:2] == ["x0", "x1"]
    assert result.n_trials == 60
    assert result.method == "fANOVA main effects, random forest of 64 trees"


def test_a_categorical_that_drives_the_objective_is_found_important() -> None:
    def objective(p: Params) -> float:  # lr (log scale) is ignored
        return (5.0 if p["opt"] == "adam" else 0.0) + 0.5 * int(p["layers"])

    values = importance(history_of(MIXED, objective, 80)).values
    assert values["opt"] > 0.7
    assert values["opt"] > values["layers"] > values["lr"]
    assert values["lr"] < 0.05


def test_a_categorical_matters_whatever_the_order_of_its_values() -> None:
    parameters = [{"name": "c", "type": "categorical", "values": ["a", "b", "c", "d", "e"]},
                  {"name": "x", "type": "double", "min": 0.0, "max": 1.0}]
    effect = {"a": 0.0, "b": 4.0, "c": 0.0, "d": 4.0, "e": 0.0}  # no threshold on the index separates it
    values = importance(history_of(parameters, lambda p: effect[str(p["c"])] + float(p["x"]), 100)).values
    assert values["c"] > 0.9


def test_a_constant_objective_gives_all_zeros() -> None:
    result = importance(history_of(UNIT_DOUBLES, lambda p: 0.25, 20))
    assert result.values == dict.fromkeys(["x0", "x1", "x2", "x3"], 0.0)
    assert result.main_effects == 0.0


def test_too_few_trials_gives_none_and_few_per_parameter_are_marked_rough() -> None:
    assert parameter_importance(history_of(UNIT_DOUBLES, linear_and_wave, MIN_TRIALS - 1)) is None
    few = parameter_importance(history_of(UNIT_DOUBLES, linear_and_wave, MIN_TRIALS))
    assert few is not None and few.rough
    assert not importance(history_of(UNIT_DOUBLES, linear_and_wave, 8)).rough  # 2 per parameter


def test_the_same_seed_gives_the_same_importance() -> None:
    history = history_of(UNIT_DOUBLES, linear_and_wave, 40)
    assert importance(history, seed=3) == importance(history, seed=3)
    assert importance(history, seed=3).values != importance(history, seed=4).values


def test_trials_that_say_nothing_about_the_parameters_are_left_out() -> None:
    odd = {"x0": 0.0, "x1": 0.0, "x2": 1.0, "x3": 1.0}
    noise = [
        factories.trial(0, phase=TrialPhase.FAILED, value=1e6, params=odd, reason=TrialReason.IMAGE_PULL_FAILED),
        factories.trial(0, phase=TrialPhase.FAILED, params=odd, reason=TrialReason.EVICTED),
        factories.trial(0, phase=TrialPhase.EARLY_STOPPED, value=None, params=odd),  # no curve: no value
        factories.trial(0, phase=TrialPhase.KILLED, value=1e6, params=odd),
        factories.trial(0, phase=TrialPhase.RUNNING, params=odd,
                        curve=[CurvePoint(step=1, metrics={"accuracy": 1e6})]),
        factories.trial(0, value=math.inf, params=odd),
        factories.trial(0, value=math.nan, params=odd),
        factories.trial(0, value=1e6, params={**odd, "x0": 7.0}),  # outside the space (an older spec)
    ]
    clean = importance(history_of(UNIT_DOUBLES, linear_and_wave, 30))
    noisy = importance(history_of(UNIT_DOUBLES, linear_and_wave, 30, extra=noise))
    assert noisy == clean
    assert noisy.n_trials == 30 and noisy.n_partial == noisy.n_failed == 0


def test_early_stopped_trials_count_at_their_last_value_and_diverged_ones_at_the_worst() -> None:
    base = history_of(UNIT_DOUBLES, linear_and_wave, 30)
    middle = dict.fromkeys(["x0", "x1", "x2", "x3"], 0.5)
    curve = [CurvePoint(step=1, metrics={"accuracy": 0.1}), CurvePoint(step=2, metrics={"accuracy": 0.2})]
    stopped = factories.trial(30, phase=TrialPhase.EARLY_STOPPED, value=None, params=middle, curve=curve)
    # x3 is ignored by the objective, but every trial with x3 above 0.6 diverges: x3 matters after all
    rng = np.random.default_rng(1)
    diverged = [factories.trial(31 + i, phase=TrialPhase.FAILED, reason=TrialReason.NON_ZERO_EXIT,
                                params={"x0": rng.random(), "x1": rng.random(), "x2": rng.random(),
                                        "x3": 0.6 + 0.4 * rng.random()}) for i in range(20)]
    history = history_of(UNIT_DOUBLES, linear_and_wave, 30, extra=[stopped, *diverged])
    _, values, n_partial, n_failed = observations(history)
    assert (n_partial, n_failed) == (1, 20)
    assert values[30] == 0.2  # the stopped trial's last value
    assert values[31:] == [min(values[:31])] * 20  # the goal is to maximize: failures sit at the worst
    assert importance(history).values["x3"] > 0.1 > importance(base).values["x3"]


def test_the_goal_does_not_change_the_importance() -> None:
    up = importance(history_of(UNIT_DOUBLES, linear_and_wave, 40, goal="maximize"))
    down = importance(history_of(UNIT_DOUBLES, lambda p: -linear_and_wave(p), 40, goal="minimize"))
    for name in up.values:
        assert down.values[name] == pytest.approx(up.values[name], abs=1e-9)


def test_main_effects_tell_how_much_interactions_leave_out() -> None:
    additive = importance(history_of(UNIT_DOUBLES, linear_and_wave, 150))
    interaction = importance(history_of(UNIT_DOUBLES, lambda p: (float(p["x0"]) - 0.5) * (float(p["x1"]) - 0.5), 150))
    assert additive.main_effects > 0.85
    assert interaction.main_effects < 0.5  # exactly 0; the forest sees some spurious main effect


# --- the core against exact answers -------------------------------------------------------------


def grid(points: int, d: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    """The ``points^d`` cell centres of a regular grid of the unit cube, shape ``(points^d, d)``."""
    axis = (np.arange(points) + 0.5) / points
    return np.stack([a.ravel() for a in np.meshgrid(*[axis] * d, indexing="ij")], axis=1)


@pytest.mark.parametrize("weights", [(3.0, 1.0), (1.0, 1.0), (2.0, 1.0, 0.5), (1.0, 0.0, 2.0)])
def test_an_additive_linear_function_gets_its_analytic_shares(weights: tuple[float, ...]) -> None:
    a = np.array(weights)
    X = grid(21 if len(a) == 2 else 9, len(a))
    shares = fanova_main_effects(X, X @ a)
    np.testing.assert_allclose(shares, a**2 / np.sum(a**2), atol=0.02)


def test_a_categorical_column_weighs_each_value_equally_however_often_it_was_tried() -> None:
    rng = np.random.default_rng(0)
    k, n = 4, 400
    codes = rng.choice(k, size=n, p=[0.7, 0.1, 0.1, 0.1])
    effect = np.array([0.0, 2.0, -1.0, 1.0])  # variance over equally weighted values: 1.25
    x = rng.random(n)
    X = np.stack([(codes + 0.5) / k, x], axis=1)
    shares = fanova_main_effects(X, effect[codes] + 3 * x, categories={0: k})
    expected = 1.25 / (1.25 + 9 / 12)
    assert shares[0] == pytest.approx(expected, abs=0.05)


def test_the_core_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="shape"):
        fanova_main_effects(np.zeros((5, 2)), np.zeros(4))
