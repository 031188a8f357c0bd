"""The seed's Table 1 / Figure 3 on a CPU: All-CNN-C (or a CIFAR ResNet) tuned over the seed's
hyperparameters and ranges by kubetune's suggesters and the peers, against the expert defaults.

    .venv/bin/python bench/allcnn_reproduction.py                        # All-CNN-C: run (resumes), plot, table
    .venv/bin/python bench/allcnn_reproduction.py --model resnet --seeds 5   # the ResNet variant (depth: 10th)
    .venv/bin/python bench/allcnn_reproduction.py --model resnet300 --seeds 5   # … on 300 training images
    .venv/bin/python bench/allcnn_reproduction.py --report-only          # redo plot and table from results
    .venv/bin/python bench/allcnn_reproduction.py --merge FOLDER         # add another machine's runs, report

Setup: the search space of ``examples/allcnn-cifar10.yaml`` (``resnet-cifar10.yaml`` for the
ResNet), the seed's ranges exactly; scikit-learn's digits at 12×12, width 0.25, batch 64, CPU, one
thread, ``--epoch-scale 0.06`` (the seed's 50–500 epochs become 3–30 real epochs; the schedules keep
their shape, see trainer-image/train.py; the ResNet 0.03, 2–15 epochs). Each (strategy, seed) run
drives its optimizer as the operator drives a suggester (``bench.parallel_sim``): 90 evaluations
(10 × d for d = 9), three at a time, the free slots refilled while the others run (kubetune's
suggesters get the running ones as pending). A diverged trial is a failed observation. The expert
is the trainer's default setting, trained with the same seeds.

Strategies: kubetune suggester names, optionally with settings after a colon
(``bayes:initialTrials=5``), and the peers of ``bench/peers.py`` (``optuna-tpe``, ``optuna-gp``,
``hebo``; install ``bench/requirements.txt``). Each strategy runs in its own process (``--jobs`` at
once) and saves ``bench/results/<model>-reproduction/<strategy>.json`` after every seed, so an
interrupted benchmark resumes and one strategy can be rerun by deleting its file. These files are
committed: the tables are regenerated from them, seeds run on several machines or days add up
(``--merge`` adds another ``--results`` folder's runs, joined by seed), and
each run records the kubetune commit it was made with and its machine (CPU, BLAS kernel, torch
kernel: `bench.common.machine`). ``notes.md`` in the same folder (a Markdown
list, written by hand) goes under the tables. The plot goes to
``docs/img/<model>-reproduction.png``, the tables to the model's section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import yaml  # noqa: E402

from kubetune.api import Experiment, Params  # noqa: E402
from kubetune.suggest import SuggesterError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "trainer-image"))
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))  # run as a script: bench.* from the repository root

import train  # noqa: E402 - the trainer, imported from trainer-image/
from bench import parallel_sim, peers  # noqa: E402
from bench.common import machine  # noqa: E402
from bench.reproduction_report import (  # noqa: E402
    MODELS,
    comparable,
    load_results,
    merge_results,
    plot,
    save_part,
    strategy_file,
    table,
    targets,
    write_section,
)

DOC = ROOT / "docs" / "benchmarks.md"
STRATEGIES = ["bayes", "random", "optuna-tpe", "optuna-gp", "hebo"]


def trainer_model(name: str) -> str:
    """The trainer's ``--model`` of a benchmark model (``resnet300`` trains a ``resnet``)."""
    return str(MODELS.get(name, {}).get("trainer", name))


def options(args: argparse.Namespace, seed: int) -> train.Options:
    return train.Options(model=trainer_model(getattr(args, "model", "allcnn")), dataset="digits",
                         image_size=args.image_size,
                         train_size=getattr(args, "train_size", 0),
                         width=args.width, batch_size=args.batch_size, epoch_scale=args.epoch_scale, seed=seed,
                         threads=args.threads, device="cpu")


def hyperparams(params: Params, model: str = "allcnn") -> train.HyperParams:
    base = train.EXPERT_DEFAULTS[trainer_model(model)]
    values = {k: (int(v) if k in train.INT_PARAMS else float(v)) for k, v in params.items()}
    return replace(base, **values)


def evaluate(hp: train.HyperParams, opts: train.Options, splits: Any) -> parallel_sim.Evaluation:
    """Train once: accuracy (None when diverged), the real epochs it took, the wall seconds."""
    start = time.perf_counter()
    try:
        result = train.train(hp, opts, progress=None, splits=splits)
    except train.Diverged as diverged:
        return parallel_sim.Evaluation(None, diverged.epoch, time.perf_counter() - start)
    return parallel_sim.Evaluation(result.accuracy, result.epochs_run, time.perf_counter() - start)


def run_search(strategy: str, seed: int, parameters: list[Any], args: argparse.Namespace,
               splits: Any) -> dict[str, Any]:
    optimizer = peers.make(strategy, parameters, seed)
    opts = options(args, seed)
    count = 0

    def evaluate_one(params: Params) -> parallel_sim.Evaluation:
        nonlocal count
        result = evaluate(hyperparams(params, args.model), opts, splits)
        count += 1
        shown = "diverged" if result.accuracy is None else f"{result.accuracy:.4f}"
        print(f"  {strategy} seed={seed} trial {count}/{args.evals}: {shown} "
              f"({result.epochs} epochs, {result.seconds:.1f}s)", flush=True)
        return result

    finished, ask_seconds = parallel_sim.run(optimizer, evaluate_one, evals=args.evals, parallel=args.parallel)
    return {"seed": seed, "trials": [f.to_json() for f in finished], "ask_seconds": round(ask_seconds, 2),
            "train_seconds": round(sum(f.seconds for f in finished), 1)}


# --- running -------------------------------------------------------------------------------------


def _commit() -> str:
    """The kubetune commit a run was made with (``+dirty`` with uncommitted changes), for the record."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no",
                                "operator"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def run_strategy(strategy: str, args: argparse.Namespace, config: dict[str, Any]) -> None:
    """Run (or resume) every seed of one strategy, saving after each."""
    path = args.results / f"{strategy_file(strategy)}.json"
    part: dict[str, Any] = {"config": comparable(config), "runs": [], "notes": [], "wall_minutes": 0.0}
    if path.exists():
        previous = json.loads(path.read_text())
        if comparable(previous["config"]) == part["config"]:
            part = previous
    experiment = Experiment.model_validate(yaml.safe_load(args.space.read_text()))
    parameters = list(experiment.spec.parameters)
    splits = train.load_data(options(args, 0))
    commit = _commit()  # the code this process loaded, not what HEAD may be by the time a seed ends
    started = time.perf_counter()
    for seed in config["seeds"]:
        if seed in {r["seed"] for r in part["runs"]}:
            continue
        if strategy == "expert":
            result = evaluate(train.EXPERT_DEFAULTS[trainer_model(args.model)], options(args, seed), splits)
            part["runs"].append({"seed": seed, "accuracy": result.accuracy, "epochs": result.epochs,
                                 "seconds": round(result.seconds, 1)})
            print(f"expert seed={seed}: {result.accuracy} ({result.seconds:.1f}s)", flush=True)
        else:
            try:
                part["runs"].append({**run_search(strategy, seed, parameters, args, splits), "commit": commit,
                                     "machine": machine()})
            except (SuggesterError, ImportError) as error:
                part["notes"].append(f"{strategy} skipped: {type(error).__name__}: {error}")
                print(part["notes"][-1], file=sys.stderr)
                break
        part["wall_minutes"] += (time.perf_counter() - started) / 60
        started = time.perf_counter()
        save_part(path, part)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="allcnn")
    parser.add_argument("--algorithms", nargs="+", default=STRATEGIES,
                        help="strategies: kubetune suggesters (with settings: bayes:initialTrials=5) and peers")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default: 10, ResNet 5)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="start the seeds here (two machines or shells can share the seeds)")
    parser.add_argument("--evals", type=int, default=90)
    parser.add_argument("--parallel", type=int, default=3, help="trials at a time (parallelTrials)")
    parser.add_argument("--epoch-scale", type=float, default=None, help="default: All-CNN 0.06, ResNet 0.03")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--image-size", type=int, default=12)
    parser.add_argument("--train-size", type=int, default=None,
                        help="train on the first N of digits' 1,438 training images (default: all; resnet300 300)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per strategy process")
    parser.add_argument("--jobs", type=int, default=2, help="strategies run at once, one process each")
    parser.add_argument("--results", type=Path, default=None, help="folder of per-strategy results")
    parser.add_argument("--strategy", help=argparse.SUPPRESS)  # internal: run one strategy, no report
    parser.add_argument("--report-only", action="store_true", help="only redo the plot and the tables")
    parser.add_argument("--no-doc", action="store_true", help="do not touch docs/ (plot nor tables)")
    parser.add_argument("--merge", type=Path, metavar="FOLDER",
                        help="add the runs recorded in FOLDER (another --results) to the results, then report")
    parser.add_argument("--note", action="append", default=[], help="a line added under the tables (with the doc)")
    args = parser.parse_args(argv)
    model = MODELS[args.model]
    args.space = model["space"]
    args.epoch_scale = args.epoch_scale if args.epoch_scale is not None else model["epoch_scale"]
    args.train_size = args.train_size if args.train_size is not None else model.get("train_size", 0)
    args.results = args.results or ROOT / "bench" / "results" / f"{args.model}-reproduction"
    seeds = args.seeds if args.seeds is not None else model["seeds"]

    config: dict[str, Any] = {k: getattr(args, k) for k in ("model", "algorithms", "evals", "parallel",
                                                             "epoch_scale", "width", "image_size", "batch_size",
                                                             "threads")}
    if args.train_size:  # recorded only when set, so the runs made before the option stay comparable
        config["train_size"] = args.train_size
    config["seeds"] = list(range(args.first_seed, args.first_seed + seeds))
    config["space"] = str(args.space.relative_to(ROOT))
    config["host"] = f"{os.cpu_count()} CPUs, torch {train.torch.__version__}, {args.threads} thread(s) each"
    if args.strategy:
        run_strategy(args.strategy, args, config)
        return 0
    if args.merge:
        print("\n".join(merge_results(args.merge, args.results)))
    elif not args.report_only:
        base = [a for a in (argv if argv is not None else sys.argv[1:]) if a not in ("--report-only", "--no-doc")]

        def spawn(strategy: str) -> int:
            command = [sys.executable, str(Path(__file__).resolve()), *base, "--strategy", strategy]
            return subprocess.run(command, check=False).returncode

        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            codes = list(pool.map(spawn, ["expert", *args.algorithms]))
        if any(codes):
            print(f"strategy processes exited with {codes}", file=sys.stderr)
            return 1
    results = load_results(args.results, config)
    results["notes"] += args.note
    print(table(results))
    print("\n".join(targets(results)))
    if not args.no_doc:
        name = f"{args.model}-reproduction.png"
        plotted = plot(results, ROOT / "docs" / "img" / name, model["title"])
        write_section(results, DOC, name if plotted else None, heading=model["heading"], title=model["title"],
                      seed_table=model["seed_table"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
