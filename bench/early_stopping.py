"""What early stopping saves: epochs until the best-so-far reaches the no-stopping run's final best.

    python -m bench.early_stopping --problem synthetic              # run (resumes), print the table
    python -m bench.early_stopping --problem allcnn                 # the same on real All-CNN-C training
    python -m bench.early_stopping --doc                            # plots and docs/benchmarks.md section

Each (proposer, seed) runs three modes through the simulated runner of :mod:`bench.stopping_sim`,
which drives kubetune's own ``lifecycle.plan`` and ``outcomes`` (``parallelTrials`` workers, one
epoch = one time unit):

* ``none``: ``maxTrials = N``, every trial trains ``maxSteps`` epochs (a budget of ``N·maxSteps``
  epochs, at most);
* ``median``: ``earlyStopping: {rule: median, minSteps: 3, minTrials: 3}``;
* ``asha``: ``earlyStopping: {rule: asha, minSteps: 1, maxSteps, reductionFactor: 3, minTrials: 3}``
  (rungs 1, 3, 9 for maxSteps 27).

The stopping modes get the same epoch budget ``N·maxSteps`` spent on more trials: ``maxTrials =
k·N`` (``--trials-factor``, default 4), and the run is cut when the budget is spent. The measure:
the epochs consumed (by all trials: stopped and failed ones too) until the best Succeeded trial
first reaches the final best of the ``none`` run of the same proposer and seed; also each mode's
final best, trials run, epochs per trial.

Problems: ``synthetic`` (:mod:`bench.synthetic_curves`, cheap) and ``allcnn`` (All-CNN-C on
scikit-learn's digits, trained by ``trainer-image/train.py`` lazily epoch by epoch with every
configuration's curve cached, :mod:`bench.allcnn_curves`: a stopped trial costs only the epochs it
ran, a configuration proposed again reuses its cached prefix; ``epochs`` counts what each mode
would have trained). Results go to ``bench/results/early-stopping/<problem>.json`` after every run,
so a run that is interrupted resumes. The summary, tables, plots and docs section are in
:mod:`bench.early_stopping_report`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from bench.common import parse_algorithm
from bench.early_stopping_report import (
    DOC,
    MODES,
    NOTES,
    PROBLEMS,
    RESULTS,
    ROOT,
    TRIALS_FACTOR,
    curves_path,
    plot,
    summarize,
    table,
    write_doc,
)
from bench.stopping_sim import simulate
from kubetune.api import Experiment, Params


def stopping_block(mode: str, max_steps: int) -> dict[str, Any] | None:
    """The ``earlyStopping`` block of a mode (``median:minSteps=1`` overrides a setting)."""
    rule, overrides = parse_algorithm(mode)
    if rule == "none":
        return None
    if rule == "median":
        block: dict[str, Any] = {"rule": "median", "minSteps": 3, "minTrials": 3}
    elif rule == "asha":
        block = {"rule": "asha", "minSteps": 1, "maxSteps": max_steps, "reductionFactor": 3, "minTrials": 3}
    else:
        raise SystemExit(f"unknown mode {mode!r}: use none, median or asha (optionally median:minSteps=2)")
    block.update(overrides)
    return block


def experiment(*, parameters: list[dict[str, Any]], container: dict[str, Any], proposer: str, mode: str,
               seed: int, trials: int, parallel: int, max_steps: int, factor: int,
               additional_metrics: Sequence[str] = ()) -> Experiment:
    name, settings = parse_algorithm(proposer)
    algorithm: dict[str, Any] = {"name": name, "seed": seed}
    if settings:
        algorithm["settings"] = settings
    objective: dict[str, Any] = {"metric": "accuracy", "goal": "maximize"}
    if additional_metrics:
        objective["additionalMetrics"] = list(additional_metrics)
    block = stopping_block(mode, max_steps)
    spec: dict[str, Any] = {
        "objective": objective,
        "algorithm": algorithm,
        "maxTrials": trials if block is None else factor * trials,
        "parallelTrials": parallel,
        "parameters": parameters,
        "trialTemplate": {"spec": {"template": {"spec": {"containers": [container]}}}},
    }
    if block is not None:
        spec["earlyStopping"] = block
    return Experiment.model_validate({"apiVersion": "kubetune.io/v1alpha1", "kind": "Experiment",
                                      "metadata": {"name": f"bench-{name}-{parse_algorithm(mode)[0]}"},
                                      "spec": spec})


# --- problems ------------------------------------------------------------------------------------


class Problem:
    """A search space and, per seed, an epoch function for the simulator."""

    name: str
    parameters: list[dict[str, Any]]
    container: dict[str, Any]
    additional_metrics: tuple[str, ...] = ()

    def epoch_fn(self, seed: int) -> Callable[[Params, int], Any]:
        raise NotImplementedError

    def seed_done(self, seed: int) -> None:
        """Everything of ``seed`` has run (free what it held)."""

    def describe(self) -> dict[str, Any]:
        return {}


class Synthetic(Problem):
    name = "synthetic"

    def __init__(self, args: argparse.Namespace) -> None:
        from bench import synthetic_curves

        self.curves = synthetic_curves
        self.parameters = synthetic_curves.PARAMETERS
        self.container = {"name": "train", "image": "kubetune/trainer:dev",
                          "command": ["python", "synthetic.py"]}  # not run: the simulator trains

    def epoch_fn(self, seed: int) -> Callable[[Params, int], Any]:
        return self.curves.SyntheticCurves(seed)


class AllCnn(Problem):
    """All-CNN-C on digits: the digits example's space, ``epochs`` fixed so every trial trains maxSteps."""

    name = "allcnn"
    additional_metrics = ("loss",)
    EXAMPLE = ROOT / "examples" / "allcnn-digits.yaml"
    NOMINAL_EPOCHS = 350  # the expert default: schedules run on its clock

    def __init__(self, args: argparse.Namespace) -> None:
        from bench import allcnn_curves, allcnn_reproduction

        self.repro = allcnn_reproduction
        example = yaml.safe_load(self.EXAMPLE.read_text())
        self.parameters = [p for p in example["spec"]["parameters"] if p["name"] != "epochs"]
        container = example["spec"]["trialTemplate"]["spec"]["template"]["spec"]["containers"][0]
        self.container = {"name": container["name"], "image": container["image"], "command": container["command"]}
        self.args = argparse.Namespace(image_size=args.image_size, width=args.width, batch_size=args.batch_size,
                                       epoch_scale=args.max_steps / self.NOMINAL_EPOCHS, threads=args.threads)
        train = allcnn_reproduction.train
        hp = self.repro.hyperparams({})
        if train.real_epochs(hp, self.args.epoch_scale) != args.max_steps:
            raise SystemExit(f"epoch scale {self.args.epoch_scale} does not give {args.max_steps} real epochs")
        splits = train.load_data(self.repro.options(self.args, 0))
        self.lazy = allcnn_curves.LazyCurves(curves_path(args.results, config_of(args)), self._run, splits)

    def _run(self, seed: int, params: Params) -> tuple[Any, Any]:
        return self.repro.hyperparams(params), self.repro.options(self.args, seed)

    def epoch_fn(self, seed: int) -> Callable[[Params, int], Any]:
        return lambda params, e: self.lazy.epoch(seed, params, e)

    def seed_done(self, seed: int) -> None:
        self.lazy.close_all()

    def describe(self) -> dict[str, Any]:
        train = self.repro.train
        cached = sum(len(e["points"]) + (e["diverged"] is not None) for e in self.lazy.cache.values())
        return {"cached_epochs": cached, "trained_epochs_this_process": self.lazy.trained,
                "replayed_epochs": self.lazy.replayed, "mismatches": self.lazy.mismatches,
                "torch": train.torch.__version__}


# --- running -------------------------------------------------------------------------------------


def config_of(args: argparse.Namespace) -> dict[str, Any]:
    config = {k: getattr(args, k) for k in ("problem", "trials", "parallel", "max_steps", "trials_factor")}
    config["early_stopping"] = {mode: stopping_block(mode, args.max_steps) for mode in args.modes}
    if args.problem == "allcnn":
        config.update({k: getattr(args, k) for k in ("image_size", "width", "batch_size", "threads")})
    return config


def results_path(args: argparse.Namespace) -> Path:
    """``<problem>.json`` at the problem's default N and factor, else ``<problem>-n<N>[-k<k>].json`` (a sweep)."""
    if args.trials == PROBLEMS[args.problem]["trials"] and args.trials_factor == TRIALS_FACTOR:
        return Path(args.results) / f"{args.problem}.json"
    suffix = f"-k{args.trials_factor}" if args.trials_factor != TRIALS_FACTOR else ""
    return Path(args.results) / f"{args.problem}-n{args.trials}{suffix}.json"


def run(args: argparse.Namespace) -> dict[str, Any]:
    path = results_path(args)
    config = config_of(args)
    results: dict[str, Any] = {"config": config, "runs": [], "wall_seconds": 0.0}
    if path.exists():
        previous = json.loads(path.read_text())
        if previous["config"] == config:
            results = previous
        else:
            raise SystemExit(f"{path} was recorded with another setup ({previous['config']}); move it away first")
    done = {(r["proposer"], r["mode"], r["seed"]) for r in results["runs"]}
    problem: Problem = Synthetic(args) if args.problem == "synthetic" else AllCnn(args)
    budget = args.trials * args.max_steps
    for seed in args.seed_list:
        for proposer in args.proposers:
            for mode in args.modes:
                if (proposer, mode, seed) in done:
                    continue
                exp = experiment(parameters=problem.parameters, container=problem.container, proposer=proposer,
                                 mode=mode, seed=seed, trials=args.trials, parallel=args.parallel,
                                 max_steps=args.max_steps, factor=args.trials_factor,
                                 additional_metrics=problem.additional_metrics)
                started = time.perf_counter()
                outcome = simulate(exp, problem.epoch_fn(seed), max_steps=args.max_steps,
                                   epoch_budget=None if mode == "none" else budget)
                seconds = time.perf_counter() - started
                best = outcome.trace[-1][2] if outcome.trace else None
                results["runs"].append({"proposer": proposer, "mode": mode, "seed": seed,
                                        "seconds": round(seconds, 2), **outcome.to_json()})
                results["wall_seconds"] += seconds
                results["machine"] = {"cpus": os.cpu_count(), **problem.describe()}
                save(path, results)
                shown = "—" if best is None else f"{best:.4f}"
                print(f"{args.problem} {proposer} {mode} seed={seed}: {len(outcome.trials)} trials, "
                      f"{outcome.epochs} epochs, best {shown}, ended {outcome.ended} ({seconds:.1f}s)", flush=True)
        problem.seed_done(seed)
    return results


def save(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, separators=(",", ":")))
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problem", choices=sorted(PROBLEMS), help="run this problem (resumes)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default: the problem's)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--proposers", nargs="+", default=None,
                        help="suggesters, optionally with settings: bayes:initialTrials=5")
    parser.add_argument("--modes", nargs="+", default=list(MODES))
    parser.add_argument("--trials", type=int, default=None, help="N: maxTrials without stopping")
    parser.add_argument("--parallel", type=int, default=None, help="parallelTrials")
    parser.add_argument("--max-steps", type=int, default=27, help="epochs of a trial that is not stopped")
    parser.add_argument("--trials-factor", type=int, default=TRIALS_FACTOR, help="maxTrials with stopping = this × N")
    parser.add_argument("--image-size", type=int, default=12)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--doc", action="store_true", help="write docs/benchmarks.md's section and the plots")
    parser.add_argument("--doc-path", type=Path, default=DOC, help=argparse.SUPPRESS)
    parser.add_argument("--img-dir", type=Path, default=ROOT / "docs" / "img", help=argparse.SUPPRESS)
    parser.add_argument("--note", action="append", default=[], help="a paragraph added to the verdict (with --doc)")
    args = parser.parse_args(argv)
    if args.problem is None and not args.doc:
        parser.error("give --problem to run one, or --doc to write the docs from the results")
    if args.problem is not None:
        defaults = PROBLEMS[args.problem]
        args.trials = args.trials or defaults["trials"]
        args.parallel = args.parallel or defaults["parallel"]
        args.proposers = args.proposers or defaults["proposers"]
        args.seed_list = list(range(args.first_seed, args.first_seed + (args.seeds or defaults["seeds"])))
        if "none" not in args.modes:
            args.modes = ["none", *args.modes]
        results = run(args)
        print(table(summarize(results)))
    if args.doc:
        parts = []
        for name in PROBLEMS:
            path = args.results / f"{name}.json"
            if not path.exists():
                continue
            results = json.loads(path.read_text())
            sweep = [json.loads(p.read_text()) for p in sorted(args.results.glob(f"{name}-n*.json")) if p.is_file()]
            image = args.img_dir / f"early-stopping-{name}.png"
            parts.append((results, image if plot(results, summarize(results), image) else None, sweep))
        notes = NOTES.read_text().strip().split("\n\n") if NOTES.exists() else []
        write_doc(parts, [*notes, *args.note], args.doc_path, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
