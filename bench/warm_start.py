"""Warm start: how much sooner ``bayes`` reaches a finished run's best when it starts from that run.

    python -m bench.warm_start --problems branin,hartmann6,gb-digits --seeds 10 --budget 15x2 --jobs 2 \\
        --out bench/results/warm-start.json
    python -m bench.warm_start --report bench/results/warm-start.json --doc

For each problem and seed: a *cold* run (seed s, ``rounds × batch`` evaluations, ``batch`` at a
time, pending-aware as the operator runs them) ends with a best loss B, first reached after
``e_cold`` evaluations. A *warm* run of the same budget (seed s + 1000, so its own design and
tie-breaks differ) is given the cold run's evaluations as prior observations, as
``spec.warmStart`` gives them (``SuggestRequest.prior``), and ``e_warm`` counts its evaluations
until its best is ≤ B (budget + 1 when it never gets there). The target: median ``e_warm`` ≤ ½
median ``e_cold``. The warm run never repeats a prior point (they are tried points), so it has to
find B's equal or better anew.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

from bench.common import replace_section  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
SECTION = "## Warm start"


def _run(problem_name: str, seed: int, rounds: int, batch: int, prior: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from bench.problems import PROBLEMS
    from kubetune.space import Space
    from kubetune.suggest import Observation, SuggestRequest, get_suggester

    problem = PROBLEMS[problem_name]
    space = Space(problem.parameters)
    suggester = get_suggester("bayes")
    before = [Observation(space.validate(p["params"]), p["loss"]) for p in prior]
    seen: list[dict[str, Any]] = []
    state: dict[str, Any] = {}
    for _ in range(rounds):
        own = [Observation(space.validate(p["params"]), p["loss"]) for p in seen]
        request = SuggestRequest(space=space, observations=[*before, *own], pending=[], n=batch, seed=seed,
                                 start_index=len(seen), state=state, prior=len(before))
        suggestion = suggester.suggest(request)
        state = suggestion.state
        for params in suggestion.params:
            seen.append({"params": params, "loss": float(problem.loss(params))})
    return seen


def _first_reaching(losses: list[float], target: float) -> int | None:
    best = float("inf")
    for i, loss in enumerate(losses, start=1):
        best = min(best, loss)
        if best <= target:
            return i
    return None


def run_pair(problem: str, seed: int, rounds: int, batch: int) -> dict[str, Any]:
    cold = _run(problem, seed, rounds, batch, [])
    losses = [p["loss"] for p in cold]
    target = min(losses)
    warm = _run(problem, seed + 1000, rounds, batch, cold)
    budget = rounds * batch
    e_warm = _first_reaching([p["loss"] for p in warm], target)
    return {"problem": problem, "seed": seed, "rounds": rounds, "batch": batch, "target": target,
            "e_cold": _first_reaching(losses, target), "e_warm": e_warm if e_warm is not None else budget + 1,
            "reached": e_warm is not None, "warm_best": min(p["loss"] for p in warm)}


def report(results: list[dict[str, Any]]) -> str:
    problems = sorted({r["problem"] for r in results})
    budget = results[0]["rounds"] * results[0]["batch"]
    lines = [SECTION, "",
             f"`bayes` started from a finished run of the same problem (`spec.warmStart`), against that run: "
             f"{budget} evaluations in batches of {results[0]['batch']}, {len({r['seed'] for r in results})} seeds. "
             "*e_cold*: evaluations the cold run needed to reach its final best; *e_warm*: evaluations the warm "
             "run (another seed, the cold run's evaluations as prior observations) needed to reach that value "
             f"({budget} + 1 when it did not). Target: median e_warm ≤ ½ median e_cold. Rerun: "
             "`.venv/bin/python -m bench.warm_start --seeds 10 --jobs 2 --out bench/results/warm-start.json` "
             "then `--report bench/results/warm-start.json --doc`.", "",
             "| problem | median e_cold | median e_warm | ratio | warm reached it | target |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    for name in problems:
        rows = [r for r in results if r["problem"] == name]
        cold = statistics.median(r["e_cold"] for r in rows)
        warm = statistics.median(r["e_warm"] for r in rows)
        ratio = warm / cold
        lines.append(f"| {name} | {cold:g} | {warm:g} | {ratio:.2f} | {sum(r['reached'] for r in rows)}/{len(rows)} "
                     f"| {'met' if ratio <= 0.5 else 'missed'} |")
    return "\n".join(lines) + "\n\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", default="branin,hartmann6,gb-digits")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", default="15x2", help="rounds x batch")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--report", type=Path, help="print (and with --doc write) the section of a results file")
    parser.add_argument("--doc", action="store_true")
    args = parser.parse_args(argv)
    if args.report:
        section = report(json.loads(args.report.read_text()))
        print(section)
        if args.doc:
            replace_section(DOC, SECTION, section)
        return 0
    rounds, batch = (int(v) for v in args.budget.split("x"))
    tasks = [(p, s, rounds, batch) for p in args.problems.split(",") for s in range(args.seeds)]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run_pair, *zip(*tasks, strict=True)))
    for r in results:
        print(f"{r['problem']} seed={r['seed']}: e_cold={r['e_cold']} e_warm={r['e_warm']}", file=sys.stderr)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
