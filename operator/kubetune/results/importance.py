"""Parameter importance: fANOVA main effects on a random forest of the observations.

The method of Hutter, Hoos & Leyton-Brown, *An Efficient Approach for Assessing Hyperparameter
Importance* (ICML 2014), as Optuna's ``FanovaImportanceEvaluator`` applies it: fit scikit-learn's
``RandomForestRegressor`` to the observations, then read each tree's structure exactly. A tree
cuts the domain into boxes (its leaves), each with a constant prediction, so its mean, its
variance and the marginal of any one parameter (the prediction averaged over all the others) are
finite sums over the leaves. A parameter's importance in one tree is the variance of its marginal
divided by the tree's variance: the share of the variance its main effect explains. The forest's
importance is the mean over the trees that vary at all; :func:`fanova_main_effects` then
normalizes the shares to sum to 1, so what interactions explain (``1 − sum`` before normalizing,
kept in :attr:`Importance.main_effects`) is left out of the vector.

Pure: numbers in, numbers out; no I/O, no Kubernetes client.

Notation (one tree):

==========  ==========================================================================
``n, d``    observations, parameters (columns)
``X``       ``(n, d)`` points of [0, 1]^d: :class:`kubetune.space.Space`'s unit coordinate
``y``       ``(n,)`` objective values
``L``       the tree's leaves
``lo, hi``  ``(L, d)`` each leaf's box: ``lo < x ≤ hi`` on every axis (scikit-learn sends
            ``x ≤ threshold`` left)
``mass``    ``(L, d)`` the share of each axis a leaf's box covers: its length on a numeric axis,
            the fraction of the ``k`` values inside it on a categorical one
``v, w``    ``(L,)`` leaf predictions and volumes (``prod(mass, axis=1)``, summing to 1)
==========  ==========================================================================

The domain is the unit cube with the uniform measure: a numeric parameter is uniform over its unit
coordinate, which is already in log space for ``scale: log`` (Optuna's fANOVA measures a log
parameter over its raw range instead, one of the places the two may differ); an int owns
``max − min + 1`` equal slices of it. A categorical with ``k`` values is one column holding
Space's unit coordinate, the centre ``(i + 0.5) / k`` of value ``i``'s slice; its marginal is
evaluated at those ``k`` centres with equal weight, so the forest's thresholds between them never
give one value more weight than another. (The trees may group neighbouring values first, an order
the values do not have; deep trees isolate any value in a few cuts.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from kubetune.api import PARAMETER_FAILURES, Params, TrialPhase
from kubetune.results.history import History, maximize, rows
from kubetune.space import Space, SpaceError

FloatArray = npt.NDArray[np.float64]

__all__ = ["MIN_TRIALS", "Importance", "fanova_main_effects", "observations", "parameter_importance"]

#: The fewest observations for any importance. Fewer than ``2 d`` (d parameters) still gives one,
#: marked :attr:`Importance.rough`: a forest fitted to a handful of points splits on a few
#: parameters and its shares are noisy (Optuna computes its importance from two trials on).
MIN_TRIALS = 5

#: Deep, unpruned trees, as Optuna's evaluator grows them (``max_depth=64``, leaves of one sample).
MAX_DEPTH = 64


@dataclass(frozen=True)
class Importance:
    """How much of the objective's variation each parameter explains on its own."""

    #: Parameter name → share of the variance explained by its main effect, in the spec's order.
    #: The shares sum to 1; all are 0 when the objective did not vary.
    values: dict[str, float]
    #: Observations used (see :func:`parameter_importance`), of which ``n_partial`` early-stopped
    #: trials at their last value and ``n_failed`` failed ones at the worst value.
    n_trials: int
    #: How the values were computed, for the report, e.g. "fANOVA main effects, random forest of 64 trees".
    method: str
    #: The share of the forest's variance the main effects explain together, before normalizing
    #: (the rest is interactions between parameters); 0 when the objective did not vary.
    main_effects: float
    n_partial: int = 0
    n_failed: int = 0
    #: The space has conditional parameters (``when``).
    conditional: bool = False

    @property
    def rough(self) -> bool:
        """Fewer than two observations per parameter: read the ranking as a first hint."""
        return self.n_trials < 2 * len(self.values)

    def ranked(self) -> list[tuple[str, float]]:
        """``(name, share)`` from the most important parameter down; ties keep the spec's order."""
        return sorted(self.values.items(), key=lambda item: -item[1])


def observations(history: History) -> tuple[list[Params], list[float], int, int]:
    """The points the importance is fitted to: ``(assignments, values, n_partial, n_failed)``.

    * Succeeded trials with a finite objective, at that value;
    * EarlyStopped trials at the last finite objective of their learning curve: the partial result
      the suggester also sees (with asha most trials end this way, and leaving them out would leave
      little to fit);
    * Failed trials whose reason is one of :data:`PARAMETER_FAILURES`, at the worst value of the
      others (a diverged region is where a parameter matters most);
    * not Killed, Running or Pending trials, nor any whose parameters are not in the space (a trial
      of an older spec).
    """
    space = Space(history.spec.parameters)
    assignments: list[Params] = []
    values: list[float] = []
    failed: list[Params] = []
    n_partial = 0
    for row in rows(history):
        try:
            params = space.validate(row.trial.spec.params)
        except SpaceError:
            continue
        if row.phase is TrialPhase.FAILED:
            if row.trial.status.reason in PARAMETER_FAILURES:
                failed.append(params)
        elif row.phase in (TrialPhase.SUCCEEDED, TrialPhase.EARLY_STOPPED) and row.value is not None:
            assignments.append(params)
            values.append(row.value)
            n_partial += row.phase is TrialPhase.EARLY_STOPPED
    if not values:
        return [], [], 0, 0
    worst = min(values) if maximize(history) else max(values)
    return assignments + failed, values + [worst] * len(failed), n_partial, len(failed)


def parameter_importance(history: History, *, seed: int = 0, n_trees: int = 64) -> Importance | None:
    """fANOVA main-effect importance of the spec's parameters, or None with too few observations.

    The observations are those of :func:`observations`. The goal does not matter: a variance is
    the same for ``y`` and ``−y``. None when fewer than :data:`MIN_TRIALS` observations remain.
    Deterministic for a given ``seed``.
    """
    space = Space(history.spec.parameters)
    assignments, values, n_partial, n_failed = observations(history)
    if len(values) < MIN_TRIALS:
        return None
    categories = {j: len(d.choices) for j, d in enumerate(space.dimensions) if d.is_categorical}
    raw = fanova_main_effects(space.to_unit(assignments), np.array(values, dtype=float), categories=categories,
                              seed=seed, n_trees=n_trees, normalize=False)
    explained = float(raw.sum())
    shares = raw / explained if explained > 0 else raw
    return Importance(values={name: float(s) for name, s in zip(space.names, shares, strict=True)},
                      n_trials=len(values), method=f"fANOVA main effects, random forest of {n_trees} trees",
                      main_effects=min(explained, 1.0), n_partial=n_partial, n_failed=n_failed,
                      conditional=space.conditional)


def fanova_main_effects(X: FloatArray, y: FloatArray, *, categories: Mapping[int, int] | None = None, seed: int = 0,
                        n_trees: int = 64, normalize: bool = True) -> FloatArray:
    """Each column's main-effect share of the variance of a random forest fitted to ``(X, y)``.

    ``X`` is ``(n, d)`` in [0, 1], ``y`` is ``(n,)``; ``categories`` maps a categorical column to
    its number of values ``k`` (that column holds ``(i + 0.5) / k`` for value ``i``, as
    :meth:`kubetune.space.Space.to_unit` writes it). Returns ``(d,)``: the mean over the trees with
    any variance of (variance of the column's marginal) / (tree variance), normalized to sum to 1
    unless ``normalize`` is False; all zeros when no tree varies (a constant ``y``).
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValueError(f"expected X of shape (n, d) and y of shape (n,), got {X.shape} and {y.shape}")
    categories = dict(categories or {})
    d = X.shape[1]
    spread = float(np.std(y))
    if spread == 0 or not np.isfinite(spread):
        return np.zeros(d)
    # Splits do not depend on y's scale; standardizing keeps the variances far from overflow.
    y = (y - float(np.mean(y))) / spread
    from sklearn.ensemble import RandomForestRegressor  # heavy import, only when needed

    forest = RandomForestRegressor(n_estimators=n_trees, max_depth=MAX_DEPTH, min_samples_split=2,
                                   min_samples_leaf=1, random_state=seed, n_jobs=1)
    forest.fit(X, y)
    fractions = [f for f in (_tree_fractions(e.tree_, d, categories) for e in forest.estimators_) if f is not None]
    if not fractions:
        return np.zeros(d)
    shares: FloatArray = np.mean(fractions, axis=0)
    total = float(shares.sum())
    return shares / total if normalize and total > 0 else shares


def _tree_fractions(tree: Any, d: int, categories: Mapping[int, int]) -> FloatArray | None:
    """``(d,)`` marginal variance / total variance of one fitted ``sklearn.tree._tree.Tree``; None if it is flat."""
    lo, hi, v = _leaf_boxes(tree, d)
    mass = np.clip(hi, 0.0, 1.0) - np.clip(lo, 0.0, 1.0)
    centres = {j: (np.arange(k) + 0.5) / k for j, k in categories.items()}
    for j, c in centres.items():
        mass[:, j] = _inside(lo[:, j], hi[:, j], c).mean(axis=1)
    w = np.prod(mass, axis=1)
    mean = float(w @ v)
    variance = float(w @ (v - mean) ** 2)
    if not variance > 1e-12:
        return None
    fractions = np.zeros(d)
    for j in range(d):
        if j in centres:
            points = centres[j]
            weights = np.full(len(points), 1.0 / len(points))
        else:
            # the tree's marginal of x_j is constant between consecutive thresholds on j
            cuts = np.unique(np.concatenate([[0.0, 1.0], np.clip(tree.threshold[tree.feature == j], 0.0, 1.0)]))
            points, weights = (cuts[:-1] + cuts[1:]) / 2, np.diff(cuts)
        rest = np.prod(np.delete(mass, j, axis=1), axis=1)  # (L,) each leaf's volume off axis j
        marginal = (v * rest) @ _inside(lo[:, j], hi[:, j], points)  # (m,) the marginal at each point
        fractions[j] = float(weights @ (marginal - mean) ** 2) / variance
    return fractions


def _inside(lo: FloatArray, hi: FloatArray, points: FloatArray) -> npt.NDArray[np.bool_]:
    """``(L, m)``: whether each point lies in each leaf's interval ``(lo, hi]``."""
    return (lo[:, None] < points[None, :]) & (points[None, :] <= hi[:, None])


def _leaf_boxes(tree: Any, d: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``lo, hi`` of shape ``(L, d)`` and predictions ``(L,)`` of a tree's leaves.

    scikit-learn numbers a node before its children, so one pass in index order hands each node's
    box down to both children. The root's box starts just below 0 so that ``lo < x`` holds at 0.
    """
    left, right = tree.children_left, tree.children_right
    feature, threshold = tree.feature, tree.threshold
    n_nodes = len(left)
    lo = np.full((n_nodes, d), -np.finfo(float).eps)
    hi = np.ones((n_nodes, d))
    for node in range(n_nodes):
        a, b = left[node], right[node]
        if a < 0:  # a leaf
            continue
        j, t = feature[node], threshold[node]
        lo[a], hi[a] = lo[node], hi[node]
        lo[b], hi[b] = lo[node], hi[node]
        hi[a, j] = min(hi[node, j], t)
        lo[b, j] = max(lo[node, j], t)
    leaves = left < 0
    return lo[leaves], hi[leaves], np.asarray(tree.value[leaves, 0, 0], dtype=float)
