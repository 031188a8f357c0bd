"""Multi-objective benchmark: hypervolume reached by kubetune's suggesters against Optuna's.

    python -m bench.multiobjective --budget 16x8 --seeds 5 --problems zdt1,zdt2,dtlz2,digits-cost \\
        --optimizers bayes,tpe,random,sobol,optuna-nsga2,optuna-tpe,optuna-gp --jobs 2 \\
        --out bench/results/multiobjective.json
    python -m bench.multiobjective --report bench/results/multiobjective.json [more.json ...] [--doc]

Every objective is a loss (minimized). kubetune's suggesters are called as ``bench/peers.py`` calls
them for one objective, but each finished point is ``Observation(params, loss=f1, losses=(f2, ...))``;
Optuna gets ``create_study(directions=["minimize"] * m)``. Both follow the same batch protocol: ask
``q`` points (the unfinished ones pending), evaluate them, tell all ``q``.

Score: the hypervolume (HV) of the non-dominated set of every point a run evaluated, against a
fixed reference point ``r`` per problem, divided by the best known HV: the true front's (computed
numerically) where the front is known, else the best HV any reported run reached.

Notation: ``n`` points, ``m`` objectives; a set of points is an ``(n, m)`` array of losses.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402

from bench.common import optuna_ask, run_tasks  # noqa: E402
from kubetune.api import Parameter, Params  # noqa: E402

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
DOC = Path("docs/benchmarks.md")
HEADING = "## Several objectives"

# --- Pareto sets and hypervolume ---------------------------------------------------------------


def pareto_mask(points: FloatArray) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """``(n,)``: True where no other point of ``points`` ``(n, m)`` dominates (no worse everywhere,
    better somewhere). Equal points do not dominate each other: both are kept."""
    y = np.asarray(points, dtype=float)
    no_worse = np.all(y[:, None, :] <= y[None, :, :], axis=2)  # [j, i]: y_j ≤ y_i on every axis
    better = np.any(y[:, None, :] < y[None, :, :], axis=2)
    mask: np.ndarray[Any, np.dtype[np.bool_]] = ~np.any(no_worse & better, axis=0)
    return mask


def hypervolume(points: FloatArray | Sequence[Sequence[float]], reference: Sequence[float]) -> float:
    """Exact volume dominated by ``points`` ``(n, m)`` and bounded by ``reference`` ``(m,)``.

    Points not strictly better than the reference on every axis (and non-finite ones) add nothing.
    m = 2: sort by f1, running minimum of f2, sum the slabs (O(n log n)). m ≥ 3: slice along the last
    axis at each point's value and sum slab height × the (m − 1)-volume of the points below it.
    """
    ref = np.asarray(reference, dtype=float)
    y = np.asarray(points, dtype=float).reshape(-1, ref.size)
    y = y[np.all(np.isfinite(y), axis=1) & np.all(y < ref, axis=1)]
    return _hypervolume(y, ref) if len(y) else 0.0


def _hypervolume(y: FloatArray, ref: FloatArray) -> float:
    if ref.size == 1:
        return float(ref[0] - y[:, 0].min())
    if ref.size == 2:
        order = np.argsort(y[:, 0], kind="stable")
        widths = np.diff(np.append(y[order, 0], ref[0]))
        return float(np.sum(widths * (ref[1] - np.minimum.accumulate(y[order, 1]))))
    y = y[pareto_mask(y)]  # dominated points never change a slice: drop them once
    y = y[np.argsort(y[:, -1], kind="stable")]
    heights = np.diff(np.append(y[:, -1], ref[-1]))
    return float(sum(h * _hypervolume(y[: i + 1, :-1], ref[:-1]) for i, h in enumerate(heights) if h > 0))


# --- problems ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MultiProblem:
    """A search space, its ``m`` losses, the HV reference point and, when known, the true front."""

    name: str
    parameters: list[Parameter]
    losses: Callable[[Params], tuple[float, ...]]
    reference: tuple[float, ...]
    front_hypervolume: Callable[[Sequence[float]], float] | None = None  # the true front's, at a reference
    about: str = ""
    near_reference: tuple[float, ...] | None = None  # a tighter box, where only points near the front count


def _unit(names: Sequence[str]) -> list[Parameter]:
    return [Parameter(name=n, type="double", min=0.0, max=1.0) for n in names]


def _x(p: Params, d: int) -> FloatArray:
    return np.array([float(p[f"x{i}"]) for i in range(d)])


def zdt1(p: Params, d: int = 6) -> tuple[float, float]:
    x = _x(p, d)
    g = 1 + 9 * float(np.mean(x[1:]))
    return float(x[0]), g * (1 - math.sqrt(x[0] / g))


def zdt2(p: Params, d: int = 6) -> tuple[float, float]:
    x = _x(p, d)
    g = 1 + 9 * float(np.mean(x[1:]))
    return float(x[0]), g * (1 - (x[0] / g) ** 2)


def dtlz2(p: Params, d: int = 5) -> tuple[float, float, float]:
    """DTLZ2 with 3 objectives: x0, x1 place the point on the sphere, x2..x4 its distance g."""
    x = _x(p, d)
    r = 1 + float(np.sum((x[2:] - 0.5) ** 2))
    a, b = x[0] * math.pi / 2, x[1] * math.pi / 2
    return r * math.cos(a) * math.cos(b), r * math.cos(a) * math.sin(b), r * math.sin(a)


def zdt_front(shape: Callable[[FloatArray], FloatArray], n: int = 100_001) -> FloatArray:
    """``(n, 2)`` points of a ZDT front f2 = shape(f1), f1 evenly spaced over [0, 1]."""
    f1 = np.linspace(0.0, 1.0, n)
    return np.column_stack([f1, shape(f1)])


def dtlz2_front(n: int = 30) -> FloatArray:
    """``(n², 3)`` points of the unit sphere's positive octant (DTLZ2's front), an n × n angle grid."""
    grid = np.meshgrid(np.linspace(0, math.pi / 2, n), np.linspace(0, math.pi / 2, n))
    a, b = grid[0].ravel(), grid[1].ravel()
    return np.column_stack([np.cos(a) * np.cos(b), np.cos(a) * np.sin(b), np.sin(a)])


def dtlz2_front_hypervolume(reference: Sequence[float], n: int = 2000) -> float:
    """HV of the whole DTLZ2 front, by the midpoint rule over (f1, f2) ∈ [0, r1] × [0, r2].

    A point (f1, f2, f3) is dominated by the octant iff f3 ≥ √max(0, 1 − f1² − f2²), so the HV is the
    integral of r3 minus that height (1.331 − π/6 for r = 1.1). A finite sample of the front would
    fall short of it by about 1 % even with 3,600 points.
    """
    r1, r2, r3 = reference
    c1, c2 = (np.arange(n) + 0.5) * r1 / n, (np.arange(n) + 0.5) * r2 / n
    height = np.sqrt(np.maximum(0.0, 1 - c1[None, :] ** 2 - c2[:, None] ** 2))
    return float(np.sum(r3 - np.minimum(height, r3)) * (r1 / n) * (r2 / n))


#: 1.1 × the usual ranges f1 ∈ [0, 1], f2 ∈ [0, 10]. At (1.1, 1.1) nearly every point is outside the
#: box at this budget (f2 < 1.1 needs x1..x5 all within ~0.01 of 0): most runs would score exactly 0.
ZDT_REFERENCE = (1.1, 11.0)
DIGITS_TRAIN = 1000
MAX_TREES = 32
#: an upper bound on a forest's node count: MAX_TREES binary trees of at most DIGITS_TRAIN leaves
MAX_NODES = MAX_TREES * (2 * DIGITS_TRAIN - 1)


@cache
def _digits() -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    idx = np.random.default_rng(0).permutation(len(y))
    train, valid = idx[:DIGITS_TRAIN], idx[DIGITS_TRAIN:]
    return x[train], y[train], x[valid], y[valid]


def digits_cost(p: Params) -> tuple[float, float]:
    """(1 − validation accuracy, log10(nodes) / log10(MAX_NODES)) of a random forest on digits; one
    fixed split and ``random_state=0``, so both are deterministic."""
    from sklearn.ensemble import RandomForestClassifier

    xt, yt, xv, yv = _digits()
    model = RandomForestClassifier(n_estimators=int(p["n_trees"]), max_depth=int(p["max_depth"]),
                                   min_samples_leaf=int(p["min_leaf"]), max_features=float(p["max_features"]),
                                   criterion=str(p["criterion"]), random_state=0, n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(xt, yt)
        accuracy = float(model.score(xv, yv))
    nodes = sum(tree.tree_.node_count for tree in model.estimators_)
    return 1 - accuracy, math.log10(nodes) / math.log10(MAX_NODES)


PROBLEMS: dict[str, MultiProblem] = {
    p.name: p
    for p in [
        MultiProblem("zdt1", _unit([f"x{i}" for i in range(6)]), zdt1, ZDT_REFERENCE,
                     lambda r: hypervolume(zdt_front(lambda f: 1 - np.sqrt(f)), r),
                     "ZDT1, x ∈ [0, 1]⁶: f1 = x0, f2 = g (1 − √(f1/g)), g = 1 + 9 · mean(x1..x5); front (g = 1) "
                     "f2 = 1 − √f1 (convex); the reference is 1.1 × the usual ranges f1 ∈ [0, 1], f2 ∈ [0, 10] (at "
                     "(1.1, 1.1) most runs of this budget have no point inside the box: see the second table)",
                     (1.1, 1.1)),
        MultiProblem("zdt2", _unit([f"x{i}" for i in range(6)]), zdt2, ZDT_REFERENCE,
                     lambda r: hypervolume(zdt_front(lambda f: 1 - f**2), r),
                     "ZDT2, as ZDT1 with f2 = g (1 − (f1/g)²); front f2 = 1 − f1² (concave)", (1.1, 1.1)),
        MultiProblem("dtlz2", _unit([f"x{i}" for i in range(5)]), dtlz2, (1.1, 1.1, 1.1),
                     dtlz2_front_hypervolume,
                     "DTLZ2, x ∈ [0, 1]⁵, 3 objectives: (1 + g) times the point of the unit sphere at angles "
                     "x0 · π/2, x1 · π/2, g = Σ (x2..x4 − 0.5)²; front the sphere's positive octant"),
        MultiProblem("digits-cost", [
            Parameter(name="n_trees", type="int", min=1, max=MAX_TREES, scale="log"),
            Parameter(name="max_depth", type="int", min=1, max=12),
            Parameter(name="min_leaf", type="int", min=1, max=32, scale="log"),
            Parameter(name="max_features", type="double", min=0.05, max=1.0, scale="log"),
            Parameter(name="criterion", type="categorical", values=["gini", "entropy"])],
            digits_cost, (1.0, 1.1), None,
            "scikit-learn's `RandomForestClassifier` on the digits data (fixed split: 1,000 train, 797 "
            "validation; `random_state=0`, so both losses are deterministic) over n_trees 1–32 (log), max_depth "
            "1–12, min_leaf 1–32 (log), max_features 0.05–1 (log), criterion gini/entropy; losses 1 − validation "
            "accuracy and the model's size log10(nodes) / log10(32 · 1999) ∈ [0, 1] (1 would be 32 trees of "
            "1,000 leaves); the reference is accuracy 0 and 1.1 × the largest size; one evaluation ≤ 0.25 s"),
    ]
}


@cache
def front_hypervolume(name: str, reference: tuple[float, ...] | None = None) -> float | None:
    """The true front's HV at ``reference`` (the problem's own by default); None when the front is unknown."""
    compute = PROBLEMS[name].front_hypervolume
    return compute(reference or PROBLEMS[name].reference) if compute is not None else None


# --- optimizers --------------------------------------------------------------------------------


class KubetuneMulti:
    """A kubetune suggester, asked exactly as ``bench.peers.Kubetune`` asks it, told loss vectors."""

    def __init__(self, parameters: list[Parameter], seed: int, algorithm: str, **settings: Any) -> None:
        from bench.peers import Kubetune

        self.inner = Kubetune(parameters, seed, algorithm, **settings)

    def ask(self, n: int) -> list[Params]:
        return self.inner.ask(n)

    def tell(self, params: list[Params], values: list[tuple[float, ...]]) -> None:
        from kubetune.suggest.base import Observation

        k = self.inner
        keys = {k.space.key(p) for p in params}
        k.pending = [p for p in k.pending if k.space.key(p) not in keys]
        new = [Observation(p, v[0], tuple(v[1:])) if all(map(math.isfinite, v)) else Observation(p, None)
               for p, v in zip(params, values, strict=True)]
        k.observations = [*k.observations, *new]


class OptunaMulti:
    """Optuna, ``directions=["minimize"] * m``: "nsga2" (NSGAIISampler, its defaults: population 50),
    "tpe" (TPESampler multivariate with constant liar, MOTPE with several directions) or "gp" (GPSampler,
    log-EHVI)."""

    def __init__(self, parameters: list[Parameter], seed: int, sampler: str, m: int) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        samplers: dict[str, Callable[[], Any]] = {
            "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed),
            "tpe": lambda: optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True),
            "gp": lambda: optuna.samplers.GPSampler(seed=seed),
        }
        self.study = optuna.create_study(directions=["minimize"] * m, sampler=samplers[sampler]())
        self.parameters = parameters
        self.trials: dict[int, Any] = {}

    def ask(self, n: int) -> list[Params]:
        return optuna_ask(self.study, self.parameters, n, self.trials)

    def tell(self, params: list[Params], values: list[tuple[float, ...]]) -> None:
        import optuna

        for p, v in zip(params, values, strict=True):
            trial = self.trials.pop(id(p))
            if all(map(math.isfinite, v)):
                self.study.tell(trial, list(v))
            else:
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)


def make(name: str, problem: MultiProblem, seed: int) -> KubetuneMulti | OptunaMulti:
    """A kubetune suggester (settings after a colon, as in bench.peers) or optuna-nsga2/-tpe/-gp."""
    from bench.common import parse_algorithm

    base, settings = parse_algorithm(name)
    if base in ("bayes", "tpe", "random", "sobol"):
        return KubetuneMulti(problem.parameters, seed, base, **settings)
    if name in ("optuna-nsga2", "optuna-tpe", "optuna-gp"):
        return OptunaMulti(problem.parameters, seed, name.split("-", 1)[1], len(problem.reference))
    raise ValueError(f"unknown optimizer {name!r}")


# --- runs and report ---------------------------------------------------------------------------


def run_one(problem_name: str, optimizer: str, seed: int, rounds: int, batch: int) -> dict[str, Any]:
    problem = PROBLEMS[problem_name]
    opt = make(optimizer, problem, seed)
    values: list[tuple[float, ...]] = []
    trace: list[float] = []
    suggest_s = 0.0
    for _ in range(rounds):
        t0 = time.perf_counter()
        params = opt.ask(batch)
        suggest_s += time.perf_counter() - t0
        new = [tuple(float(v) for v in problem.losses(p)) for p in params]
        opt.tell(params, new)
        values.extend(new)
        trace.append(hypervolume(values, problem.reference))
    return {"problem": problem_name, "optimizer": optimizer, "seed": seed, "rounds": rounds, "batch": batch,
            "reference": list(problem.reference), "values": [list(v) for v in values], "hypervolume": trace[-1],
            "hv_trace": trace, "suggest_s": suggest_s}


def best_known(results: list[dict[str, Any]]) -> dict[str, tuple[float, str]]:
    """Per problem: the HV that scores 1, and where it comes from."""
    out: dict[str, tuple[float, str]] = {}
    for name in sorted({r["problem"] for r in results}):
        front = front_hypervolume(name)
        found = max(r["hypervolume"] for r in results if r["problem"] == name)
        out[name] = (front, "true front") if front is not None and front >= found else (found, "best run")
    return out


def scores(results: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """problem → optimizer → {mean, worst (score), hv (mean raw HV), seeds, s_per_batch} and, at the
    problem's ``near_reference``, {near_mean, near_worst}."""
    best = best_known(results)
    cells: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        cells[r["problem"]][r["optimizer"]].append(r)
    out: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    for name, by_opt in cells.items():
        for opt, runs in by_opt.items():
            s = np.array([r["hypervolume"] for r in runs]) / best[name][0]
            out[name][opt] = {"mean": float(s.mean()), "worst": float(s.min()), "seeds": len(runs),
                              "hv": float(np.mean([r["hypervolume"] for r in runs])),
                              "s_per_batch": float(np.mean([r["suggest_s"] / r["rounds"] for r in runs]))}
            near = PROBLEMS[name].near_reference
            if near is not None:
                v = np.array([hypervolume(r["values"], near) for r in runs]) / (front_hypervolume(name, near) or 1.0)
                out[name][opt] |= {"near_mean": float(v.mean()), "near_worst": float(v.min())}
    return out


ORDER = ["bayes", "tpe", "random", "sobol", "optuna-nsga2", "optuna-tpe", "optuna-gp"]


def _ordered(names: set[str]) -> list[str]:
    return sorted(names, key=lambda o: (ORDER.index(o) if o in ORDER else len(ORDER), o))


def report(results: list[dict[str, Any]], single_objective: Sequence[str] = ()) -> str:
    """Markdown: mean score (worst seed) per problem × optimizer, seconds per batch, a summary."""
    table = scores(results)
    best = best_known(results)
    opts = _ordered({r["optimizer"] for r in results})
    label = {o: f"{o}*" if o in single_objective else o for o in opts}
    budgets = sorted({f"{r['rounds']}×{r['batch']}" for r in results})
    head = ["| problem | {} | " + " | ".join(label[o] for o in opts) + " |", "|" + "---|" * (len(opts) + 2)]

    def row(name: str, second: str, key: str) -> str:
        cells = [f"{table[name][o][key]:.3f} ({table[name][o][key.replace('mean', 'worst')]:.3f})"
                 if o in table[name] else "" for o in opts]
        return f"| {name} | {second} | " + " | ".join(cells) + " |"

    lines = [f"Budget {', '.join(budgets)}. Cells: mean HV / HV_best over seeds (worst seed).", "",
             head[0].format("seeds"), head[1]]
    for name in sorted(table):
        lines.append(row(name, "/".join(map(str, sorted({int(c["seeds"]) for c in table[name].values()}))), "mean"))
    mean = {o: np.mean([table[p][o]["mean"] for p in table if o in table[p]]) for o in opts}
    lines.append("| **mean** | | " + " | ".join(f"**{mean[o]:.3f}**" for o in opts) + " |")
    near = [p for p in sorted(table) if PROBLEMS[p].near_reference is not None]
    if near:
        lines += ["", "Near the front: the same runs against a tighter reference point (HV / the front's HV there):",
                  "", head[0].format("reference"), head[1]]
        lines += [row(p, f"({', '.join(f'{v:g}' for v in PROBLEMS[p].near_reference or ())})", "near_mean")
                  for p in near]
    lines += ["", "Suggest seconds per batch (wall, mean over seeds):", "",
              "| problem | " + " | ".join(label[o] for o in opts) + " |", "|" + "---|" * (len(opts) + 1)]
    for name in sorted(table):
        lines.append(f"| {name} | " + " | ".join(
            f"{table[name][o]['s_per_batch']:.2f}" if o in table[name] else "" for o in opts) + " |")
    lines += ["", "| problem | reference point | HV_best | from | mean HV of random |", "|---|---|---|---|---|"]
    for name in sorted(table):
        ref = ", ".join(f"{v:g}" for v in PROBLEMS[name].reference)
        rand = f"{table[name]['random']['hv']:.4f}" if "random" in table[name] else ""
        lines.append(f"| {name} | ({ref}) | {best[name][0]:.4f} | {best[name][1]} | {rand} |")
    ranked = sorted(opts, key=lambda o: -mean[o])
    winners = ", ".join(f"{p}: {max(table[p], key=lambda o: table[p][o]['mean'])}" for p in sorted(table))
    lines += ["", "Mean score over the problems, best first: "
              + ", ".join(f"{label[o]} {mean[o]:.3f}" for o in ranked) + f". Best mean per problem: {winners}."]
    if single_objective:
        lines += ["", "\\* " + ", ".join(single_objective) + ": before multi-objective support, they optimise "
                  "the first objective only (the other losses are passed and ignored)."]
    return "\n".join(lines)


def doc_section(results: list[dict[str, Any]], single_objective: Sequence[str], note: str) -> str:
    problems = "\n".join(f"- `{p.name}`, reference point ({', '.join(f'{v:g}' for v in p.reference)}): {p.about}."
                         for p in PROBLEMS.values() if p.name in {r['problem'] for r in results})
    return (f"{HEADING}\n\n{PREAMBLE}\n\n**Problems** (every objective minimized):\n\n{problems}\n\n"
            f"{report(results, single_objective)}\n\n{note + chr(10) + chr(10) if note else ''}"
            "Rerun: `.venv/bin/python -m bench.multiobjective --budget 16x8 --seeds 5 --jobs 2` (all seven "
            "optimizers; `--optimizers bayes,tpe --out NEW` for kubetune's alone; needs `optuna`, from "
            "`make bench-setup`), then `--report OLD NEW --doc [--single-objective NAMES] [--note TEXT]` (a later "
            "file's runs replace the earlier file's runs of the same problem, optimizer and seed).\n")


PREAMBLE = (
    "Hypervolume reached by kubetune's suggesters against Optuna 5.0.0's multi-objective samplers "
    "(`NSGAIISampler` with its default population of 50, `TPESampler(multivariate=True, constant_liar=True)`, "
    "which is MOTPE with several directions, and `GPSampler`, log-EHVI), by `bench/multiobjective.py`. "
    "Every optimizer gets the same batch protocol (ask 8, evaluate, tell the 8; kubetune sees the unfinished "
    "ones as pending, Optuna as running trials); kubetune's suggesters are told "
    "`Observation(params, loss=f1, losses=(f2, …))`. Score: the exact hypervolume of the non-dominated set of "
    "all the points a run evaluated, against the problem's fixed reference point, divided by HV_best: the "
    "true front's hypervolume (numerically: the exact HV of 100,001 evenly spaced front points for ZDT, "
    "the midpoint rule on a 2,000 × 2,000 grid over the front's height map for DTLZ2, within 1e-5 of the "
    "closed forms 1.1 · 11 − 1/3, 1.1 · 11 − 2/3 and 1.1³ − π/6) or, for `digits-cost`, the best "
    "hypervolume any run reached. 1 is the front itself.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", default="16x8", help="ROUNDSxBATCH")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--problems", default="zdt1,zdt2,dtlz2,digits-cost")
    parser.add_argument("--optimizers", default=",".join(ORDER))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench/results/multiobjective.json"))
    parser.add_argument("--report", type=Path, nargs="*", help="only report these result files")
    parser.add_argument("--doc", action="store_true", help=f"with --report: write '{HEADING}' into {DOC}")
    parser.add_argument("--single-objective", default="",
                        help="with --report: optimizers to label as optimising the first objective only")
    parser.add_argument("--note", default="", help="with --doc: a paragraph after the tables (machine, reading)")
    args = parser.parse_args(argv)
    single = [o for o in args.single_objective.split(",") if o]

    if args.report:
        from bench.optimizers import common_seeds

        # a later file's run replaces an earlier one of the same problem, optimizer, seed and budget
        runs = {(r["problem"], r["optimizer"], r["seed"], r["rounds"], r["batch"]): r
                for f in args.report for r in json.loads(f.read_text())}
        results = common_seeds(list(runs.values()))
        text = report(results, single)
        print(text)
        if args.doc:
            from bench.common import replace_section

            replace_section(DOC, HEADING, doc_section(results, single, args.note))
        return 0
    rounds, batch = (int(v) for v in args.budget.lower().split("x"))
    tasks = [(p, o, s, rounds, batch) for s in range(args.first_seed, args.first_seed + args.seeds)
             for p in args.problems.split(",") for o in args.optimizers.split(",")]
    results = run_tasks(run_one, tasks, args.jobs, args.out,
                        lambda r: f"hv={r['hypervolume']:.4f} {r['suggest_s']:.1f}s")
    print(report(results, single))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
