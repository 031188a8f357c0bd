"""Optimizer quality benchmark: kubetune's suggesters against Optuna and HEBO.

    python -m bench.optimizers --budget 16x8 --repeats 10 --problems branin,hartmann6 \\
        --optimizers bayes,tpe,random,optuna-gp,optuna-tpe,hebo --jobs 2 --out bench/results/run.json
    python -m bench.optimizers --report bench/results/run.json [more.json ...] --plots docs/img

Each run is one process-pool task with BLAS threads pinned to 1. Scores are Bayesmark-style:
per problem, normalized loss = (f − f*) / (f_rand − f*) with f the run's best loss, f* the known
optimum or the best loss any run found, f_rand the median best loss of random search at the same
budget (floored at 1 % of random's typical single loss above f*); score = 100 × (1 − mean normalized
loss), so random ≈ 0 and 100 = the optimum.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402

from bench.common import run_tasks  # noqa: E402


def run_one(problem_name: str, optimizer: str, seed: int, rounds: int, batch: int) -> dict[str, Any]:
    from bench.peers import make
    from bench.problems import PROBLEMS

    problem = PROBLEMS[problem_name]
    opt = make(optimizer, problem.parameters, seed)
    losses: list[float] = []
    suggest_s = 0.0
    for _ in range(rounds):
        t0 = time.perf_counter()
        params = opt.ask(batch)
        suggest_s += time.perf_counter() - t0
        values = [problem.loss(p) for p in params]
        opt.tell(params, values)
        losses.extend(values)
    return {"problem": problem_name, "optimizer": optimizer, "seed": seed, "rounds": rounds, "batch": batch,
            "losses": losses, "suggest_s": suggest_s}


def _best_so_far(losses: list[float], batch: int) -> np.ndarray[Any, Any]:
    arr = np.array([v if np.isfinite(v) else np.inf for v in losses])
    return np.minimum.accumulate(arr)[batch - 1 :: batch]


def common_seeds(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Only the (problem, seed) pairs that every optimizer of that problem finished."""
    optimizers: dict[str, set[str]] = defaultdict(set)
    done: dict[tuple[str, int], set[str]] = defaultdict(set)
    for r in results:
        optimizers[r["problem"]].add(r["optimizer"])
        done[(r["problem"], r["seed"])].add(r["optimizer"])
    return [r for r in results if done[(r["problem"], r["seed"])] == optimizers[r["problem"]]]


def report(results: list[dict[str, Any]], plots: Path | None) -> str:
    from bench.problems import PROBLEMS

    by_problem: dict[str, dict[str, list[np.ndarray[Any, Any]]]] = defaultdict(lambda: defaultdict(list))
    times: dict[str, list[float]] = defaultdict(list)
    seeds: dict[str, set[int]] = defaultdict(set)
    seed_lists: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for r in sorted(results, key=lambda r: (r["problem"], r["optimizer"], r["seed"])):
        by_problem[r["problem"]][r["optimizer"]].append(_best_so_far(r["losses"], r["batch"]))
        times[r["optimizer"]].append(r["suggest_s"] / r["rounds"])
        seeds[r["problem"]].add(r["seed"])
        seed_lists[r["problem"]][r["optimizer"]].append(r["seed"])
    optimizers = sorted({r["optimizer"] for r in results})
    scores: dict[str, dict[str, float]] = defaultdict(dict)
    per_seed: dict[str, dict[str, np.ndarray[Any, Any]]] = defaultdict(dict)
    wins: dict[str, dict[str, str]] = defaultdict(dict)
    lines = []
    for name, runs in sorted(by_problem.items()):
        finals = {o: np.array([t[-1] for t in traces]) for o, traces in runs.items()}
        best_found = min(float(v.min()) for v in finals.values())
        known = PROBLEMS[name].optimum
        f_star = min(best_found, known) if known is not None else best_found
        f_rand = float(np.median(finals["random"])) if "random" in finals else max(
            float(np.median(v)) for v in finals.values())
        # with few repeats random search can land on f* itself; floor the scale at 1 % of the
        # typical single random loss so one lucky draw cannot blow the scores up
        typical = [v for r in results if r["problem"] == name and r["optimizer"] == "random" for v in r["losses"]]
        floor = 0.01 * (float(np.median(typical)) - f_star) if typical else 1e-12
        scale = max(f_rand - f_star, floor, 1e-12)
        for o, v in finals.items():
            per_seed[name][o] = 100 * (1 - (v - f_star) / scale)
            scores[name][o] = float(np.mean(per_seed[name][o]))
        if "bayes" in finals:
            for o, v in finals.items():
                if o == "bayes":
                    continue
                n = min(len(v), len(finals["bayes"]))
                b = finals["bayes"][:n]
                w = int(np.sum(b < v[:n] - 1e-12))
                loss_ = int(np.sum(b > v[:n] + 1e-12))
                wins[name][o] = f"{w}/{n - w - loss_}/{loss_}"
        if plots is not None:
            _plot(name, runs, f_star, plots)
    header = "| problem | seeds | " + " | ".join(optimizers) + " |"
    lines += [header, "|" + "---|" * (len(optimizers) + 2)]
    for name in sorted(scores):
        row = " | ".join(f"{scores[name].get(o, float('nan')):.1f}" for o in optimizers)
        lines.append(f"| {name} | {len(seeds[name])} | {row} |")
    mean = {o: float(np.mean([scores[p][o] for p in scores if o in scores[p]])) for o in optimizers}
    lines.append("| **mean** | | " + " | ".join(f"**{mean[o]:.1f}**" for o in optimizers) + " |")
    lines.append("| s per batch | | " + " | ".join(f"{np.mean(times[o]):.2f}" for o in optimizers) + " |")
    # the paired bootstrap needs the same seeds, in the same order, for every optimizer of a problem
    paired = {p: v for p, v in per_seed.items() if len({tuple(x) for x in seed_lists[p].values()}) == 1}
    lines += ["", *_bootstrap_lines(paired, optimizers)]
    if wins:
        others = [o for o in optimizers if o != "bayes"]
        lines += ["", "bayes wins/ties/losses against each optimizer, per problem (final best loss, same seed):", "",
                  "| problem | " + " | ".join(others) + " |", "|" + "---|" * (len(others) + 1)]
        for name in sorted(wins):
            lines.append(f"| {name} | " + " | ".join(wins[name].get(o, "") for o in others) + " |")
    return "\n".join(lines)


def _bootstrap_lines(per_seed: dict[str, dict[str, np.ndarray[Any, Any]]], optimizers: list[str],
                     draws: int = 4000) -> list[str]:
    """90 % intervals of each mean score, and of bayes minus each other optimizer, over seeds.

    Seeds are resampled with replacement within each problem, the same draw for every optimizer
    (the comparison is paired: same seed, same problem); problems are kept fixed.
    """
    rng = np.random.default_rng(0)
    problems = [p for p in sorted(per_seed) if all(o in per_seed[p] for o in optimizers)]
    if not problems:
        return []
    means = {o: np.zeros(draws) for o in optimizers}
    point = dict.fromkeys(optimizers, 0.0)
    for p in problems:
        n = min(len(per_seed[p][o]) for o in optimizers)
        idx = rng.integers(n, size=(draws, n))
        for o in optimizers:
            means[o] += per_seed[p][o][:n][idx].mean(axis=1) / len(problems)
            point[o] += float(per_seed[p][o][:n].mean()) / len(problems)
    lines = [f"Mean score over the {len(problems)} problems with every optimizer, 90 % bootstrap interval over "
             "seeds (paired):", "", "| optimizer | mean | 90 % interval | bayes − optimizer, 90 % interval |",
             "|---|---|---|---|"]
    for o in optimizers:
        lo, hi = np.percentile(means[o], [5, 95])
        diff = ""
        if "bayes" in means and o != "bayes":
            d = means["bayes"] - means[o]
            dlo, dhi = np.percentile(d, [5, 95])
            diff = f"{point['bayes'] - point[o]:+.1f} [{dlo:+.1f}, {dhi:+.1f}]"
        lines.append(f"| {o} | {point[o]:.1f} | [{lo:.1f}, {hi:.1f}] | {diff} |")
    return lines


def _plot(name: str, runs: dict[str, list[np.ndarray[Any, Any]]], f_star: float, folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for o, traces in sorted(runs.items()):
        regret = np.array([t - f_star for t in traces])
        med = np.median(regret, axis=0)
        x = np.arange(1, len(med) + 1)
        ax.plot(x, med, label=o, linewidth=2 if o == "bayes" else 1)
        ax.fill_between(x, np.percentile(regret, 25, axis=0), np.percentile(regret, 75, axis=0), alpha=0.12)
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_xlabel("round")
    ax.set_ylabel("best loss − f* (median, IQR)")
    ax.set_title(name)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(folder / f"optimizers-{name}.png", dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", default="16x8", help="ROUNDSxBATCH")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--problems", default="branin,hartmann6,ackley5,rosenbrock4,ackley-mixed")
    parser.add_argument("--optimizers", default="bayes,tpe,random,optuna-tpe,optuna-gp,hebo")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench/results/optimizers.json"))
    parser.add_argument("--report", type=Path, nargs="*", help="only report these result files")
    parser.add_argument("--plots", type=Path, default=None)
    parser.add_argument("--only", default="", help="with --report: only these optimizers (comma-separated)")
    parser.add_argument("--all-seeds", action="store_true",
                        help="report every finished run, not only seeds that all optimizers finished")
    args = parser.parse_args(argv)

    if args.report:
        results = [r for f in args.report for r in json.loads(f.read_text())]
        if args.only:
            results = [r for r in results if r["optimizer"] in args.only.split(",")]
        print(report(results if args.all_seeds else common_seeds(results), args.plots))
        return 0
    rounds, batch = (int(v) for v in args.budget.lower().split("x"))
    tasks = [(p, o, s, rounds, batch) for s in range(args.first_seed, args.first_seed + args.repeats)
             for p in args.problems.split(",") for o in args.optimizers.split(",")]
    results = run_tasks(run_one, tasks, args.jobs, args.out,
                        lambda r: f"best={min(r['losses']):.4g} {r['suggest_s']:.1f}s")
    print(report(results, args.plots))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
