"""A CPU-sized reproduction of the seed's Table 1 / Figure 3: All-CNN-C tuned by `bayes` vs `random`
vs the expert defaults, at equal numbers of evaluations.

    .venv/bin/python bench/allcnn_reproduction.py                    # run (resumes), plot, table
    .venv/bin/python bench/allcnn_reproduction.py --report-only      # redo plot and table from results

Strategies: ``bayes`` (defaults), ``bayes:initialTrials=5`` (a suggester's settings after the
colon) and ``random``.

Setup: the search space of examples/allcnn-cifar10.yaml (the seed's nine hyperparameters and
ranges, exactly), All-CNN-C at width 0.25 on scikit-learn's digits at 12×12, ``--epoch-scale 0.01`` (the
seed's 50–500 epochs become 1–5 real epochs, schedules keep their shape; see
trainer-image/train.py). Each (algorithm, seed) run asks its suggester for one assignment at a
time through ``kubetune.suggest.get_suggester(name).suggest(SuggestRequest(...))`` and trains it
in-process; a diverged trial is a failed observation (``loss=None``), as in a real experiment.
The expert is the trainer's default All-CNN-C setting, trained with the same seeds.

Each strategy (``expert``, ``bayes``, ``random``) runs in its own process (``--jobs`` at once) and
saves ``bench/results/allcnn-reproduction/<strategy>.json`` after every run, so an interrupted
benchmark resumes where it stopped and a strategy can be rerun alone by deleting its file. The
plot goes to ``docs/img/allcnn-reproduction.png`` and the table to
the ``## All-CNN reproduction`` section of ``docs/benchmarks.md`` (other sections are left alone).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from kubetune.api import Experiment, Params
from kubetune.space import Space
from kubetune.suggest import Observation, SuggesterError, SuggestRequest, get_suggester

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "trainer-image"))
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))  # run as a script: bench.* from the repository root

import train  # noqa: E402 - the trainer, imported from trainer-image/
from bench.common import parse_algorithm, replace_section  # noqa: E402

EXAMPLE = ROOT / "examples" / "allcnn-digits.yaml"
#: The seed's nine hyperparameters and ranges, exactly (the digits example narrows two of them).
SPACE = ROOT / "examples" / "allcnn-cifar10.yaml"
RESULTS = ROOT / "bench" / "results" / "allcnn-reproduction"
PLOT = ROOT / "docs" / "img" / "allcnn-reproduction.png"
DOC = ROOT / "docs" / "benchmarks.md"
HEADING = "## All-CNN reproduction"
#: Ten classes: a finished trial below this accuracy learned nothing.
CHANCE = 0.15


def options(args: argparse.Namespace, seed: int) -> train.Options:
    return train.Options(model="allcnn", dataset="digits", image_size=args.image_size, width=args.width,
                         batch_size=args.batch_size, epoch_scale=args.epoch_scale, seed=seed,
                         threads=args.threads, device="cpu")


def hyperparams(params: Params) -> train.HyperParams:
    base = train.EXPERT_DEFAULTS["allcnn"]
    values = {k: (int(v) if k in train.INT_PARAMS else float(v)) for k, v in params.items()}
    return replace(base, **values)


def evaluate(hp: train.HyperParams, opts: train.Options, splits: Any) -> tuple[float | None, float]:
    """(validation accuracy or None when diverged, seconds)."""
    start = time.perf_counter()
    try:
        accuracy = train.train(hp, opts, progress=None, splits=splits).accuracy
    except train.Diverged:
        accuracy = None
    return accuracy, time.perf_counter() - start


def run_search(algorithm: str, seed: int, space: Space, args: argparse.Namespace, splits: Any) -> dict[str, Any]:
    name, settings = parse_algorithm(algorithm)
    suggester = get_suggester(name)
    suggester.check_settings(settings, space)
    observations: list[Observation] = []
    state: dict[str, Any] = {}
    accuracies: list[float | None] = []
    seconds = suggest_seconds = 0.0
    for index in range(args.evals):
        t0 = time.perf_counter()
        suggestion = suggester.suggest(SuggestRequest(space=space, observations=observations, pending=[], n=1,
                                                      seed=seed, start_index=index, state=state,
                                                      settings=settings))
        suggest_seconds += time.perf_counter() - t0
        state = suggestion.state
        params = suggestion.params[0]
        accuracy, took = evaluate(hyperparams(params), options(args, seed), splits)
        seconds += took
        accuracies.append(accuracy)
        observations.append(Observation(params, None if accuracy is None else -accuracy))
        shown = "diverged" if accuracy is None else f"{accuracy:.4f}"
        print(f"  {algorithm} seed={seed} eval {index + 1}/{args.evals}: {shown} ({took:.1f}s)", flush=True)
    return {"algorithm": algorithm, "seed": seed, "accuracies": accuracies,
            "train_seconds": round(seconds, 1), "suggest_seconds": round(suggest_seconds, 2)}


def best_so_far(accuracies: list[float | None]) -> list[float]:
    """Best accuracy after each evaluation (chance level 0.1 until one succeeds)."""
    best, trace = 0.1, []
    for accuracy in accuracies:
        if accuracy is not None:
            best = max(best, accuracy)
        trace.append(best)
    return trace


def mean_std(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.4f}" if values else "—"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def table(results: dict[str, Any]) -> str:
    expert = [r["accuracy"] for r in results["expert"]]
    expert_mean = statistics.mean(expert)
    evals = results["config"]["evals"]
    half = max(1, evals // 2)
    lines = [
        f"| strategy | best accuracy after {half} evals | after {evals} evals | "
        f"evals to match expert (median; seeds that did) | diverged trials | finished at chance (< {CHANCE}) "
        "| mean eval time |",
        "|---|---|---|---|---|---|---|",
        f"| expert defaults | {mean_std(expert)} (1 eval) | — | — | "
        f"{sum(1 for r in results['expert'] if r['accuracy'] is None)}/{len(expert)} | "
        f"{sum(1 for a in expert if a < CHANCE)}/{len(expert)} | "
        f"{statistics.mean(r['seconds'] for r in results['expert']):.1f} s |",
    ]
    for algorithm in results["config"]["algorithms"]:
        runs = [r for r in results["runs"] if r["algorithm"] == algorithm]
        if not runs:
            continue
        traces = [best_so_far(r["accuracies"]) for r in runs]
        needed = [next((i + 1 for i, v in enumerate(t) if v >= expert_mean), None) for t in traces]
        matched = [n for n in needed if n is not None]
        median = f"{statistics.median(matched):g}" if matched else "never"
        failed = sum(a is None for r in runs for a in r["accuracies"])
        at_chance = sum(a is not None and a < CHANCE for r in runs for a in r["accuracies"])
        total = sum(len(r["accuracies"]) for r in runs)
        per_eval = sum(r["train_seconds"] + r["suggest_seconds"] for r in runs) / total
        lines.append(
            f"| {algorithm} | {mean_std([t[half - 1] for t in traces])} | {mean_std([t[-1] for t in traces])} | "
            f"{median}; {len(matched)}/{len(runs)} | {failed}/{total} | {at_chance}/{total - failed} | "
            f"{per_eval:.1f} s |"
        )
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)", file=sys.stderr)
        return False
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    evals = results["config"]["evals"]
    x = list(range(1, evals + 1))
    for algorithm in results["config"]["algorithms"]:
        traces = [best_so_far(r["accuracies"]) for r in results["runs"] if r["algorithm"] == algorithm]
        if not traces:
            continue
        errors = [[1 - v for v in t] for t in traces]
        mean = [statistics.mean(col) for col in zip(*errors, strict=True)]
        se = [statistics.stdev(col) / math.sqrt(len(col)) if len(col) > 1 else 0.0
              for col in zip(*errors, strict=True)]
        line, = ax.plot(x, mean, label=f"{algorithm} ({len(traces)} seeds)")
        ax.fill_between(x, [m - s for m, s in zip(mean, se, strict=True)],
                        [m + s for m, s in zip(mean, se, strict=True)], color=line.get_color(), alpha=0.2)
    expert = [r["accuracy"] for r in results["expert"] if r["accuracy"] is not None]
    if expert:
        ax.axhline(1 - statistics.mean(expert), color="black", linestyle="--", label="expert defaults")
    ax.set_xlabel("function evaluations (trained networks)")
    ax.set_ylabel("best validation error so far")
    config = results["config"]
    ax.set_title(f"All-CNN-C on digits {config['image_size']}px, width {config['width']}, "
                 f"epochs ×{config['epoch_scale']}")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return True


def write_section(results: dict[str, Any], doc: Path, plotted: bool) -> None:
    config = results["config"]
    notes = results.get("notes", [])
    body = [
        HEADING,
        "",
        f"A CPU-sized version of the seed's Table 1 and Figure 3: All-CNN-C tuned over the seed's nine "
        f"hyperparameters and ranges (`{config['space']}`) by `bayes` and `random`, against the "
        "expert defaults of `trainer-image/train.py` (lr 0.01, momentum 0.9, weight decay 0.001, 350 epochs, "
        "lr ×0.1 at 4/7, 5/7, 6/7 of training, init std 0.05), at equal numbers of evaluations. "
        f"Data: scikit-learn's digits at {config['image_size']}×{config['image_size']} (1,438 train / 359 "
        f"validation images), width {config['width']}, batch {config['batch_size']}, epoch scale "
        f"{config['epoch_scale']} (the seed's 50–500 epochs → {max(1, round(50 * config['epoch_scale']))}–"
        f"{round(500 * config['epoch_scale'])}), CPU, {config['evals']} evaluations "
        f"per run, seeds {config['seeds']}. Accuracy is validation accuracy of the final model; a "
        "diverged trial counts as a failure (best-so-far stays at chance, 0.1, until a trial succeeds).",
        "",
        table(results),
        "",
        "*Evals to match expert*: the first evaluation whose best-so-far reaches the expert's mean "
        "accuracy, median over the seeds that reached it. `bayes` starts with a Sobol' design of "
        "max(5, 2d) = 18 points for these d = 9 parameters, so within 30 evaluations its model picks "
        "only the last 12; `bayes:initialTrials=5` lets the model take over after 5.",
        "",
    ]
    shares = []
    for algorithm in config["algorithms"]:
        accs = [a for r in results["runs"] if r["algorithm"] == algorithm for a in r["accuracies"]]
        if accs:
            useful = sum(a is not None and a >= CHANCE for a in accs)
            shares.append(f"`{algorithm}` {useful}/{len(accs)} ({100 * useful / len(accs):.0f}%)")
    if shares:
        body += ["Trials that learned something (finished, accuracy ≥ "
                 f"{CHANCE}): " + ", ".join(shares) + ". Random's share estimates how much of the seed's "
                 "space trains at all at this budget; a model-based search should raise it.", ""]
    body += ["Per seed (expert: accuracy; searches: best after all evaluations):", ""]
    expert_by_seed = sorted((r["seed"], r["accuracy"]) for r in results["expert"])
    body.append("- expert: " + ", ".join(f"{a:.3f}" if a is not None else "diverged" for _, a in expert_by_seed))
    for algorithm in config["algorithms"]:
        runs = sorted((r for r in results["runs"] if r["algorithm"] == algorithm), key=lambda r: r["seed"])
        body.append(f"- {algorithm}: " + ", ".join(f"{best_so_far(r['accuracies'])[-1]:.3f}" for r in runs))
    body.append("")
    if plotted:
        body += [f"![best-so-far validation error](img/{PLOT.name})", "",
                 "Best-so-far validation error, mean over seeds; shaded: ±1 standard error.", ""]
    body += [f"- {note}" for note in notes]
    body += ["", f"Rerun: `.venv/bin/python bench/allcnn_reproduction.py` ({config['host']}; "
             f"total {results.get('wall_minutes', 0):.0f} min).", ""]
    replace_section(doc, HEADING, "\n".join(body))


def load_results(folder: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Every strategy's runs recorded under ``folder`` with this ``config`` (others are ignored)."""
    results: dict[str, Any] = {"config": config, "runs": [], "expert": [], "notes": [], "wall_minutes": 0.0}
    for path in sorted(folder.glob("*.json")):
        part = json.loads(path.read_text())
        if _comparable(part["config"]) != _comparable(config):
            print(f"ignoring {path}: recorded with another setup", file=sys.stderr)
            continue
        runs = [r for r in part["runs"] if r["seed"] in config["seeds"]]
        if path.stem == "expert":
            results["expert"].extend(runs)
        elif path.stem in {strategy_file(a) for a in config["algorithms"]}:
            results["runs"].extend(runs)
        results["notes"].extend(n for n in part.get("notes", []) if n not in results["notes"])
        results["wall_minutes"] = max(results["wall_minutes"], part.get("wall_minutes", 0.0))
    return results


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    # Runs are recorded per seed, so asking for more seeds later resumes instead of starting over.
    return {k: v for k, v in config.items() if k not in ("algorithms", "host", "seeds")}


def strategy_file(strategy: str) -> str:
    return strategy.replace(":", "-").replace("=", "").replace(",", "-")


def run_strategy(strategy: str, args: argparse.Namespace, config: dict[str, Any]) -> None:
    """Run (or resume) every seed of one strategy, saving after each run."""
    path = args.results / f"{strategy_file(strategy)}.json"
    part: dict[str, Any] = {"config": _comparable(config), "runs": [], "notes": [], "wall_minutes": 0.0}
    if path.exists():
        previous = json.loads(path.read_text())
        if _comparable(previous["config"]) == part["config"]:
            part = previous
    experiment = Experiment.model_validate(yaml.safe_load(args.space.read_text()))
    space = Space(experiment.spec.parameters)
    splits = train.load_data(options(args, 0))
    started = time.perf_counter()
    for seed in config["seeds"]:
        if seed in {r["seed"] for r in part["runs"]}:
            continue
        if strategy == "expert":
            accuracy, took = evaluate(train.EXPERT_DEFAULTS["allcnn"], options(args, seed), splits)
            part["runs"].append({"seed": seed, "accuracy": accuracy, "seconds": round(took, 1)})
            print(f"expert seed={seed}: {accuracy} ({took:.1f}s)", flush=True)
        else:
            try:
                part["runs"].append(run_search(strategy, seed, space, args, splits))
            except SuggesterError as error:
                part["notes"].append(f"{strategy} skipped: {error}")
                print(part["notes"][-1], file=sys.stderr)
                break
        part["wall_minutes"] += (time.perf_counter() - started) / 60
        started = time.perf_counter()
        args.results.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(part, indent=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--algorithms", nargs="+", default=["bayes", "bayes:initialTrials=5", "random"],
                        help="suggester names, each optionally with settings: bayes:initialTrials=5")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--evals", type=int, default=30)
    parser.add_argument("--epoch-scale", type=float, default=0.01)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--image-size", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per strategy process")
    parser.add_argument("--jobs", type=int, default=3, help="strategies run at once, one process each")
    parser.add_argument("--space", type=Path, default=SPACE, help="Experiment file whose parameters to search")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of per-strategy results")
    parser.add_argument("--strategy", help=argparse.SUPPRESS)  # internal: run one strategy, no report
    parser.add_argument("--report-only", action="store_true", help="only redo the plot and the table")
    parser.add_argument("--no-doc", action="store_true", help="do not touch docs/ (plot nor table)")
    args = parser.parse_args(argv)

    config: dict[str, Any] = {k: getattr(args, k) for k in ("algorithms", "evals", "epoch_scale", "width",
                                                             "image_size", "batch_size", "threads")}
    config["seeds"] = list(range(args.seeds))
    config["space"] = str(args.space.resolve().relative_to(ROOT)) if args.space.resolve().is_relative_to(
        ROOT) else str(args.space)
    config["host"] = f"{os.cpu_count()} CPUs, torch {train.torch.__version__}, {args.threads} thread(s) each"
    if args.strategy:
        run_strategy(args.strategy, args, config)
        return 0
    if not args.report_only:
        strategies = ["expert", *args.algorithms]
        base = [a for a in (argv if argv is not None else sys.argv[1:]) if a not in ("--report-only", "--no-doc")]

        def spawn(strategy: str) -> int:
            command = [sys.executable, str(Path(__file__).resolve()), *base, "--strategy", strategy]
            return subprocess.run(command, check=False).returncode

        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            codes = list(pool.map(spawn, strategies))
        if any(codes):
            print(f"strategy processes exited with {codes}", file=sys.stderr)
            return 1
    results = load_results(args.results, config)
    print(table(results))
    if not args.no_doc:
        write_section(results, DOC, plot(results, PLOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
