"""The report's plots, drawn with matplotlib (the ``report`` extra) and returned as PNG bytes.

Each function takes a :class:`~kubetune.results.History` and returns ``None`` when it has nothing
to draw (no trial with a value, no learning curve), so the page can say so instead of showing an
empty frame. The colours mean the same in every figure: :data:`PHASE_COLOURS`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from kubetune import curves
from kubetune.api import ParameterType, Scale, TrialPhase
from kubetune.results.history import History, Row, best_so_far, maximize, rows
from kubetune.results.importance import Importance

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PHASE_COLOURS = {
    TrialPhase.SUCCEEDED: "#1f77b4",
    TrialPhase.EARLY_STOPPED: "#ff7f0e",
    TrialPhase.FAILED: "#d62728",
    TrialPhase.KILLED: "#7f7f7f",
    TrialPhase.RUNNING: "#2ca02c",
    TrialPhase.PENDING: "#2ca02c",
}
MARKERS = {TrialPhase.SUCCEEDED: "o", TrialPhase.EARLY_STOPPED: "v", TrialPhase.FAILED: "x",
           TrialPhase.KILLED: "s", TrialPhase.RUNNING: "D", TrialPhase.PENDING: "D"}
LABELS = {TrialPhase.SUCCEEDED: "succeeded", TrialPhase.EARLY_STOPPED: "early-stopped (last value)",
          TrialPhase.FAILED: "failed (no value)", TrialPhase.KILLED: "killed (last value)",
          TrialPhase.RUNNING: "running (latest value)", TrialPhase.PENDING: "pending"}
DPI = 110


class PlottingUnavailable(RuntimeError):
    """matplotlib is not installed."""


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise PlottingUnavailable("the HTML report draws with matplotlib: pip install 'kubetune[report]' "
                                  "(or use --format md)") from err
    return plt


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    _pyplot().close(figure)
    return buffer.getvalue()


def _value_limits(values: Sequence[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.06 or max(abs(hi) * 0.06, 0.05)
    return lo - pad, hi + pad


def _legend(ax: Any) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, fontsize=8, loc="best", framealpha=0.85)


def trace(history: History) -> bytes | None:
    """Every trial's objective by trial index, the best-so-far line, failures along the bottom."""
    table = rows(history)
    valued = [r.value for r in table if r.value is not None]
    if not valued:
        return None
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(8.5, 4.2))
    lo, hi = _value_limits(valued + ([history.spec.objective.target] if history.spec.objective.target else []))
    floor = lo if maximize(history) else hi  # failures sit at the worse edge
    infeasible = [(r.index, r.value) for r in table if not r.feasible and r.value is not None]
    if infeasible:
        xs, ys = zip(*infeasible, strict=True)
        ax.scatter(xs, ys, s=34, marker="o", facecolors="none", edgecolors="#8c564b", linewidths=1.2, zorder=3,
                   label=f"breaks a constraint: {len(infeasible)}")
    for phase in TrialPhase:
        group = [r for r in table if r.phase is phase and r.feasible]
        points = [(r.index, r.value) for r in group if r.value is not None]
        if phase is TrialPhase.FAILED:
            points = [(r.index, floor) for r in group]
        if not points:
            continue
        xs, ys = zip(*points, strict=True)
        ax.scatter(xs, ys, s=26 if phase is not TrialPhase.FAILED else 34, marker=MARKERS[phase],
                   color=PHASE_COLOURS[phase], label=f"{LABELS[phase]}: {len(points)}", zorder=3,
                   alpha=0.9 if phase is TrialPhase.SUCCEEDED else 0.8)
    best = best_so_far(history)
    if best:
        last = max(r.index for r in table)
        steps, tops = [i for i, _ in best] + [last], [v for _, v in best] + [best[-1][1]]
        ax.step(steps, tops, where="post", color="black", linewidth=1.6, label="best so far", zorder=4)
    if history.spec.objective.target is not None:
        ax.axhline(history.spec.objective.target, color="#9467bd", linestyle="--", linewidth=1, label="target")
    ax.set_ylim(*sorted((lo - (hi - lo) * 0.03, hi)) if maximize(history) else (lo, hi + (hi - lo) * 0.03))
    ax.set_xlabel("trial index")
    ax.set_ylabel(f"{history.spec.objective.metric} ({history.spec.objective.goal.value})")
    ax.set_title(f"{history.name}: objective of every trial, best so far")
    ax.grid(alpha=0.3)
    _legend(ax)
    return _png(figure)


def _param_positions(history: History, name: str, table: Sequence[Row]) -> tuple[list[float], list[str] | None]:
    """x positions of each row for parameter ``name``; categorical ticks when it is one."""
    parameter = next(p for p in history.spec.parameters if p.name == name)
    if parameter.type is ParameterType.CATEGORICAL:
        values = list(parameter.values or [])
        rng = np.random.default_rng(0)
        jitter = rng.uniform(-0.18, 0.18, size=len(table))
        return [values.index(str(r.trial.spec.params[name])) + float(j) for r, j in zip(table, jitter,
                                                                                       strict=True)], values
    return [float(r.trial.spec.params[name]) for r in table], None


def slices(history: History) -> bytes | None:
    """One panel per parameter: objective against the parameter's value, coloured by trial index."""
    table = [r for r in rows(history) if r.value is not None or r.phase is TrialPhase.FAILED]
    valued = [r.value for r in table if r.value is not None]
    if not valued:
        return None
    plt = _pyplot()
    parameters = history.spec.parameters
    columns = min(3, len(parameters))
    lines = math.ceil(len(parameters) / columns)
    figure, axes = plt.subplots(lines, columns, figsize=(4.0 * columns, 3.0 * lines + 0.4), squeeze=False,
                                sharey=True, layout="constrained")
    lo, hi = _value_limits(valued)
    floor = lo if maximize(history) else hi
    best = history.status.best_trial.name if history.status.best_trial else None
    scatter = None
    last_index = max(1, max(r.index for r in table))
    for k, parameter in enumerate(parameters):
        ax = axes[k // columns][k % columns]
        having = [r for r in table if parameter.name in r.trial.spec.params]  # inactive (when) elsewhere
        xs, ticks = _param_positions(history, parameter.name, having)
        ok = [(x, r) for x, r in zip(xs, having, strict=True) if r.value is not None]
        bad = [(x, r) for x, r in zip(xs, having, strict=True) if r.value is None]
        if ok:
            scatter = ax.scatter([x for x, _ in ok], [r.value for _, r in ok], c=[r.index for _, r in ok],
                                 cmap="viridis", vmin=0, vmax=last_index, s=18, alpha=0.85, zorder=3,
                                 marker="o")
            stopped = [(x, r) for x, r in ok if r.partial]
            if stopped:
                ax.scatter([x for x, _ in stopped], [r.value for _, r in stopped], s=40, facecolors="none",
                           edgecolors=PHASE_COLOURS[TrialPhase.EARLY_STOPPED], linewidths=0.8, zorder=4,
                           label="stopped / running")
        if bad:
            ax.scatter([x for x, _ in bad], [floor] * len(bad), marker="x", s=22,
                       color=PHASE_COLOURS[TrialPhase.FAILED], zorder=3, label="failed")
        top = [(x, r) for x, r in ok if r.name == best]
        if top:
            ax.scatter([top[0][0]], [top[0][1].value], marker="*", s=180, color="#d4a017", edgecolors="black",
                       linewidths=0.6, zorder=5, label="best")
        if ticks is not None:
            slanted = sum(map(len, ticks)) > 24
            ax.set_xticks(range(len(ticks)), ticks, rotation=30 if slanted else 0, ha="right" if slanted else "center",
                          fontsize=8)
            ax.set_xlim(-0.5, len(ticks) - 0.5)
        elif parameter.scale is Scale.LOG:
            ax.set_xscale("log")
        if parameter.min is not None and parameter.max is not None and ticks is None:
            if parameter.scale is Scale.LOG:
                ratio = (parameter.max / parameter.min) ** 0.03
                ax.set_xlim(parameter.min / ratio, parameter.max * ratio)
            else:
                pad = (parameter.max - parameter.min) * 0.03
                ax.set_xlim(parameter.min - pad, parameter.max + pad)
        ax.set_title(parameter.name, fontsize=10)
        ax.grid(alpha=0.3)
        if k % columns == 0:
            ax.set_ylabel(history.spec.objective.metric)
        if k == 0:
            _legend(ax)
    for k in range(len(parameters), lines * columns):
        axes[k // columns][k % columns].set_visible(False)
    axes[0][0].set_ylim(lo - (hi - lo) * 0.04, hi + (hi - lo) * 0.04)
    if scatter is not None:
        figure.colorbar(scatter, ax=axes, shrink=0.8, label="trial index", pad=0.01)
    figure.suptitle(f"{history.name}: objective against each parameter", fontsize=11)
    return _png(figure)


def importance_bars(history: History, importance: Importance | None) -> bytes | None:
    """Horizontal bars, most important on top."""
    if importance is None or not importance.values:
        return None
    plt = _pyplot()
    ranked = sorted(importance.values.items(), key=lambda kv: kv[1])
    figure, ax = plt.subplots(figsize=(6.5, 0.45 * len(ranked) + 1.2))
    ax.barh([k for k, _ in ranked], [v for _, v in ranked], color="#1f77b4")
    for y, (_, v) in enumerate(ranked):
        ax.text(v, y, f" {v:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, max(0.05, max(v for _, v in ranked)) * 1.18)
    ax.set_xlabel("share of the objective's variance (main effect)")
    ax.set_title(f"{history.name}: parameter importance ({importance.n_trials} trials)", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _png(figure)


def learning_curves(history: History) -> bytes | None:
    """The objective by step of every trial that reported progress, coloured by how it ended."""
    metric = history.spec.objective.metric
    drawn = [(t, [(s, v) for s, v in curves.values(t.status.curve, metric) if math.isfinite(v)])
             for t in history.trials]
    drawn = [(t, points) for t, points in drawn if points]
    if not drawn or all(len(points) < 2 for _, points in drawn):
        return None
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(8.5, 4.2))
    best = history.status.best_trial.name if history.status.best_trial else None
    seen: set[TrialPhase] = set()
    for trial, points in drawn:
        phase = trial.status.phase
        steps, values = zip(*points, strict=True)
        is_best = trial.metadata.name == best
        label = None
        if is_best:
            label = f"best: {best}"
        elif phase not in seen:
            label = LABELS[phase].split(" (")[0]
            seen.add(phase)
        ax.plot(steps, values, color="black" if is_best else PHASE_COLOURS[phase], linewidth=2.2 if is_best else 0.9,
                alpha=1.0 if is_best else 0.55, marker="o" if len(points) == 1 else None, markersize=3,
                label=label, zorder=5 if is_best else 2)
    ax.set_xlabel("step (epoch)")
    ax.set_ylabel(metric)
    ax.set_title(f"{history.name}: learning curves of {len(drawn)} trials", fontsize=10)
    ax.grid(alpha=0.3)
    _legend(ax)
    return _png(figure)


def pareto_front(history: History) -> bytes | None:
    """With several objectives: every Succeeded trial on the first two, the front drawn through its
    trials (a third objective is the colour)."""
    objective = history.spec.objective
    if not objective.several:
        return None
    names = objective.objective_metrics
    done = [t for t in history.trials if t.status.phase is TrialPhase.SUCCEEDED
            and objective.losses(t.status.metrics) is not None]
    if not done:
        return None
    plt = _pyplot()
    front = {p.name for p in history.status.pareto_front}
    figure, ax = plt.subplots(figsize=(7.5, 5.0))
    xs = [t.status.metrics[names[0]] for t in done]
    ys = [t.status.metrics[names[1]] for t in done]
    third = [t.status.metrics[names[2]] for t in done] if len(names) > 2 else None

    def paint(indexes: list[int], plain: str) -> dict[str, Any]:
        return {"c": [third[i] for i in indexes], "cmap": "viridis"} if third is not None else {"color": plain}

    on = [i for i, t in enumerate(done) if t.metadata.name in front]
    off = [i for i in range(len(done)) if i not in on]
    if off:
        ax.scatter([xs[i] for i in off], [ys[i] for i in off], s=22, alpha=0.6, zorder=2, label="dominated",
                   **paint(off, "#9e9e9e"))
    if on:
        points = sorted((xs[i], ys[i]) for i in on)  # on two objectives the front is monotone in the first
        ax.plot([p[0] for p in points], [p[1] for p in points], color="#d62728", linewidth=1.2, zorder=3)
        scatter = ax.scatter([xs[i] for i in on], [ys[i] for i in on], s=46, zorder=4, edgecolors="black",
                             linewidths=0.6, label=f"Pareto front: {history.status.pareto_size or len(on)}",
                             **paint(on, "#d62728"))
        if third is not None:
            figure.colorbar(scatter, ax=ax, label=f"{names[2]} ({objective.additional_objectives[1].goal.value})")
    for values, scale in ((xs, ax.set_xscale), (ys, ax.set_yscale)):
        if min(values) > 0 and max(values) / min(values) > 30:  # sizes, latencies: decades apart
            scale("log")
    ax.set_xlabel(f"{names[0]} ({objective.goal.value})")
    ax.set_ylabel(f"{names[1]} ({objective.additional_objectives[0].goal.value})")
    ax.set_title(f"{history.name}: the trade-off between {names[0]} and {names[1]}", fontsize=10)
    ax.grid(alpha=0.3)
    _legend(ax)
    return _png(figure)
