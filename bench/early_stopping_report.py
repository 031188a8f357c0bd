"""The early-stopping benchmark's report: the summary of recorded runs, the tables, the plots and
the docs section, and the setup facts the runs and the report share (problems, modes, paths).

numpy and matplotlib only (no torch, no kubetune), so ``--doc`` runs anywhere; ``bench.early_stopping``
runs the experiments.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import replace_section
from bench.stopping_sim import best_at, epochs_to_reach

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "early-stopping"
DOC = ROOT / "docs" / "benchmarks.md"
#: The verdict and its reasons, written against the recorded results; --doc puts it under the tables.
NOTES = ROOT / "bench" / "early_stopping_verdict.md"
HEADING = "## Early stopping"
MODES = ("none", "median", "asha")
#: maxTrials with stopping = this × N (see the docs section for why 4)
TRIALS_FACTOR = 4
CHANCE = 0.1

PROBLEMS: dict[str, dict[str, Any]] = {
    "synthetic": {"trials": 20, "parallel": 3, "max_steps": 27, "seeds": 20,
                  "proposers": ["bayes", "random"], "title": "Synthetic learning curves"},
    "allcnn": {"trials": 10, "parallel": 3, "max_steps": 27, "seeds": 10,
               "proposers": ["bayes:initialTrials=5", "random"], "title": "All-CNN-C on digits"},
}
#: Images in the digits validation split (the All-CNN accuracies are multiples of 1/359).
DIGITS_VALIDATION = 359
SYNTHETIC_NOISE = 0.01  # bench.synthetic_curves.NOISE (not imported: that module needs numpy only, but
# this one is imported by the docs step alone too)


def tolerance(problem: str, target: float) -> float:
    """δ, the noise of one final accuracy: the synthetic noise, or the binomial standard error on digits."""
    if problem == "synthetic":
        return SYNTHETIC_NOISE
    return math.sqrt(max(target * (1 - target), 0.0) / DIGITS_VALIDATION)


def curves_path(results: Path, config: dict[str, Any]) -> Path:
    """The All-CNN curve cache of a setup."""
    tag = (f"{config['image_size']}px-w{config['width']}-b{config['batch_size']}-e{config['max_steps']}"
           f"-t{config['threads']}")
    return results / f"allcnn-curves-{tag}.json"


# --- summary -------------------------------------------------------------------------------------


def _final(run: dict[str, Any]) -> float | None:
    return run["trace"][-1][2] if run["trace"] else None


def _started(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in run["trials"] if t["epochs"] > 0]


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """Per (proposer, mode): the per-seed numbers the table and the plot are made of."""
    runs = {(r["proposer"], r["mode"], r["seed"]): r for r in results["runs"]}
    problem = results["config"]["problem"]
    proposers = list(dict.fromkeys(r["proposer"] for r in results["runs"]))
    modes = [m for m in MODES if any(r["mode"] == m for r in results["runs"])]
    modes += [m for m in dict.fromkeys(r["mode"] for r in results["runs"]) if m not in modes]
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for proposer in proposers:
        seeds = sorted(s for (p, m, s) in runs if p == proposer and m == "none"
                       and all((p, mode, s) in runs for mode in modes) and _final(runs[(p, m, s)]) is not None)
        for mode in modes:
            row: dict[str, Any] = {"seeds": seeds, "to_target": [], "to_near": [], "final": [], "target": [],
                                   "trials": [], "epochs": [], "per_trial": [], "stopped": [], "failed": [],
                                   "time": []}
            for seed in seeds:
                r, base = runs[(proposer, mode, seed)], runs[(proposer, "none", seed)]
                target = _final(base)
                assert target is not None
                row["target"].append(target)
                row["to_target"].append(epochs_to_reach(r["trace"], target))
                row["to_near"].append(epochs_to_reach(r["trace"], target - tolerance(problem, target)))
                row["final"].append(_final(r))
                started = _started(r)
                row["trials"].append(len(started))
                row["epochs"].append(r["epochs"])
                row["per_trial"].append(r["epochs"] / max(1, len(started)))
                row["stopped"].append(sum(t["phase"] == "EarlyStopped" for t in started))
                row["failed"].append(sum(t["phase"] == "Failed" for t in started))
                row["time"].append(r["time"])
            rows[(proposer, mode)] = row
    for (proposer, _), row in rows.items():
        none = rows[(proposer, "none")]
        row["ratio"] = _ratios(none["to_target"], row["to_target"])
        row["ratio_near"] = _ratios(none["to_near"], row["to_near"])
        row["diff"] = [(f if f is not None else CHANCE) - t for f, t in zip(row["final"], row["target"], strict=True)]
    return {"proposers": proposers, "modes": modes, "rows": rows}


def _ratios(base: list[int | None], mode: list[int | None]) -> list[float]:
    """Per seed, the no-stopping epochs over the mode's (0 where the mode never got there)."""
    return [(b / a if a else math.inf) if a is not None and b is not None else 0.0
            for a, b in zip(mode, base, strict=True)]


def _median_to_target(values: list[int | None]) -> float:
    """Median with 'never reached' as +inf (it counts as more than any number of epochs)."""
    return statistics.median([math.inf if v is None else v for v in values]) if values else math.nan


def _fmt_epochs(value: float) -> str:
    return "not reached" if math.isinf(value) else f"{value:g}"


def _quartiles(values: Sequence[float | None]) -> tuple[float, float]:
    finite = [math.inf if v is None else v for v in values]
    q1, q3 = np.percentile(np.array(finite, dtype=float), [25, 75], method="inverted_cdf")
    return float(q1), float(q3)


def bootstrap_mean(values: list[float], draws: int = 4000) -> tuple[float, float]:
    """90 % bootstrap interval of the mean (seeds resampled with replacement)."""
    if not values:
        return math.nan, math.nan
    arr = np.array(values, dtype=float)
    idx = np.random.default_rng(0).integers(len(arr), size=(draws, len(arr)))
    lo, hi = np.percentile(arr[idx].mean(axis=1), [5, 95])
    return float(lo), float(hi)


def verdict(row: dict[str, Any], none: dict[str, Any], ratios: list[float]) -> bool:
    """Met when the median per-seed ratio is ≥ 3 and the final best is not worse beyond the noise."""
    ratio = statistics.median(ratios) if ratios else 0.0
    lo, _ = bootstrap_mean(row["diff"])
    spread = statistics.stdev(none["final"]) if len(none["final"]) > 1 else 0.0
    return ratio >= 3 and lo >= -spread / 2


def _reach_cells(values: list[int | None], ratios: list[float], base: list[int | None], n: int,
                 baseline: bool) -> list[str]:
    med = _median_to_target(values)
    q1, q3 = _quartiles(values)
    reached = sum(v is not None for v in values)
    if baseline:
        ratio = "1"
    else:
        of_medians = _median_to_target(base) / med if med and not math.isinf(med) else 0.0
        ratio = f"{statistics.median(ratios):.2f}× ({of_medians:.2f}×)"
    return [f"{_fmt_epochs(med)} [{_fmt_epochs(q1)}, {_fmt_epochs(q3)}]", f"{reached}/{n}", ratio]


def table(summary: dict[str, Any]) -> str:
    """Two tables: the epochs to reach the no-stopping best, then the final bests and the costs."""
    reach = [
        "| proposer | mode | seeds | epochs to reach the no-stopping best: median [IQR] | reached | "
        "ratio none/mode: median per seed (of the medians) | epochs to within δ of it | reached | ratio | "
        "≥ 3× at an equal best: strict / within δ |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    cost = [
        "| proposer | mode | final best: median [min, max] | final − no-stopping best: mean [90 % CI] | "
        "trials run | epochs per trial | epochs used | stopped / failed per run | wall time (epochs) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (proposer, mode), row in summary["rows"].items():
        none = summary["rows"][(proposer, "none")]
        n = len(row["seeds"])
        if not n:
            continue
        baseline = mode == "none"
        if baseline:
            met = "—"
        else:
            met = " / ".join("yes" if verdict(row, none, r) else "no" for r in (row["ratio"], row["ratio_near"]))
        cells = [proposer, mode, str(n),
                 *_reach_cells(row["to_target"], row["ratio"], none["to_target"], n, baseline),
                 *_reach_cells(row["to_near"], row["ratio_near"], none["to_near"], n, baseline), met]
        reach.append("| " + " | ".join(cells) + " |")
        finals = [f if f is not None else CHANCE for f in row["final"]]
        lo, hi = bootstrap_mean(row["diff"])
        cost.append(
            f"| {proposer} | {mode} | {statistics.median(finals):.4f} [{min(finals):.4f}, {max(finals):.4f}] | "
            f"{statistics.mean(row['diff']):+.4f} [{lo:+.4f}, {hi:+.4f}] | {statistics.median(row['trials']):g} | "
            f"{statistics.mean(row['per_trial']):.1f} | {statistics.median(row['epochs']):g} | "
            f"{statistics.mean(row['stopped']):.1f} / {statistics.mean(row['failed']):.1f} | "
            f"{statistics.median(row['time']):g} |")
    return "\n".join(reach) + "\n\n" + "\n".join(cost)


def _key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


def floor_lines(results: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    """The ratio's ceiling: no trial can finish before parallelTrials × maxSteps epochs are consumed."""
    config = results["config"]
    floor = config["parallel"] * config["max_steps"]
    lines = []
    for proposer in summary["proposers"]:
        none = summary["rows"][(proposer, "none")]["to_target"]
        if not none:
            continue
        bound = statistics.median([(v or 0) / floor for v in none])
        lines.append(f"{proposer}: no run can finish a trial before {config['parallel']} workers × "
                     f"{config['max_steps']} epochs = {floor} epochs are consumed, so a seed's ratio is at most its "
                     f"no-stopping epochs to the best over {floor}: median {bound:.2f}× "
                     f"({sum(v == floor for v in none)} of {len(none)} seeds reach their best at the floor, where "
                     "no rule can save anything).")
    return lines


def _asha_rungs(block: dict[str, Any]) -> list[int]:
    found, step = [], block.get("minSteps", 1)
    while step < block["maxSteps"]:
        found.append(step)
        step *= block.get("reductionFactor", 3)
    return found


def _passed(runs: dict[Any, dict[str, Any]], proposer: str, mode: str, seeds: list[int], rung: int) -> str:
    trials = [t for s in seeds for t in runs[(proposer, mode, s)]["trials"] if t["epochs"] >= rung]
    # a trial still running at the rung when the budget ran out was not judged there yet
    judged = [t for t in trials if t["epochs"] > rung or t["phase"] != "Running"]
    going = sum(t["epochs"] > rung for t in judged)
    return f"{100 * going / len(judged):.0f} %" if judged else "—"


def diagnose(results: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    """Why seeds missed the no-stopping best, and where the rules stopped trials."""
    runs = {(r["proposer"], r["mode"], r["seed"]): r for r in results["runs"]}
    lines = []
    for (proposer, mode), row in summary["rows"].items():
        if mode == "none" or not row["seeds"]:
            continue
        causes: dict[str, list[str]] = {"stopped": [], "cut": [], "absent": [], "other": []}
        for seed, reached in zip(row["seeds"], row["to_target"], strict=True):
            if reached is not None:
                continue
            base = runs[(proposer, "none", seed)]
            winner = max((t for t in base["trials"] if t["phase"] == "Succeeded"), key=lambda t: t["value"])
            mine = {_key(t["params"]): t for t in runs[(proposer, mode, seed)]["trials"]}
            found = mine.get(_key(winner["params"]))
            if found is None:
                causes["absent"].append(str(seed))
            elif found["phase"] == "EarlyStopped":
                causes["stopped"].append(f"{seed} (at epoch {found['epochs']}, {found['value']:.3f})")
            elif found["phase"] in ("Running", "Pending"):
                causes["cut"].append(str(seed))
            else:
                causes["other"].append(str(seed))
        missed = sum(len(v) for v in causes.values())
        stops = [t["epochs"] for s in row["seeds"] for t in runs[(proposer, mode, s)]["trials"]
                 if t["phase"] == "EarlyStopped"]
        where = ""
        if stops:
            counts = {e: stops.count(e) for e in sorted(set(stops))}
            common = sorted(counts.items(), key=lambda kv: -kv[1])[:4]
            where = (" Stops by epoch (most common): "
                     + ", ".join(f"{e}: {100 * c / len(stops):.0f} %" for e, c in sorted(common)) + ".")
        rungs = results["config"]["early_stopping"].get(mode) or {}
        if rungs.get("rule") == "asha":
            where += " Trials going on past a rung, of those that reached it: " + ", ".join(
                f"epoch {r}: {_passed(runs, proposer, mode, row['seeds'], r)}" for r in _asha_rungs(rungs)) + "."
        if not missed:
            lines.append(f"{proposer} {mode}: every seed reached the no-stopping best.{where}")
            continue
        parts = []
        if causes["stopped"]:
            parts.append("its winning configuration was proposed and stopped early in seeds "
                         + ", ".join(causes["stopped"]))
        if causes["absent"]:
            parts.append(f"the winning configuration was never proposed in seeds {', '.join(causes['absent'])}")
        if causes["cut"]:
            parts.append(f"it was still running when the budget ran out in seeds {', '.join(causes['cut'])}")
        if causes["other"]:
            parts.append(f"other in seeds {', '.join(causes['other'])}")
        lines.append(f"{proposer} {mode}: {missed} of {len(row['seeds'])} seeds never reached the no-stopping best: "
                     + "; ".join(parts) + f".{where}")
    return lines


# --- plot ----------------------------------------------------------------------------------------


def _minor_label(value: float, _: object) -> str:
    """Minor log ticks labelled at 2, 3 and 5 times a power of ten only."""
    if value <= 0:
        return ""
    mantissa = round(value / 10 ** math.floor(math.log10(value)))
    return f"{value:g}" if mantissa in (2, 3, 5) else ""


def plot(results: dict[str, Any], summary: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        print("matplotlib is not installed: no plot (pip install -r bench/requirements.txt)", file=sys.stderr)
        return False
    config = results["config"]
    budget = config["trials"] * config["max_steps"]
    grid = np.arange(0, budget + 1)
    runs = {(r["proposer"], r["mode"], r["seed"]): r for r in results["runs"]}
    proposers = summary["proposers"]
    fig, axes = plt.subplots(2, len(proposers), figsize=(5.2 * len(proposers), 6.8), dpi=110, squeeze=False)
    for col, proposer in enumerate(proposers):
        top, bottom = axes[0][col], axes[1][col]
        for mode in summary["modes"]:
            row = summary["rows"][(proposer, mode)]
            if not row["seeds"]:
                continue
            curves = []
            for seed in row["seeds"]:
                trace = runs[(proposer, mode, seed)]["trace"]
                curves.append([b if (b := best_at(trace, x)) is not None else CHANCE for x in grid])
            line, = top.plot(grid, 1 - np.mean(curves, axis=0), label=f"{mode} ({len(row['seeds'])} seeds)")
            reached = [sum(v is not None and v <= x for v in row["to_target"]) / len(row["seeds"]) for x in grid]
            bottom.plot(grid, reached, color=line.get_color(), label=mode)
        top.set_title(f"{proposer}")
        top.set_yscale("log")
        top.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        top.yaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(_minor_label))
        top.set_ylabel("1 − best accuracy so far (mean over seeds)")
        bottom.set_ylabel("share of seeds at the no-stopping best")
        bottom.set_xlabel("epochs consumed (all trials)")
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle(f"{PROBLEMS[config['problem']]['title']}: {config['trials']} trials × {config['max_steps']} epochs "
                 f"without stopping,\n{config['trials_factor']}× the trials (same epoch budget) with, "
                 f"{config['parallel']} in parallel", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return True


# --- the docs section ----------------------------------------------------------------------------


def sweep_table(sweep: list[dict[str, Any]]) -> list[str]:
    """One row per (N, proposer, mode): how the saving grows with the number of trials."""
    lines = ["| N | maxTrials with stopping | proposer | mode | seeds | epochs to reach the no-stopping best: median | "
             "reached | ratio: median per seed | final − no-stopping best: mean | epochs per trial | ≥ 3× met |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for results in sorted(sweep, key=lambda r: (r["config"]["trials"], r["config"]["trials_factor"])):
        n_trials = results["config"]["trials"]
        with_stopping = n_trials * results["config"]["trials_factor"]
        rows = summarize(results)["rows"]
        for (proposer, mode), row in rows.items():
            if not row["seeds"]:
                continue
            n = len(row["seeds"])
            ratio = "1" if mode == "none" else f"{statistics.median(row['ratio']):.2f}×"
            met = "—" if mode == "none" else "yes" if verdict(row, rows[(proposer, "none")], row["ratio"]) else "no"
            lines.append(
                f"| {n_trials} | {with_stopping} | {proposer} | {mode} | {n} | "
                f"{_fmt_epochs(_median_to_target(row['to_target']))} | "
                f"{sum(v is not None for v in row['to_target'])}/{n} | {ratio} | {statistics.mean(row['diff']):+.4f} | "
                f"{statistics.mean(row['per_trial']):.1f} | {met} |")
    return lines


def problem_section(results: dict[str, Any], plotted: Path | None, sweep: Sequence[dict[str, Any]] = (),
                    folder: Path = RESULTS) -> list[str]:
    config = results["config"]
    summary = summarize(results)
    body = [f"### {PROBLEMS[config['problem']]['title']}", ""]
    if config["problem"] == "synthetic":
        body.append(
            "`bench/synthetic_curves.py`: five hyperparameters of the deep-net kind (learning rate and weight "
            "decay on a log scale, momentum, init scale, dropout), a known final-accuracy surface, a convergence "
            "speed per configuration (larger steps learn faster and may end lower, dropout learns slower and "
            "ends higher, so curves cross), N(0, 0.01) noise per epoch, a region that diverges at epoch 1–3 "
            "(the trial fails, as `train.py` exits 3) and one stuck at chance (the model is in the module's "
            "docstring).")
    else:
        cache = curves_path(folder, config)
        entries = json.loads(cache.read_text()).values() if cache.exists() else []
        trained = sum(len(e["points"]) + (e["diverged"] is not None) for e in entries)
        body.append(
            f"All-CNN-C trained by `trainer-image/train.py` on scikit-learn's digits at {config['image_size']}×"
            f"{config['image_size']}, width {config['width']}, batch {config['batch_size']}, "
            f"{config['threads']} CPU thread, over the eight hyperparameters of `examples/allcnn-digits.yaml` "
            f"other than `epochs`, which is fixed at the expert's 350 nominal epochs run as {config['max_steps']} "
            f"real epochs (`--epoch-scale {config['max_steps']}/350`: the learning-rate drops and the momentum "
            "schedule keep their shape), so that every trial that is not stopped trains maxSteps epochs. "
            "Each configuration is trained lazily epoch by epoch and its curve cached (`bench/allcnn_curves.py`); "
            f"{trained:,} epochs were actually trained for the "
            f"{sum(r['epochs'] for r in results['runs']):,} the runs consumed.")
    body += [
        "",
        f"No stopping: maxTrials = {config['trials']}, every trial {config['max_steps']} epochs "
        f"(at most {config['trials'] * config['max_steps']} epochs). Median and asha: maxTrials = "
        f"{config['trials_factor'] * config['trials']}, cut at the same {config['trials'] * config['max_steps']} "
        f"epochs. parallelTrials = {config['parallel']}. Seeds {summary['rows'][next(iter(summary['rows']))]['seeds']}"
        f"; total {results.get('wall_seconds', 0) / 60:.0f} min on {results.get('machine', {}).get('cpus', '?')} "
        "CPUs.",
        "",
        table(summary),
        "",
    ]
    body += [f"- {line}" for line in floor_lines(results, summary)]
    body += [f"- {line}" for line in diagnose(results, summary)]
    body.append("")
    if plotted is not None:
        body += [f"![best-so-far against epochs consumed](img/{plotted.name})", "",
                 "Top: 1 − the best accuracy among the finished trials (the best-so-far error), against the epochs "
                 "consumed by all trials, mean over seeds (chance, 0.1, before a trial finishes). Bottom: share of "
                 "the seeds whose best has reached the final best of their no-stopping run.", ""]
    if sweep:
        body += [f"The same with other numbers of trials N (the budget N·{config['max_steps']} epochs, "
                 f"parallelTrials {config['parallel']}) and other maxTrials with stopping:", "",
                 *sweep_table([results, *sweep]), ""]
    return body


def write_doc(parts: list[tuple[dict[str, Any], Path | None, list[dict[str, Any]]]], notes: Sequence[str], doc: Path,
              folder: Path = RESULTS) -> None:
    body = [
        HEADING,
        "",
        "What `earlyStopping` saves, measured by `bench/early_stopping.py`: a simulated runner "
        "(`bench/stopping_sim.py`: parallel workers, one epoch a time unit) that drives kubetune's own decisions "
        "(`lifecycle.plan`, `outcomes.progressed` / `stop_requested` / `judge`) as the runners do, on learning "
        "curves that are known in advance (synthetic) or trained when a trial asks for them (All-CNN-C). "
        "*Epochs to reach the no-stopping best*: the epochs consumed by all trials (stopped and failed ones "
        "included) until the best finished trial first reaches the final best of the run without stopping, "
        "same proposer and seed; a seed that never reaches it counts as infinitely many epochs in the median "
        "and as ratio 0. *Ratio*: no-stopping epochs over the mode's, per seed then the median (in brackets, "
        "the ratio of the medians). *Within δ*: the same, to reach the no-stopping best less δ, the noise of one "
        "measured accuracy (synthetic: the per-epoch noise, 0.01; All-CNN: the binomial standard error on the 359 "
        "validation images, √(b(1 − b)/359) at the no-stopping best b, 0.006 at b = 0.986, about two images). "
        "*Target met*: per-seed median ratio ≥ 3 and a final best not worse than the no-stopping one beyond the "
        "noise (the 90 % bootstrap interval of the mean difference reaches above −½ the standard deviation of "
        "the no-stopping final best over seeds). The stopping runs are cut when they have consumed the "
        "no-stopping budget, so *final best* compares equal epoch budgets.",
        "",
    ]
    for results, plotted, sweep in parts:
        body += problem_section(results, plotted, sweep, folder)
    if notes:
        body += ["### Verdict", ""]
        for note in notes:
            body += [note, ""]
    body += ["Rerun: `.venv/bin/python -m bench.early_stopping --problem synthetic` (and `--problem allcnn`), "
             "then `--doc`.", ""]
    replace_section(doc, HEADING, "\n".join(body))
