"""A surrogate of the All-CNN reproduction: the real trials' outcomes, learned by random forests.

    .venv/bin/python bench/allcnn_surrogate.py --export          # real trials → bench/data/allcnn-trials.json
    .venv/bin/python bench/allcnn_surrogate.py --fidelity        # how well the forests predict held-out runs
    .venv/bin/python bench/allcnn_surrogate.py bayes random hebo --seeds 10   # search the surrogate
    .venv/bin/python bench/allcnn_surrogate.py --model resnet --export        # the ResNet variant's (depth: 10th)

One real All-CNN search (90 trials) takes 15–40 CPU minutes, so a suggester change cannot be tried
on ten seeds of it in an afternoon. A surrogate benchmark (Eggensperger et al., AAAI 2015; HPOBench
and YAHPO do the same) replaces the training run by a model of the recorded ones: here every trial
that ``bench/allcnn_reproduction.py`` ran (all strategies, all seeds, same setup), learned on the
unit-cube encoding of the seed's space by a random forest that classifies each assignment as
diverged, at chance or learned, and a second forest for the accuracy of the trials that learned
(:class:`Surrogate`). Searches run as the operator runs them (``bench.parallel_sim``, 90
evaluations, 3 at a time), in seconds.

``--model resnet`` does the same for the ResNet variant's recorded trials (depth the tenth parameter).

It keeps the real problem's character (84 % of random configurations diverge, most of the rest stay
at chance) and its failure modes, but it is a model: a change found here is kept only once the real
reproduction confirms it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import parallel_sim, peers  # noqa: E402
from bench.common import machine  # noqa: E402
from bench.reproduction_report import MODELS, best_so_far, evals_to_reach  # noqa: E402
from kubetune.api import Experiment, Parameter, Params  # noqa: E402
from kubetune.space import Space  # noqa: E402

RESULTS = ROOT / "bench" / "results"
CHECKPOINTS = (30, 60, 90)


def data_file(model: str = "allcnn") -> Path:
    return ROOT / "bench" / "data" / f"{model}-trials.json"


def parameters(model: str = "allcnn") -> list[Parameter]:
    space_file = MODELS[model]["space"]
    return list(Experiment.model_validate(yaml.safe_load(space_file.read_text())).spec.parameters)


def export(folders: list[Path], out: Path | None = None) -> int:
    """Write every distinct recorded trial of the given result folders; returns how many."""
    rows: dict[str, dict[str, Any]] = {}
    config: dict[str, Any] | None = None
    for folder in folders:
        for path in sorted(folder.glob("*.json")):
            part = json.loads(path.read_text())
            if path.stem == "expert":
                continue
            setup = {k: v for k, v in part["config"].items() if k not in ("algorithms", "seeds", "host")}
            config = config or setup
            if setup != config:
                print(f"skipping {path}: another setup", file=sys.stderr)
                continue
            for run in part["runs"]:
                for t in run.get("trials", []):
                    key = json.dumps(t["params"], sort_keys=True)
                    rows.setdefault(key, {"params": t["params"], "accuracy": t["accuracy"], "epochs": t["epochs"]})
    out = out or data_file()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"config": config, "trials": list(rows.values())}, indent=0) + "\n")
    return len(rows)


#: Below this a trial learned nothing: it sits at chance (10 classes), whatever its settings.
CHANCE = 0.2


class Surrogate:
    """Diverged, at chance or an accuracy, for any assignment of the seed's space, learned from real trials.

    Three outcomes as in the real runs: a random forest classifies diverged / chance / learned; a
    second forest, fitted on the trials that learned, gives their accuracy. A chance-level trial
    draws its accuracy from the recorded chance values (seeded by the assignment, so the same
    assignment always gives the same result): the real chance values are noise (mean 0.099, sd
    0.026), and a model that averaged them with nearby learners would invent a slope towards the
    learning region that the real problem does not have.
    """

    def __init__(self, trials: list[dict[str, Any]], seed: int = 0, model: str = "allcnn") -> None:
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        self.space = Space(parameters(model))
        self.epoch_scale = float(MODELS[model]["epoch_scale"])
        x = self.space.to_unit([t["params"] for t in trials])
        acc = np.array([np.nan if t["accuracy"] is None else t["accuracy"] for t in trials])
        outcome = np.where(np.isnan(acc), 0, np.where(acc < CHANCE, 1, 2))
        self.classifier = RandomForestClassifier(n_estimators=200, min_samples_leaf=2, random_state=seed)
        self.classifier.fit(x, outcome)
        learned = outcome == 2
        self.regressor = RandomForestRegressor(n_estimators=200, min_samples_leaf=2, random_state=seed)
        self.regressor.fit(x[learned], acc[learned])
        self.chance = np.sort(acc[outcome == 1])
        diverged = [t["epochs"] for t in trials if t["accuracy"] is None]
        self.diverge_epochs = int(np.median(diverged)) if diverged else 1  # the ResNet runs never diverged

    def predict(self, assignments: list[Params]) -> list[float | None]:
        x = self.space.to_unit(assignments)
        outcome = self.classifier.classes_[np.argmax(self.classifier.predict_proba(x), axis=1)]
        acc = self.regressor.predict(x)
        out: list[float | None] = []
        for params, o, a in zip(assignments, outcome, acc, strict=True):
            if o == 0:
                out.append(None)
            elif o == 1:
                digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).digest()
                out.append(float(self.chance[int.from_bytes(digest[:4], "big") % len(self.chance)]))
            else:
                out.append(float(a))
        return out

    def evaluate(self, params: Params) -> parallel_sim.Evaluation:
        accuracy = self.predict([params])[0]
        if accuracy is None:
            return parallel_sim.Evaluation(None, self.diverge_epochs)
        return parallel_sim.Evaluation(accuracy, max(1, round(int(params["epochs"]) * self.epoch_scale)))


@cache
def surrogate(model: str = "allcnn") -> Surrogate:
    return Surrogate(json.loads(data_file(model).read_text())["trials"], model=model)


def search(strategy: str, seed: int, model: str = "allcnn", evals: int = 90, parallel: int = 3) -> dict[str, Any]:
    optimizer = peers.make(strategy, parameters(model), seed)
    finished, ask_seconds = parallel_sim.run(optimizer, surrogate(model).evaluate, evals=evals, parallel=parallel)
    accuracies = [f.accuracy for f in finished]
    return {"strategy": strategy, "seed": seed, "model": model, "accuracies": accuracies,
            "ask_seconds": round(ask_seconds, 1), "machine": machine()}


def best_at(accuracies: list[float | None], n: int) -> float:
    return max([a for a in accuracies[:n] if a is not None], default=0.0)


def _outcome(accuracy: float | None) -> str:
    return "diverged" if accuracy is None else ("chance" if accuracy < CHANCE else "learned")


def fidelity(folder: Path, model: str = "allcnn") -> str:
    """Leave one recorded run out: does a surrogate of the other trials predict its trials?"""
    lines = ["| held-out run | diverged / chance / learned: real | predicted | same outcome | "
             "accuracy error where both learned (trials) |", "|---|---|---|---|---|"]
    data = json.loads(data_file(model).read_text())["trials"]
    for path in sorted(folder.glob("*.json")):
        if path.stem == "expert":
            continue
        for run in json.loads(path.read_text())["runs"]:
            held = run["trials"]
            keys = {json.dumps(t["params"], sort_keys=True) for t in held}
            rest = [t for t in data if json.dumps(t["params"], sort_keys=True) not in keys]
            predicted = Surrogate(rest, model=model).predict([t["params"] for t in held])
            real = [t["accuracy"] for t in held]
            counts = [[sum(_outcome(a) == k for a in column) for k in ("diverged", "chance", "learned")]
                      for column in (real, predicted)]
            same = np.mean([_outcome(r) == _outcome(p) for r, p in zip(real, predicted, strict=True)])
            both = [abs(r - p) for r, p in zip(real, predicted, strict=True)
                    if _outcome(r) == _outcome(p) == "learned"]
            error = f"{np.mean(both):.3f} ({len(both)})" if both else "— (0)"
            lines.append(f"| {path.stem} seed {run['seed']} | {' / '.join(map(str, counts[0]))} | "
                         f"{' / '.join(map(str, counts[1]))} | {same:.0%} | {error} |")
    return "\n".join(lines)


def summary(results: list[dict[str, Any]], expert: float) -> str:
    strategies = list(dict.fromkeys(r["strategy"] for r in results))
    random_best = {r["seed"]: [best_at(r["accuracies"], n) for n in CHECKPOINTS]
                   for r in results if r["strategy"] == "random"}
    lines = ["| strategy | seeds | mean best @30 / 60 / 90 | worst seed @90 | above random @30/60/90 | "
             f"≥ expert ({expert:.3f}) @90 | evaluations to match the expert (median) | diverged |",
             "|---|---|---|---|---|---|---|---|"]
    for s in strategies:
        runs = [r for r in results if r["strategy"] == s]
        best = np.array([[best_at(r["accuracies"], n) for n in CHECKPOINTS] for r in runs])
        above = [sum(1 for r, b in zip(runs, best, strict=True)
                     if r["seed"] in random_best and b[i] > random_best[r["seed"]][i]) for i in range(3)]
        diverged = np.mean([sum(a is None for a in r["accuracies"]) / len(r["accuracies"]) for r in runs])
        needed = [evals_to_reach(best_so_far(r["accuracies"]), expert) for r in runs]
        median = float(np.median(needed))
        match = f"{median:.0f}" if math.isfinite(median) else f"> {len(runs[0]['accuracies'])}"
        lines.append(f"| {s} | {len(runs)} | {' / '.join(f'{v:.3f}' for v in best.mean(axis=0))} | "
                     f"{best[:, 2].min():.3f} | {' / '.join(map(str, above))} | {int(np.sum(best[:, 2] >= expert))} | "
                     f"{match} | {diverged:.0%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("strategies", nargs="*", default=["bayes", "random"])
    parser.add_argument("--model", choices=sorted(MODELS), default="allcnn",
                        help="which reproduction's recorded trials (default allcnn)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--evals", type=int, default=90, help="each search's budget (default 90, as the seed's)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--export", action="store_true", help="rebuild bench/data/<model>-trials.json")
    parser.add_argument("--fidelity", action="store_true", help="leave-one-run-out check of the surrogate")
    parser.add_argument("--out", type=Path, help="save the searches' accuracies (JSON)")
    parser.add_argument("--report", action="store_true", help="run nothing: summarize the --compare files")
    parser.add_argument("--compare", type=Path, action="append", default=[],
                        help="saved searches (--out) shown beside these, e.g. random's")
    args = parser.parse_args(argv)
    folder = RESULTS / f"{args.model}-reproduction"
    if args.export:
        extra = [p for p in sorted(RESULTS.glob(f"{args.model}-reproduction-*")) if p.is_dir()]
        out = data_file(args.model)
        print(f"{export([folder, *extra], out)} distinct trials → {out.relative_to(ROOT)}")
        return 0
    if args.fidelity:
        print(fidelity(folder, args.model))
        return 0
    results: list[dict[str, Any]] = []
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    tasks = [] if args.report else [(s, seed) for s in args.strategies for seed in seeds]
    if tasks:
        with ProcessPoolExecutor(args.jobs) as pool:
            results = list(pool.map(search, *zip(*tasks, strict=True), [args.model] * len(tasks),
                                    [args.evals] * len(tasks)))
    if args.out:
        args.out.write_text(json.dumps(results) + "\n")
    for path in args.compare:  # a strategy already shown is labelled with its file's name
        shown = {r["strategy"] for r in results}
        results += [{**r, "strategy": f"{r['strategy']} ({path.stem})" if r["strategy"] in shown else r["strategy"]}
                    for r in json.loads(path.read_text())]
    expert_file = folder / "expert.json"
    expert = (np.mean([r["accuracy"] for r in json.loads(expert_file.read_text())["runs"]])
              if expert_file.exists() else 0.967)
    print(summary(results, float(expert)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
