"""Benchmark problems: synthetic functions with known optima and Bayesmark-style ML tasks.

Every problem is a search space (kubetune ``Parameter`` list) and a loss to minimize. The ML
tasks re-create Bayesmark's (model × dataset × metric, k-fold CV on scikit-learn's shipped data,
no downloads) at a small size so a 2-core machine can run them many times.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from kubetune.api import Parameter, Params


@dataclass(frozen=True)
class Problem:
    name: str
    parameters: list[Parameter]
    loss: Callable[[Params], float]
    optimum: float | None = None  # known minimum, when there is one


def _double(name: str, lo: float, hi: float, scale: str = "linear") -> Parameter:
    return Parameter(name=name, type="double", min=lo, max=hi, scale=scale)


def _int(name: str, lo: int, hi: int, scale: str = "linear") -> Parameter:
    return Parameter(name=name, type="int", min=lo, max=hi, scale=scale)


def _cat(name: str, values: list[str]) -> Parameter:
    return Parameter(name=name, type="categorical", values=values)


# --- synthetic --------------------------------------------------------------------------------


def branin(p: Params) -> float:
    x1, x2 = float(p["x1"]), float(p["x2"])
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


_H6_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8],
                  [17, 8, 0.05, 10, 0.1, 14]])
_H6_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                         [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(p: Params) -> float:
    x = np.array([float(p[f"x{i}"]) for i in range(6)])
    return float(-np.sum(_H6_ALPHA * np.exp(-np.sum(_H6_A * (x - _H6_P) ** 2, axis=1))))


def ackley(x: np.ndarray[Any, Any]) -> float:
    d = x.size
    return float(-20 * math.exp(-0.2 * math.sqrt(np.sum(x * x) / d)) - math.exp(np.sum(np.cos(2 * math.pi * x)) / d)
                 + 20 + math.e)


def ackley5(p: Params) -> float:
    return ackley(np.array([float(p[f"x{i}"]) for i in range(5)]))


def rosenbrock4(p: Params) -> float:
    x = np.array([float(p[f"x{i}"]) for i in range(4)])
    return float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


def ackley_mixed(p: Params) -> float:
    """Ackley over 3 doubles and 2 ints, shifted by a categorical (only 'c' reaches 0)."""
    x = np.array([float(p["x0"]), float(p["x1"]), float(p["x2"]), float(p["n0"]) / 2, float(p["n1"]) / 2])
    return ackley(x) + {"a": 1.0, "b": 0.5, "c": 0.0, "d": 2.0}[str(p["kind"])]


def seed_like(p: Params) -> float:
    """−accuracy of a made-up deep net over the seed's nine hyperparameters and ranges; NaN: diverged.

    Of the kind the seed's space is on a real network (compare the All-CNN reproduction): under
    random search half the configurations diverge (the effective step lr/(1 − momentum) too large for
    the init scale, before or after the momentum schedule raises momentum), 41 % stay at chance (decay
    swamping the step, too small a step for the epochs, a vanishing init) and 9 % learn. The expert's
    setting (lr 0.01, momentum 0.9, decay 0.001, init 0.05, 350 epochs) reaches 0.848, the best 0.913.
    """
    lr, wd, gs = float(p["learning_rate"]), float(p["weight_decay"]), float(p["gaussian_scale"])
    m, change = float(p["momentum_coef"]), float(p["momentum_step_change"])
    start, width = float(p["momentum_step_schedule_start"]), float(p["momentum_step_schedule_step_width"])
    steps, epochs = float(p["momentum_step_schedule_steps"]), float(p["epochs"])
    # the schedule moves momentum `change` of the way to 1, over the part of training after `start`
    later = min(1.0, max(0.0, (epochs - start) / epochs)) * min(1.0, steps * width / 300)
    m_late = min(m + (1 - m) * change * later, 0.999)
    e, e_late = math.log10(lr / (1 - m)), math.log10(lr / (1 - m_late))
    g = math.log10(gs / 0.05)
    if e + 1.5 * g > -0.35 or e_late + 1.5 * g > 0.4:
        return math.nan
    if math.log10(wd) + 0.5 * e > -3.0 or e + math.log10(epochs / 350) < -2.4 or gs < 0.015:
        return -0.1
    q = math.exp(-0.5 * (((e + 1.0) / 0.5) ** 2 + ((math.log10(wd) + 3.2) / 0.6) ** 2 + ((gs - 0.035) / 0.04) ** 2
                         + ((e_late - e - 0.3) / 0.6) ** 2))
    return -(0.1 + 0.87 * (0.55 + 0.45 * q) * (1 - 0.15 * (1 - epochs / 500)))


# --- Bayesmark-style ML tasks -----------------------------------------------------------------


@cache
def _data(name: str) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    from sklearn import datasets
    from sklearn.preprocessing import StandardScaler

    loader = {"digits": datasets.load_digits, "breast": datasets.load_breast_cancer,
              "wine": datasets.load_wine, "iris": datasets.load_iris, "diabetes": datasets.load_diabetes}[name]
    x, y = loader(return_X_y=True)
    # Bayesmark scores on a fixed 80 % split; keep it, with a fixed subsample of digits for speed
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(y))[: int(0.8 * len(y))]
    if name == "digits":
        idx = idx[:600]
    return StandardScaler().fit_transform(x[idx]), y[idx]


def _cv_loss(model: Any, data: str, scoring: str, folds: int = 3) -> float:
    from sklearn.model_selection import cross_val_score

    x, y = _data(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score = float(np.mean(cross_val_score(model, x, y, cv=folds, scoring=scoring)))
    return -score  # accuracy → negative accuracy; neg-MSE → MSE


def svm_breast(p: Params) -> float:
    from sklearn.svm import SVC

    return _cv_loss(SVC(C=float(p["C"]), gamma=float(p["gamma"]), tol=float(p["tol"])), "breast", "accuracy")


def knn_wine(p: Params) -> float:
    from sklearn.neighbors import KNeighborsClassifier

    model = KNeighborsClassifier(n_neighbors=int(p["n_neighbors"]), weights=str(p["weights"]), p=int(p["p"]),
                                 leaf_size=int(p["leaf_size"]))
    return _cv_loss(model, "wine", "accuracy")


def lasso_diabetes(p: Params) -> float:
    from sklearn.linear_model import Lasso

    model = Lasso(alpha=float(p["alpha"]), fit_intercept=True, tol=float(p["tol"]), max_iter=2000)
    return _cv_loss(model, "diabetes", "neg_mean_squared_error") / 1000.0


def rf_breast(p: Params) -> float:
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=10, max_depth=int(p["max_depth"]),
                                   min_samples_split=float(p["min_samples_split"]),
                                   max_features=float(p["max_features"]), criterion=str(p["criterion"]),
                                   random_state=0, n_jobs=1)
    return _cv_loss(model, "breast", "accuracy")


def mlp_iris(p: Params) -> float:
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(hidden_layer_sizes=(int(p["width"]),), alpha=float(p["alpha"]),
                          learning_rate_init=float(p["lr"]), max_iter=60, random_state=0,
                          activation=str(p["activation"]))
    return _cv_loss(model, "iris", "accuracy")


def gb_digits(p: Params) -> float:
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(max_iter=15, learning_rate=float(p["lr"]), max_depth=int(p["max_depth"]),
                                           l2_regularization=float(p["l2"]), min_samples_leaf=int(p["min_leaf"]),
                                           random_state=0)
    return _cv_loss(model, "digits", "accuracy")


PROBLEMS: dict[str, Problem] = {
    p.name: p
    for p in [
        Problem("branin", [_double("x1", -5, 10), _double("x2", 0, 15)], branin, 0.397887),
        Problem("hartmann6", [_double(f"x{i}", 0, 1) for i in range(6)], hartmann6, -3.32237),
        Problem("ackley5", [_double(f"x{i}", -5, 10) for i in range(5)], ackley5, 0.0),
        Problem("rosenbrock4", [_double(f"x{i}", -2, 2) for i in range(4)], rosenbrock4, 0.0),
        Problem("ackley-mixed", [_double("x0", -5, 10), _double("x1", -5, 10), _double("x2", -5, 10),
                                 _int("n0", -10, 20), _int("n1", -10, 20), _cat("kind", ["a", "b", "c", "d"])],
                ackley_mixed, 0.0),
        Problem("seedlike-allcnn", [
            _int("epochs", 50, 500), _double("learning_rate", 0.001, 0.5, "log"),
            _double("weight_decay", 0.001, 1.0, "log"), _double("gaussian_scale", 0.01, 0.5),
            _double("momentum_coef", 0.001, 0.999), _double("momentum_step_change", 0.001, 0.999),
            _double("momentum_step_schedule_start", 50, 300), _int("momentum_step_schedule_step_width", 5, 100),
            _int("momentum_step_schedule_steps", 1, 20)], seed_like),
        Problem("svm-breast", [_double("C", 1e-3, 1e3, "log"), _double("gamma", 1e-5, 1e1, "log"),
                               _double("tol", 1e-5, 1e-1, "log")], svm_breast),
        Problem("knn-wine", [_int("n_neighbors", 1, 40), _cat("weights", ["uniform", "distance"]), _int("p", 1, 4),
                             _int("leaf_size", 1, 40)], knn_wine),
        Problem("lasso-diabetes", [_double("alpha", 1e-3, 1e2, "log"), _double("tol", 1e-5, 1e-1, "log")],
                lasso_diabetes),
        Problem("rf-breast", [_int("max_depth", 1, 15), _double("min_samples_split", 0.01, 0.9, "log"),
                              _double("max_features", 0.05, 1.0), _cat("criterion", ["gini", "entropy"])], rf_breast),
        Problem("mlp-iris", [_int("width", 2, 64, "log"), _double("alpha", 1e-5, 1e1, "log"),
                             _double("lr", 1e-4, 1.0, "log"), _cat("activation", ["relu", "tanh", "logistic"])],
                mlp_iris),
        Problem("gb-digits", [_double("lr", 1e-3, 1.0, "log"), _int("max_depth", 2, 8), _double("l2", 1e-4, 10, "log"),
                              _int("min_leaf", 2, 50, "log")], gb_digits),
    ]
}
