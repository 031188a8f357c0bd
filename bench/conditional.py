"""Conditional parameters (``when``): choosing a model and its own hyperparameters at once.

    python -m bench.conditional --seeds 10 --budget 10x3 \\
        --optimizers bayes,tpe,random,sobol,optuna-tpe-group,optuna-tpe,optuna-random \\
        --jobs 1 --out bench/results/conditional.json
    python -m bench.conditional --report bench/results/conditional.json --doc

Two problems whose space is a categorical ``model`` and parameters active only for one of its values:

* ``digits-models``: ``model`` ∈ {svm, forest, mlp} on a fixed 600-image subsample of scikit-learn's
  digits (standardized); loss = 1 − accuracy of 3-fold stratified CV (fixed folds, fixed model
  seeds, ``n_jobs=1``, so a configuration always gets the same loss).
* ``branches``: a synthetic function with a known optimum 0: a shifted quadratic (minimum 1), Branin
  rescaled to minimum 0 (its values spread from 0 to ~20, median ~2.3, so on average it looks no
  better than the quadratic) and a nearly constant poor branch (minimum 2.4).

Every optimizer gets ``rounds × batch`` evaluations, ``batch`` at a time (ask ``batch``, evaluate
them, tell them). kubetune's suggesters see the ``when`` space and return full assignments; as the
operator does, what is evaluated is the *projected* assignment (inactive parameters dropped), and
what is handed back is that assignment passed through ``Space.validate`` (inactive parameters get
their fixed filler), as ``suggester_view`` does for stored trials. Optuna is run define-by-run: it
suggests ``model`` first and then only the active parameters, so it sees the same projected trials.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402

from bench.common import optuna_suggest  # noqa: E402
from kubetune.api import Parameter, Params  # noqa: E402
from kubetune.space import Space  # noqa: E402
from kubetune.suggest import get_suggester  # noqa: E402
from kubetune.suggest.base import Observation, SuggestRequest  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
SECTION = "## Conditional parameters"
KUBETUNE = ("bayes", "tpe", "random", "sobol")
OPTUNA = ("optuna-tpe-group", "optuna-tpe", "optuna-random")
DEFAULT_OPTIMIZERS = ",".join([*KUBETUNE, *OPTUNA])


@dataclass(frozen=True)
class Problem:
    name: str
    parameters: list[Parameter]  # parents before the parameters whose ``when`` names them
    loss: Callable[[Params], float]  # of a projected assignment (only active parameters)
    optimum: float | None = None

    @property
    def branches(self) -> list[str]:
        return list(self.parameters[0].values or [])


def _p(name: str, kind: str, lo: float | None = None, hi: float | None = None, *, scale: str = "linear",
       values: list[str] | None = None, when: str | None = None) -> Parameter:
    return Parameter.model_validate({"name": name, "type": kind, "min": lo, "max": hi, "scale": scale,
                                     "values": values, "when": {"model": [when]} if when else None})


# --- the synthetic problem ------------------------------------------------------------------------

BRANIN_MIN = 0.397887357729739


def _branin(x1: float, x2: float) -> float:
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def branches(p: Params) -> float:
    """Three branches: ``quad`` (minimum 1 at (0.7, 0.2)), ``branin`` (Branin − its minimum, over 15:
    minimum 0 at its three optima) and ``flat`` (2.5 and a small dip: minimum 2.4 at c = 0.01, n = 20)."""
    model = str(p["model"])
    if model == "quad":
        return 1.0 + 4.0 * ((float(p["qx"]) - 0.7) ** 2 + (float(p["qy"]) - 0.2) ** 2)
    if model == "branin":
        return (_branin(float(p["bx1"]), float(p["bx2"])) - BRANIN_MIN) / 15.0
    if model == "flat":
        return 2.5 - 0.1 * math.exp(-((math.log10(float(p["fc"])) + 2.0) ** 2)) + 0.002 * abs(int(p["fn"]) - 20)
    raise ValueError(f"unknown branch {model!r}")


BRANCHES = Problem("branches", [
    _p("model", "categorical", values=["quad", "branin", "flat"]),
    _p("qx", "double", 0, 1, when="quad"), _p("qy", "double", 0, 1, when="quad"),
    _p("bx1", "double", -5, 10, when="branin"), _p("bx2", "double", 0, 15, when="branin"),
    _p("fc", "double", 1e-3, 1, scale="log", when="flat"), _p("fn", "int", 1, 50, when="flat"),
], branches, 0.0)


# --- the model-choice task ------------------------------------------------------------------------


@cache
def _digits() -> tuple[Any, Any, Any]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    x, y = load_digits(return_X_y=True)
    idx = np.random.default_rng(0).permutation(len(y))[:600]
    folds = list(StratifiedKFold(n_splits=3, shuffle=True, random_state=0).split(x[idx], y[idx]))
    return StandardScaler().fit_transform(x[idx]), y[idx], folds


def digits_models(p: Params) -> float:
    """1 − 3-fold CV accuracy of the chosen model on 600 digits (< 1 s on one core)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import cross_val_score
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC

    model = str(p["model"])
    if model == "svm":
        estimator: Any = SVC(C=float(p["C"]), gamma=float(p["gamma"]))
    elif model == "forest":
        estimator = RandomForestClassifier(n_estimators=int(p["n_estimators"]), max_depth=int(p["max_depth"]),
                                           random_state=0, n_jobs=1)
    elif model == "mlp":
        estimator = MLPClassifier(hidden_layer_sizes=(int(p["hidden"]),), alpha=float(p["alpha"]),
                                  learning_rate_init=0.01, max_iter=40, random_state=0)
    else:
        raise ValueError(f"unknown model {model!r}")
    x, y, folds = _digits()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the MLP's ConvergenceWarning at max_iter=40
        return 1.0 - float(np.mean(cross_val_score(estimator, x, y, cv=folds, n_jobs=1)))


DIGITS = Problem("digits-models", [
    _p("model", "categorical", values=["svm", "forest", "mlp"]),
    _p("C", "double", 1e-2, 1e3, scale="log", when="svm"), _p("gamma", "double", 1e-5, 1, scale="log", when="svm"),
    _p("n_estimators", "int", 5, 60, scale="log", when="forest"), _p("max_depth", "int", 2, 30, when="forest"),
    _p("alpha", "double", 1e-5, 10, scale="log", when="mlp"), _p("hidden", "int", 4, 128, scale="log", when="mlp"),
], digits_models)

PROBLEMS = {p.name: p for p in (BRANCHES, DIGITS)}


# --- optimizers: ask full or projected assignments, told projected ones ---------------------------


class Optimizer(Protocol):
    def ask(self, n: int) -> list[Params]: ...

    def tell(self, params: list[Params], losses: list[float]) -> None: ...


class KubetuneAdapter:
    """A kubetune suggester as the operator drives it on a ``when`` space: pending and observed trials are
    the projected assignments, validated back to full vectors (the filler where inactive)."""

    def __init__(self, parameters: list[Parameter], seed: int, algorithm: str) -> None:
        self.space = Space(parameters)
        self.suggester = get_suggester(algorithm)
        self.suggester.check_settings({}, self.space)
        self.seed = seed
        self.observations: list[Observation] = []
        self.pending: list[Params] = []
        self.state: dict[str, Any] = {}
        self.index = 0

    def _stored(self, params: Params) -> Params:
        return self.space.validate(self.space.project(params))

    def ask(self, n: int) -> list[Params]:
        request = SuggestRequest(space=self.space, observations=self.observations, pending=self.pending, n=n,
                                 seed=self.seed, start_index=self.index, state=self.state)
        suggestion = self.suggester.suggest(request)
        self.state = suggestion.state
        self.index += len(suggestion.params)
        self.pending = [*self.pending, *(self._stored(p) for p in suggestion.params)]
        return suggestion.params

    def tell(self, params: list[Params], losses: list[float]) -> None:
        stored = [self._stored(p) for p in params]
        keys = {self.space.key(p) for p in stored}
        self.pending = [p for p in self.pending if self.space.key(p) not in keys]
        self.observations = [*self.observations, *(Observation(p, v if math.isfinite(v) else None)
                                                   for p, v in zip(stored, losses, strict=True))]


class OptunaAdapter:
    """Optuna define-by-run: ``model`` first, then only the parameters it makes active. ``sampler``:
    "tpe-group" (``TPESampler(multivariate=True, group=True)``), "tpe" (``TPESampler()``; in Optuna 5
    multivariate over the parameters every trial has, i.e. ``model``; the rest independent) or
    "random". Optuna 5's TPE default of ``constant_liar=True`` is kept: the batch's running trials
    count as bad."""

    def __init__(self, parameters: list[Parameter], seed: int, sampler: str) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        samplers: dict[str, Callable[[], Any]] = {
            "tpe-group": lambda: optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True),
            "tpe": lambda: optuna.samplers.TPESampler(seed=seed),
            "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        }
        self.study = optuna.create_study(sampler=samplers[sampler]())
        self.space = Space(parameters)
        self.parameters = parameters
        self.running: list[Any] = []  # asked trials, in order

    def ask(self, n: int) -> list[Params]:
        out = []
        for _ in range(n):
            trial = self.study.ask()
            params: Params = {}
            for p in self.parameters:  # parents come first, so `active` of the partial assignment is final for p
                if p.name in self.space.active(params):
                    params[p.name] = optuna_suggest(trial, p)
            self.running.append(trial)
            out.append(params)
        return out

    def tell(self, params: list[Params], losses: list[float]) -> None:
        import optuna

        for _, v in zip(params, losses, strict=True):
            trial = self.running.pop(0)
            if math.isfinite(v):
                self.study.tell(trial, v)
            else:
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)


def make(name: str, parameters: list[Parameter], seed: int) -> Optimizer:
    if name in KUBETUNE:
        return KubetuneAdapter(parameters, seed, name)
    if name in OPTUNA:
        return OptunaAdapter(parameters, seed, name.removeprefix("optuna-"))
    raise ValueError(f"unknown optimizer {name!r} (have: {DEFAULT_OPTIMIZERS})")


# --- the harness ----------------------------------------------------------------------------------


def run(problem: Problem, optimizer: Optimizer, rounds: int, batch: int) -> dict[str, Any]:
    """``rounds`` × (ask ``batch``, evaluate their projections, tell the projections)."""
    space = Space(problem.parameters)
    evaluated: list[Params] = []
    losses: list[float] = []
    suggest_s = 0.0
    for _ in range(rounds):
        t0 = time.perf_counter()
        asked = optimizer.ask(batch)
        suggest_s += time.perf_counter() - t0
        projected = [space.project(space.validate(p)) for p in asked]
        for p in projected:  # what a trial gets: exactly its active parameters
            assert set(p) == space.active(p), p
        values = [float(problem.loss(p)) for p in projected]
        optimizer.tell(projected, values)
        evaluated += projected
        losses += values
    return {"problem": problem.name, "rounds": rounds, "batch": batch, "losses": losses,
            "branches": [str(p[problem.parameters[0].name]) for p in evaluated], "params": evaluated,
            "suggest_s": suggest_s}


def run_one(problem_name: str, optimizer: str, seed: int, rounds: int, batch: int) -> dict[str, Any]:
    problem = PROBLEMS[problem_name]
    record = run(problem, make(optimizer, problem.parameters, seed), rounds, batch)
    return {**record, "optimizer": optimizer, "seed": seed}


# --- the report -----------------------------------------------------------------------------------


def _best_after(losses: list[float], k: int) -> float:
    finite = [v for v in losses[:k] if math.isfinite(v)]
    return min(finite) if finite else math.inf


def report(results: list[dict[str, Any]]) -> str:
    """One table: per problem × optimizer, best loss after 1/3, 2/3 and all of the budget (mean over seeds;
    the worst seed at the end), where the evaluations went, where the final best was found, and the
    seconds per ``ask``; then each kubetune suggester against ``optuna-tpe-group``, seed by seed."""
    order = {o: i for i, o in enumerate([*KUBETUNE, *OPTUNA])}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        groups[(r["problem"], r["optimizer"])].append(r)
    lines = []
    for name in sorted({r["problem"] for r in results}):
        problem = PROBLEMS[name]
        sample = next(r for r in results if r["problem"] == name)
        budget = len(sample["losses"])
        thirds = [round(budget / 3), round(2 * budget / 3), budget]
        branch_names = "/".join(problem.branches)
        optimum = f", optimum {problem.optimum:g}" if problem.optimum is not None else ""
        lines += [f"**{name}** ({budget} evaluations in batches of {sample['batch']}{optimum}):", "",
                  f"| optimizer | seeds | best @{thirds[0]} | best @{thirds[1]} | best @{budget} | worst @{budget} "
                  f"| evaluations {branch_names} | final best in {branch_names} | s per ask |",
                  "|---|---:|---:|---:|---:|---:|---|---|---:|"]
        for optimizer in sorted({o for p, o in groups if p == name}, key=lambda o: order.get(o, 99)):
            runs = groups[(name, optimizer)]
            at = [[_best_after(r["losses"], k) for r in runs] for k in thirds]
            shares = defaultdict(int)
            won = defaultdict(int)
            for r in runs:
                for b in r["branches"]:
                    shares[b] += 1
                won[r["branches"][int(np.argmin(r["losses"]))]] += 1
            total = sum(shares.values())
            share = "/".join(f"{100 * shares[b] / total:.0f}" for b in problem.branches) + " %"
            ask_s = float(np.mean([r["suggest_s"] / r["rounds"] for r in runs]))
            lines.append(f"| {optimizer} | {len(runs)} | {np.mean(at[0]):.4f} | {np.mean(at[1]):.4f} "
                         f"| **{np.mean(at[2]):.4f}** | {np.max(at[2]):.4f} | {share} "
                         f"| {'/'.join(str(won[b]) for b in problem.branches)} | {ask_s:.3f} |")
        lines.append("")
        reference = {r["seed"]: _best_after(r["losses"], budget) for r in groups.get((name, "optuna-tpe-group"), [])}
        versus = []
        for optimizer in KUBETUNE:
            mine = {r["seed"]: _best_after(r["losses"], budget) for r in groups.get((name, optimizer), [])}
            seeds = sorted(set(mine) & set(reference))
            if seeds:
                w = sum(mine[s] < reference[s] - 1e-12 for s in seeds)
                lo = sum(mine[s] > reference[s] + 1e-12 for s in seeds)
                versus.append(f"{optimizer} {w}/{len(seeds) - w - lo}/{lo}")
        if versus:
            lines += [f"Against optuna-tpe-group, final best loss per seed (wins/ties/losses): {', '.join(versus)}.",
                      ""]
    return "\n".join(lines).rstrip("\n")


def doc_section(results: list[dict[str, Any]], notes: str = "") -> str:
    import optuna
    import sklearn

    seeds = sorted({r["seed"] for r in results})
    sample = results[0]
    return "\n".join([
        SECTION, "",
        f"Choosing a model and its hyperparameters in one search space (`when`), by `bench/conditional.py`, "
        f"{time.strftime('%Y-%m-%d')}: Optuna {optuna.__version__}, scikit-learn {sklearn.__version__}, "
        f"2 shared CPUs, BLAS threads pinned to 1; {len(seeds)} seeds ({seeds[0]}–{seeds[-1]}), "
        f"{sample['rounds']} rounds × {sample['batch']} (ask {sample['batch']}, evaluate, tell {sample['batch']}). "
        "kubetune's suggesters get the `when` space and return full assignments; the harness evaluates the "
        "projected assignment (inactive parameters dropped, as a trial gets them) and hands it back through "
        "`Space.validate` (inactive parameters filled with a fixed value), as the operator's `suggester_view` does. "
        "Optuna runs define-by-run: `model` first, then only that model's parameters. `optuna-tpe-group` is "
        "`TPESampler(multivariate=True, group=True)`, `optuna-tpe` is `TPESampler()` (in Optuna 5 multivariate "
        "over the parameters all trials share, that is `model`, the rest independent), both with Optuna's "
        "default constant liar; `optuna-random` is `RandomSampler`.", "",
        "* `digits-models`: `model` ∈ {svm (C, gamma, log), forest (n_estimators log 5–60, max_depth 2–30), "
        "mlp (alpha log, hidden log 4–128, 40 iterations)}; loss = 1 − 3-fold stratified CV accuracy on a fixed "
        "600-image subsample of scikit-learn's digits (fixed folds and model seeds: deterministic), 0.1–1 s an "
        "evaluation on one core.",
        "* `branches`: `model` ∈ {quad (a shifted quadratic in 2 doubles, minimum 1), branin (Branin rescaled to "
        "minimum 0; median of a random point 2.3), flat (2.5 with a small dip: minimum 2.4)}; optimum 0.", "",
        "*best @k*: best loss after the first k evaluations, mean over seeds; *worst*: the worst seed's final best; "
        "*evaluations*: share of all evaluations per branch; *final best in*: seeds whose final best came from "
        "each branch; *s per ask*: wall time of one batch's `ask`.", "",
        report(results), "",
        *([notes, ""] if notes else []),
        "Rerun: `.venv/bin/python -m bench.conditional --seeds 10 --budget 10x3 --jobs 1 "
        "--out bench/results/conditional.json`, then `--report bench/results/conditional.json --doc` "
        "(needs `optuna`, from `make bench-setup`; 140 runs, about 9 minutes on 2 shared cores).", "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", default="10x3", help="ROUNDSxBATCH")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--problems", default="branches,digits-models")
    parser.add_argument("--optimizers", default=DEFAULT_OPTIMIZERS)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("bench/results/conditional.json"))
    parser.add_argument("--resume", action="store_true", help="keep the runs already in --out, run the rest")
    parser.add_argument("--report", type=Path, help="only report this result file")
    parser.add_argument("--doc", action="store_true", help=f"with --report: write the section {SECTION!r} of {DOC}")
    parser.add_argument("--notes", default="", help="with --doc: a paragraph put under the tables")
    args = parser.parse_args(argv)

    if args.report:
        results = json.loads(args.report.read_text())
        if args.doc:
            from bench.common import replace_section

            replace_section(DOC, SECTION, doc_section(results, args.notes))
        print(report(results))
        return 0
    rounds, batch = (int(v) for v in args.budget.lower().split("x"))
    results: list[dict[str, Any]] = json.loads(args.out.read_text()) if args.resume and args.out.exists() else []
    done = {(r["problem"], r["optimizer"], r["seed"]) for r in results}
    tasks = [(p, o, s, rounds, batch) for s in range(args.first_seed, args.first_seed + args.seeds)
             for p in args.problems.split(",") for o in args.optimizers.split(",") if (p, o, s) not in done]
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def keep(i: int, r: dict[str, Any]) -> None:
        results.append(r)
        print(f"[{i + 1}/{len(tasks)}] {r['problem']} {r['optimizer']} seed={r['seed']} best={min(r['losses']):.4g} "
              f"ask={r['suggest_s']:.1f}s", file=sys.stderr, flush=True)
        args.out.write_text(json.dumps(results))

    if args.jobs <= 1:
        for i, t in enumerate(tasks):
            keep(i, run_one(*t))
    else:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = [pool.submit(run_one, *t) for t in tasks]
            for i, future in enumerate(as_completed(futures)):
                keep(i, future.result())
    print(report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
