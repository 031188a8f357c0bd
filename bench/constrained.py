"""Metric-constraint benchmark: best feasible loss reached by kubetune's suggesters against Optuna's.

    python -m bench.constrained --budget 16x8 --seeds 5 --problems gramacy,branin-c,hartmann6-c,digits-size \\
        --optimizers bayes,tpe,random,optuna-gp,optuna-tpe --jobs 2 --out bench/results/constrained.json
    python -m bench.constrained --report bench/results/constrained.json [more.json ...] [--doc]

Every problem is a loss to minimize and ``k`` constrained metrics with bounds ``(lo, hi)`` (None: that
side unbounded), as ``spec.objective.constraints`` gives them. kubetune's suggesters are driven as
``bench/peers.py`` drives them (ask ``q`` with the unfinished ones pending, evaluate, tell all ``q``),
each finished point an ``Observation(params, loss, constraints=(c_1, ..., c_k))`` and every request
carrying ``constraints=bounds``. Optuna gets each trial's constraints by ``Trial.set_constraint`` before
``study.tell``: Optuna's convention, a value ≤ 0 is feasible, so a bound ``c ≤ hi`` becomes ``c − hi``
and ``c ≥ lo`` becomes ``lo − c``.

Score per run: its best feasible loss ``f`` (inf when it found no feasible point). Per problem,
normalized loss = (f − f*)/(f_rand − f*) with f* the known constrained optimum (or the best feasible
loss any run found) and f_rand random search's median ``f``; score = 100 × (1 − normalized loss),
so 100 = the optimum and random ≈ 0. A run with no feasible point scores the lowest of 0 and every
feasible run's score on that problem: never better than random's median or than any run that found
something.
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

from bench.common import run_tasks  # noqa: E402
from bench.peers import Kubetune  # noqa: E402
from bench.problems import _double, _int, branin, hartmann6  # noqa: E402
from kubetune.api import Parameter, Params  # noqa: E402
from kubetune.suggest.base import Observation, SuggestRequest  # noqa: E402

DOC = Path("docs/benchmarks.md")
HEADING = "## Constraints"
Bounds = tuple[tuple[float | None, float | None], ...]


@dataclass(frozen=True)
class ConstrainedProblem:
    name: str
    parameters: list[Parameter]
    loss: Callable[[Params], float]
    constraints: Callable[[Params], tuple[float, ...]]  # the constrained metrics' values, in ``bounds`` order
    bounds: Bounds
    optimum: float | None = None  # known constrained minimum
    optimum_at: Params | None = None  # where it is (checked by the unit tests)
    source: str = ""


def is_feasible(values: Sequence[float | None], bounds: Bounds) -> bool:
    """Whether every value keeps its bound (a missing or NaN value never does), as ``SuggestRequest.feasible``."""
    return all(v is not None and (lo is None or v >= lo) and (hi is None or v <= hi)
               for v, (lo, hi) in zip(values, bounds, strict=True))


# --- problems -----------------------------------------------------------------------------------


def gramacy_loss(p: Params) -> float:
    return float(p["x1"]) + float(p["x2"])


def gramacy_constraints(p: Params) -> tuple[float, ...]:
    x1, x2 = float(p["x1"]), float(p["x2"])
    return (1.5 - x1 - 2 * x2 - 0.5 * math.sin(2 * math.pi * (x1**2 - 2 * x2)), x1**2 + x2**2 - 1.5)


def branin_disk(p: Params) -> tuple[float, ...]:
    return ((float(p["x1"]) - 2.5) ** 2 + (float(p["x2"]) - 7.5) ** 2,)


def l1_norm(p: Params) -> tuple[float, ...]:
    return (sum(float(p[f"x{i}"]) for i in range(6)),)


@cache
def _digits() -> tuple[Any, Any, Any, Any]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))  # fixed split: 1,000 to fit, 797 to validate
    return x[order[:1000]], y[order[:1000]], x[order[1000:]], y[order[1000:]]


def digits_forest(p: Params) -> float:
    """−validation accuracy of a random forest on digits (fixed split and ``random_state``: deterministic)."""
    from sklearn.ensemble import RandomForestClassifier

    x, y, x_val, y_val = _digits()
    model = RandomForestClassifier(n_estimators=int(p["trees"]), max_depth=int(p["depth"]),
                                   max_features=float(p["max_features"]), min_samples_leaf=int(p["min_leaf"]),
                                   random_state=0, n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return -float(model.fit(x, y).score(x_val, y_val))


def forest_size(p: Params) -> tuple[float, ...]:
    return (float(int(p["trees"]) * int(p["depth"])),)


#: A forest of at most this many trees × levels (e.g. 6 trees of depth 10).
SIZE_BUDGET = 60.0

PROBLEMS: dict[str, ConstrainedProblem] = {
    p.name: p
    for p in [
        ConstrainedProblem(
            "gramacy", [_double("x1", 0, 1), _double("x2", 0, 1)], gramacy_loss, gramacy_constraints,
            ((None, 0.0), (None, 0.0)), 0.599788, {"x1": 0.195123, "x2": 0.404665},
            "Gramacy et al. 2016, *Modeling an augmented Lagrangian for blackbox constrained optimization* "
            "(Technometrics): x1 + x2 s.t. 1.5 − x1 − 2x2 − 0.5 sin(2π(x1² − 2x2)) ≤ 0, x1² + x2² ≤ 1.5, [0, 1]²"),
        ConstrainedProblem(
            "branin-c", [_double("x1", -5, 10), _double("x2", 0, 15)], branin, branin_disk, ((None, 50.0),),
            0.397887, {"x1": math.pi, "x2": 2.275},
            "Branin s.t. (x1 − 2.5)² + (x2 − 7.5)² ≤ 50, the disk constraint of Gelbart, Snoek & Adams 2014, "
            "*Bayesian optimization with unknown constraints* (UAI): it keeps one of Branin's three minima"),
        ConstrainedProblem(
            "hartmann6-c", [_double(f"x{i}", 0, 1) for i in range(6)], hartmann6, l1_norm, ((None, 2.0),),
            -3.307536, {f"x{i}": v for i, v in enumerate([0.186480, 0.131388, 0.456224, 0.269105, 0.307459,
                                                          0.649343])},
            "Hartmann-6 s.t. ‖x‖₁ ≤ 2: BoTorch's constrained tutorial uses ‖x‖₁ ≤ 3, which keeps the "
            "optimum (‖x*‖₁ = 2.07, −3.32237); ≤ 2 cuts it off and leaves 8 % of the cube feasible"),
        ConstrainedProblem(
            "digits-size", [_int("trees", 1, 64, "log"), _int("depth", 1, 30), _double("max_features", 0.05, 1.0),
                            _int("min_leaf", 1, 20, "log")], digits_forest, forest_size, ((None, SIZE_BUDGET),),
            source=f"random forest on scikit-learn's digits, −accuracy on a fixed 797-image validation split, "
                   f"s.t. trees × max depth ≤ {SIZE_BUDGET:g}"),
    ]
}


# --- optimizers -----------------------------------------------------------------------------------


class ConstrainedKubetune(Kubetune):
    """A kubetune suggester as ``bench.peers.Kubetune`` drives it, told the constraint values and bounds."""

    def __init__(self, parameters: list[Parameter], bounds: Bounds, seed: int, algorithm: str) -> None:
        super().__init__(parameters, seed, algorithm)
        self.bounds = bounds

    def ask(self, n: int) -> list[Params]:
        request = SuggestRequest(space=self.space, observations=self.observations, pending=self.pending, n=n,
                                 seed=self.seed, start_index=self.index, state=self.state, settings=self.settings,
                                 constraints=list(self.bounds))
        suggestion = self.suggester.suggest(request)
        self.state = suggestion.state
        self.index += len(suggestion.params)
        self.pending = [*self.pending, *suggestion.params]
        return suggestion.params

    def tell_constrained(self, params: list[Params], losses: list[float],
                         constraints: list[tuple[float, ...]]) -> None:
        keys = {self.space.key(p) for p in params}
        self.pending = [p for p in self.pending if self.space.key(p) not in keys]
        self.observations = [*self.observations, *(
            Observation(p, v if math.isfinite(v) else None, constraints=tuple(c) if math.isfinite(v) else ())
            for p, v, c in zip(params, losses, constraints, strict=True))]


class ConstrainedOptuna:
    """Optuna's ``GPSampler`` or multivariate ``TPESampler`` (constant liar), each trial's constraints set
    with ``Trial.set_constraint`` before ``study.tell`` (Optuna 5's way; its ``constraints_func`` is
    deprecated since 5.0 and lands the values in the same trial attributes)."""

    def __init__(self, parameters: list[Parameter], bounds: Bounds, seed: int, sampler: str) -> None:
        from bench.peers import OptunaPeer

        self.peer = OptunaPeer(parameters, seed, sampler)  # the same samplers and search-space mapping
        self.bounds = bounds

    def ask(self, n: int) -> list[Params]:
        return self.peer.ask(n)

    def tell_constrained(self, params: list[Params], losses: list[float],
                         constraints: list[tuple[float, ...]]) -> None:
        for p, v, c in zip(params, losses, constraints, strict=True):
            trial = self.peer.trials.pop(id(p))
            for k, (value, (lo, hi)) in enumerate(zip(c, self.bounds, strict=True)):
                if hi is not None:
                    trial.set_constraint(f"c{k}_max", value - hi)
                if lo is not None:
                    trial.set_constraint(f"c{k}_min", lo - value)
            self.peer.study.tell(trial, v)


def make(name: str, problem: ConstrainedProblem, seed: int) -> ConstrainedKubetune | ConstrainedOptuna:
    if name in ("bayes", "tpe", "random", "sobol"):
        return ConstrainedKubetune(problem.parameters, problem.bounds, seed, name)
    if name in ("optuna-gp", "optuna-tpe"):
        return ConstrainedOptuna(problem.parameters, problem.bounds, seed, name.split("-", 1)[1])
    raise ValueError(f"unknown optimizer {name!r}")


# --- runs and scores --------------------------------------------------------------------------------


def run_one(problem_name: str, optimizer: str, seed: int, rounds: int, batch: int) -> dict[str, Any]:
    problem = PROBLEMS[problem_name]
    opt = make(optimizer, problem, seed)
    losses: list[float] = []
    constraints: list[list[float]] = []
    suggest_s = 0.0
    for _ in range(rounds):
        t0 = time.perf_counter()
        params = opt.ask(batch)
        suggest_s += time.perf_counter() - t0
        values = [problem.loss(p) for p in params]
        metrics = [problem.constraints(p) for p in params]
        opt.tell_constrained(params, values, metrics)
        losses.extend(values)
        constraints.extend(list(m) for m in metrics)
    return {"problem": problem_name, "optimizer": optimizer, "seed": seed, "rounds": rounds, "batch": batch,
            "losses": losses, "constraints": constraints,
            "feasible": [is_feasible(c, problem.bounds) and math.isfinite(v) for v, c in zip(losses, constraints,
                                                                                             strict=True)],
            "suggest_s": suggest_s}


def best_feasible(record: dict[str, Any]) -> float:
    """The run's lowest loss among its feasible evaluations; inf when it has none."""
    return min((v for v, ok in zip(record["losses"], record["feasible"], strict=True) if ok), default=math.inf)


@dataclass(frozen=True)
class Row:
    problem: str
    optimizer: str
    seeds: int
    score: float
    mean_best: float  # inf when some run found no feasible point
    worst_best: float
    found_feasible: float  # share of runs with a feasible point
    feasible_evals: float  # share of evaluations that were feasible
    suggest_s: float  # mean seconds per ask of one batch
    f_star: float  # the reference optimum of the score: the known one, or the best feasible loss found


def summarize(results: list[dict[str, Any]]) -> list[Row]:
    """One row per (problem, optimizer), scored against that problem's optimum and random's median."""
    rows = []
    for name in sorted({r["problem"] for r in results}):
        runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in results:
            if r["problem"] == name:
                runs[r["optimizer"]].append(r)
        finals = {o: np.array([best_feasible(r) for r in rs]) for o, rs in runs.items()}
        found = [v[np.isfinite(v)] for v in finals.values()]
        best_found = min((float(v.min()) for v in found if v.size), default=math.inf)
        known = PROBLEMS[name].optimum if name in PROBLEMS else None
        f_star = min(best_found, known) if known is not None else best_found
        reference = finals.get("random", np.concatenate(list(finals.values())))
        f_rand = float(np.median(reference))
        if not math.isfinite(f_rand):  # random's median run found nothing: use the worst feasible best instead
            f_rand = max((float(v.max()) for v in found if v.size), default=f_star)
        scale = max(f_rand - f_star, 1e-12)
        scores = {o: 100 * (1 - (v - f_star) / scale) for o, v in finals.items()}
        finite = [s[np.isfinite(s)] for s in scores.values()]
        floor = min([0.0, *(float(s.min()) for s in finite if s.size)])
        for o in sorted(runs):
            s = np.where(np.isfinite(scores[o]), scores[o], floor)
            evals = [ok for r in runs[o] for ok in r["feasible"]]
            rows.append(Row(name, o, len(runs[o]), float(np.mean(s)), float(np.mean(finals[o])),
                            float(np.max(finals[o])), float(np.mean(np.isfinite(finals[o]))),
                            float(np.mean(evals)) if evals else 0.0,
                            float(np.mean([r["suggest_s"] / r["rounds"] for r in runs[o]])), f_star))
    return rows


def _value(v: float) -> str:
    return "—" if not math.isfinite(v) else f"{v:.5g}"


def table(rows: list[Row]) -> str:
    lines = ["| problem | f* | optimizer | seeds | score | mean best feasible | worst best feasible | "
             "runs with a feasible point | feasible evaluations | s per batch |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        optimum = PROBLEMS[row.problem].optimum if row.problem in PROBLEMS else None
        f_star = _value(row.f_star) if optimum is not None else f"{_value(row.f_star)} (best found)"
        lines.append(f"| {row.problem} | {f_star} | {row.optimizer} "
                     f"| {row.seeds} | {row.score:.1f} | {_value(row.mean_best)} | {_value(row.worst_best)} "
                     f"| {100 * row.found_feasible:.0f} % | {100 * row.feasible_evals:.0f} % | {row.suggest_s:.2f} |")
    optimizers = sorted({r.optimizer for r in rows})
    problems = sorted({r.problem for r in rows})
    lines += ["", "| mean over problems | " + " | ".join(optimizers) + " |", "|---|" + "---:|" * len(optimizers)]
    for label, attr in (("score", "score"), ("feasible evaluations", "feasible_evals"), ("s per batch", "suggest_s")):
        cells = []
        for o in optimizers:
            values = [getattr(r, attr) for r in rows if r.optimizer == o]
            mean = float(np.mean(values)) if len(values) == len(problems) else math.nan
            cells.append(f"{100 * mean:.0f} %" if attr == "feasible_evals" else f"{mean:.2f}" if attr == "suggest_s"
                         else f"{mean:.1f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def findings(rows: list[Row]) -> str:
    """What the table says, from the table: kubetune's suggesters against their Optuna counterparts."""
    score = {(r.problem, r.optimizer): r for r in rows}
    problems = sorted({r.problem for r in rows})
    sentences = []
    for ours, theirs in (("bayes", "optuna-gp"), ("tpe", "optuna-tpe")):
        pairs = [(p, score[p, ours], score[p, theirs]) for p in problems if (p, ours) in score and (p, theirs) in score]
        if not pairs:
            continue
        verdict: dict[str, list[str]] = {"ahead": [], "level": [], "behind": []}
        for p, a, b in pairs:
            key = "level" if abs(a.score - b.score) <= 1.0 else "ahead" if a.score > b.score else "behind"
            verdict[key].append(f"{p} ({a.score:.1f} vs {b.score:.1f})" if key != "level" else p)
        parts = [f"{k} on {', '.join(v)}" for k, v in verdict.items() if v]
        feasible = ", ".join(f"{p} {100 * a.feasible_evals:.0f} % vs {100 * b.feasible_evals:.0f} %"
                             for p, a, b in pairs)
        sentences.append(f"`{ours}` against `{theirs}`: {'; '.join(parts)}. Share of evaluations that were "
                         f"feasible, `{ours}` vs `{theirs}`: {feasible}.")
        if ours == "tpe" and verdict["behind"]:
            sentences.append("Ranking the infeasible trials by their total violation, as Optuna's TPE does, "
                             "instead of only behind the worst feasible loss, did not change that (mean score "
                             "59.3 before, 59.2 after, same seeds); what is left is the base sampler, which "
                             "trails `optuna-tpe` without constraints too (the Optimizers section).")
    missed = [f"`{r.optimizer}` on {r.problem} ({100 * (1 - r.found_feasible):.0f} % of its runs)"
              for r in rows if r.found_feasible < 1]
    sentences.append("Runs that found no feasible point: " + (", ".join(missed) if missed else "none") + ".")
    return " ".join(sentences)


def section(results: list[dict[str, Any]], files: list[Path]) -> str:
    import optuna  # the version goes into the text
    import sklearn

    rows = summarize(results)
    seeds = {o: sorted({r["seed"] for r in results if r["optimizer"] == o}) for o in sorted({r["optimizer"]
                                                                                            for r in results})}
    if len({tuple(s) for s in seeds.values()}) == 1:
        seed_text = f"{', '.join(map(str, next(iter(seeds.values()))))} for every optimizer"
    else:
        seed_text = "; ".join(f"`{o}` {len(s)} ({', '.join(map(str, s))})" for o, s in seeds.items())
    budgets = sorted({f"{r['rounds']} rounds × batch {r['batch']}" for r in results})
    problems = "\n".join(f"- `{p.name}`: {p.source}." for p in PROBLEMS.values() if p.name in {r.problem for r in rows})
    return f"""{HEADING}

Best *feasible* loss reached under `spec.objective.constraints` (a trial that breaks a bound is
infeasible), by `bench/constrained.py`: kubetune's `bayes` (a GP per constrained metric, probability
of feasibility × acquisition; Gardner et al. 2014), `tpe` (infeasible trials ranked last) and
`random` (ignores constraints), against Optuna {optuna.__version__}'s `GPSampler` and
`TPESampler(multivariate=True, constant_liar=True)`, told each trial's constraints by
`Trial.set_constraint` (Optuna 5's replacement of `constraints_func`, read by both samplers), scikit-learn
{sklearn.__version__}. Budget: {", ".join(budgets)}, every optimizer asked for a whole batch with the
unfinished points pending and told all of them. Seeds: {seed_text}. 2 shared CPUs, BLAS threads pinned
to 1 per process, two runs at a time: *s per batch* is wall time, for comparing optimizers only.

{problems}

*score*: 100 × (1 − (f − f*)/(f_rand − f*)) averaged over seeds, with f a run's best feasible loss,
f* the known constrained optimum (for `digits-size` the best any run found) and f_rand random's
median f; a run with no feasible point scores min(0, the lowest feasible run's score). *mean/worst
best feasible*: over seeds ("—" when a run found nothing feasible). *feasible evaluations*: share of
all evaluated points that kept every bound. A score of 100.0 means within 0.05 % of the gap
between f* and f_rand: where two optimizers both show it, compare the best-feasible columns.

{table(rows)}

{findings(rows)}

Rerun: `.venv/bin/python -m bench.constrained --budget 16x8 --seeds 5 --jobs 2 --out
bench/results/constrained.json` (about half an hour on 2 shared CPUs, most of it `optuna-gp`),
then `.venv/bin/python -m bench.constrained --report {" ".join(str(f) for f in files)} --doc`
(needs `optuna`, from `make bench-setup`).
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", default="16x8", help="ROUNDSxBATCH")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--optimizers", default="bayes,tpe,random,optuna-gp,optuna-tpe")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench/results/constrained.json"))
    parser.add_argument("--report", type=Path, nargs="*", help="only report these result files")
    parser.add_argument("--doc", action="store_true", help=f"with --report: write the '{HEADING}' section of {DOC}")
    args = parser.parse_args(argv)

    if args.report:
        results = [r for f in args.report for r in json.loads(f.read_text())]
        if args.doc:
            from bench.common import replace_section

            replace_section(DOC, HEADING, section(results, args.report))
        print(table(summarize(results)))
        return 0
    rounds, batch = (int(v) for v in args.budget.lower().split("x"))
    tasks = [(p, o, s, rounds, batch) for s in range(args.first_seed, args.first_seed + args.seeds)
             for p in args.problems.split(",") for o in args.optimizers.split(",")]
    results = run_tasks(run_one, tasks, args.jobs, args.out,
                        lambda r: f"best feasible={best_feasible(r):.4g} feasible={np.mean(r['feasible']):.0%} "
                                  f"{r['suggest_s']:.1f}s")
    print(table(summarize(results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
