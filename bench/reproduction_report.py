"""The reproduction benchmark's report: best-so-far traces, the table in the seed's form, the targets.

Torch-free (numpy only; matplotlib for the plot), so its bookkeeping is unit-tested without the trainer.
A run is ``{"seed", "trials": [{"accuracy" (None: diverged), "epochs", "seconds", …}], "ask_seconds"}``
with its trials in the order they finished; ``results`` is ``{"config", "runs" (each with its
"strategy"), "expert": [{"seed", "accuracy"}], "notes", "wall_minutes"}``.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import replace_section

ROOT = Path(__file__).resolve().parents[1]
#: The reproductions: search space, docs section and setup of each (``bench/allcnn_reproduction.py``
#: runs them, ``bench/allcnn_surrogate.py`` learns their recorded trials).
MODELS: dict[str, dict[str, Any]] = {
    "allcnn": {"space": ROOT / "examples" / "allcnn-cifar10.yaml", "heading": "## All-CNN reproduction",
               "title": "All-CNN-C", "seeds": 10, "seed_table": "Table 1", "epoch_scale": 0.06},
    "resnet": {"space": ROOT / "examples" / "resnet-cifar10.yaml", "heading": "## ResNet reproduction",
               "title": "ResNet (depth tuned)", "seeds": 5, "seed_table": "Table 2",
               # a depth-20 block stack (ResNet-122) trains at 2 s per real epoch on one core: half the
               # All-CNN's scale keeps a search near an hour; the expert still reaches 0.96
               "epoch_scale": 0.03},
    # the ResNet on the first 300 of digits' 1,438 training images, a harder task off the ceiling; the
    # epoch scale grows by 1,438 / 300 so a trial takes as many SGD steps as at 0.03 on all images
    "resnet300": {"space": ROOT / "examples" / "resnet-cifar10.yaml", "trainer": "resnet",
                  "heading": "## ResNet reproduction, 300 training images",
                  "title": "ResNet (depth tuned), 300 training images", "seeds": 5, "seed_table": "Table 2",
                  "epoch_scale": 0.144, "train_size": 300},
}

#: Ten classes: a finished trial below this accuracy learned nothing.
CHANCE = 0.15
#: The best-so-far before any trial succeeded.
FLOOR = 0.1


# --- report --------------------------------------------------------------------------------------


def best_so_far(accuracies: list[float | None]) -> list[float]:
    """Best accuracy after each evaluation (chance, 0.1, until one succeeds)."""
    best, trace = FLOOR, []
    for accuracy in accuracies:
        if accuracy is not None and math.isfinite(accuracy):
            best = max(best, accuracy)
        trace.append(best)
    return trace


def accuracies(run: dict[str, Any]) -> list[float | None]:
    return [t["accuracy"] for t in run["trials"]]


def evals_to_reach(trace: list[float], level: float) -> float:
    """The first evaluation (1-based) whose best-so-far reaches ``level``; inf when none does."""
    return next((float(i + 1) for i, v in enumerate(trace) if v >= level), math.inf)


def interval(values: list[float]) -> str:
    """Mean [5th, 95th percentile over the seeds]."""
    lo, hi = np.percentile(values, [5, 95])
    return f"{statistics.mean(values):.4f} [{lo:.4f}, {hi:.4f}]"


def _evals(value: float) -> str:
    return "never" if math.isinf(value) else f"{value:g}"


# --- results on disk ------------------------------------------------------------------------------


def strategy_file(strategy: str) -> str:
    return strategy.replace(":", "-").replace("=", "").replace(",", "-")


def comparable(config: dict[str, Any]) -> dict[str, Any]:
    # Runs are recorded per seed, so asking for more seeds later resumes instead of starting over.
    return {k: v for k, v in config.items() if k not in ("algorithms", "host", "seeds")}


def load_results(folder: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Every strategy's runs recorded under ``folder`` with this ``config`` (others are ignored)."""
    results: dict[str, Any] = {"config": config, "runs": [], "expert": [], "notes": [], "wall_minutes": 0.0}
    wanted = {strategy_file(a): a for a in config["algorithms"]}
    for path in sorted(folder.glob("*.json")):
        part = json.loads(path.read_text())
        if comparable(part["config"]) != comparable(config):
            print(f"ignoring {path}: recorded with another setup", file=sys.stderr)
            continue
        runs = [r for r in part["runs"] if r["seed"] in config["seeds"]]
        if path.stem == "expert":
            results["expert"].extend(sorted(runs, key=lambda r: r["seed"]))
        elif path.stem in wanted:
            results["runs"].extend({**r, "strategy": wanted[path.stem]} for r in runs)
        else:
            continue
        results["notes"].extend(n for n in part.get("notes", []) if n not in results["notes"])
        results["wall_minutes"] += part.get("wall_minutes", 0.0)
    notes = folder / "notes.md"  # what the figures mean, written by hand beside them: one "- " item each
    if notes.exists():
        results["notes"] += [" ".join(item.split()) for item in ("\n" + notes.read_text()).split("\n- ")[1:]]
    return results


def save_part(path: Path, part: dict[str, Any]) -> None:
    """Write one strategy's results file whole or not at all (a killed run leaves the old one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(part, indent=1))
    tmp.replace(path)


def merge_results(source: Path, target: Path) -> list[str]:
    """Add the runs recorded under ``source`` (another machine, shell or day) to ``target``'s files.

    Per strategy file: runs joined by seed, notes kept once, and the source's wall minutes added in
    proportion to the seeds it adds (a file whose runs are all duplicates adds no time). A seed ``target``
    already has is kept as it is (a differing copy is reported, not merged); a file recorded with
    another setup is refused. Returns one line per file saying what happened."""
    lines = []
    for path in sorted(source.glob("*.json")):
        part = json.loads(path.read_text())
        into = target / path.name
        if not into.exists():
            save_part(into, part)
            lines.append(f"{path.name}: new, {len(part['runs'])} run(s)")
            continue
        have = json.loads(into.read_text())
        if comparable(part["config"]) != comparable(have["config"]):
            lines.append(f"{path.name}: refused, recorded with another setup than {into}")
            continue
        seeds = {r["seed"]: r for r in have["runs"]}
        added = [r for r in part["runs"] if r["seed"] not in seeds]
        differ = [r["seed"] for r in part["runs"] if r["seed"] in seeds and r != seeds[r["seed"]]]
        if added:
            have["runs"] = sorted([*have["runs"], *added], key=lambda r: r["seed"])
            share = len(added) / len(part["runs"])
            have["wall_minutes"] = have.get("wall_minutes", 0.0) + share * part.get("wall_minutes", 0.0)
            notes = have.get("notes", [])
            have["notes"] = [*notes, *(n for n in part.get("notes", []) if n not in notes)]
            save_part(into, have)
        line = f"{path.name}: {len(added)} seed(s) added {[r['seed'] for r in added]}"
        if differ:
            line += f"; seeds {differ} already recorded differently, kept as they were"
        lines.append(line)
    return lines


# --- the table ----------------------------------------------------------------------------------


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """Per strategy: traces by seed, the checkpoints, evals to match the expert; the expert's mean."""
    expert = [r["accuracy"] if r["accuracy"] is not None else FLOOR for r in results["expert"]]
    expert_mean = statistics.mean(expert) if expert else math.nan
    evals = results["config"]["evals"]
    checkpoints = sorted({max(1, evals * k // 3) for k in (1, 2, 3)})
    out: dict[str, Any] = {"expert": expert, "expert_mean": expert_mean, "checkpoints": checkpoints,
                           "strategies": {}}
    for strategy in results["config"]["algorithms"]:
        runs = sorted((r for r in results["runs"] if r["strategy"] == strategy), key=lambda r: r["seed"])
        runs = [r for r in runs if len(r["trials"]) == evals]
        if not runs:
            continue
        traces = {r["seed"]: best_so_far(accuracies(r)) for r in runs}
        out["strategies"][strategy] = {
            "runs": runs, "traces": traces,
            "at": {c: [t[c - 1] for t in traces.values()] for c in checkpoints},
            "to_expert": [evals_to_reach(t, expert_mean) for t in traces.values()],
        }
    return out


def table(results: dict[str, Any]) -> str:
    s = summarize(results)
    evals = results["config"]["evals"]
    expert, expert_mean = s["expert"], s["expert_mean"]
    lines = [
        f"| method | accuracy after {evals} evaluations: mean [90 % of seeds] | worst seed | "
        "evaluations to match the expert: median (seeds that did) | error reduction against the expert |",
        "|---|---|---|---|---|",
    ]
    if expert:
        lines.append(f"| expert defaults | {interval(expert)} | {min(expert):.4f} | — | — |")
    for strategy, d in s["strategies"].items():
        final = d["at"][evals]
        reduction = 1 - (1 - statistics.mean(final)) / (1 - expert_mean) if expert else math.nan
        matched = sum(not math.isinf(v) for v in d["to_expert"])
        needed = _evals(statistics.median(d["to_expert"]))
        lines.append(f"| {strategy} | {interval(final)} | {min(final):.4f} | {needed} ({matched}/{len(final)}) | "
                     f"{100 * reduction:+.1f} % |")
    lines += ["", "| method | seeds | " + " | ".join(f"best after {c}" for c in s["checkpoints"]) +
              " | diverged | finished at chance (< 0.15) | learned | epochs per trial | train s per trial | "
              "ask s per trial |",
              "|---|---|" + "---|" * (len(s["checkpoints"]) + 6)]
    for strategy, d in s["strategies"].items():
        trials = [t for r in d["runs"] for t in r["trials"]]
        n = len(trials)
        diverged = sum(t["accuracy"] is None for t in trials)
        chance = sum(t["accuracy"] is not None and t["accuracy"] < CHANCE for t in trials)
        ask = sum(r["ask_seconds"] for r in d["runs"]) / n
        lines.append(f"| {strategy} | {len(d['runs'])} | " +
                     " | ".join(f"{statistics.mean(d['at'][c]):.4f}" for c in s["checkpoints"]) +
                     f" | {100 * diverged / n:.0f} % | {100 * chance / n:.0f} % | "
                     f"{100 * (n - diverged - chance) / n:.0f} % | "
                     f"{statistics.mean(t['epochs'] for t in trials):.1f} | "
                     f"{statistics.mean(t['seconds'] for t in trials):.1f} | {ask:.2f} |")
    return "\n".join(lines)


def targets(results: dict[str, Any], subject: str = "bayes", baseline: str = "random") -> list[str]:
    """The issue's four targets, each met or missed with its figure."""
    s = summarize(results)
    evals = results["config"]["evals"]
    strategies = s["strategies"]
    if subject not in strategies:
        return [f"no complete `{subject}` run yet"]
    mine = strategies[subject]
    out = []
    if baseline in strategies:
        other = strategies[baseline]
        seeds = sorted(set(mine["traces"]) & set(other["traces"]))
        parts, ok = [], True
        for c in s["checkpoints"]:
            wins = sum(mine["traces"][k][c - 1] > other["traces"][k][c - 1] for k in seeds)
            need = math.ceil(0.8 * len(seeds))
            ok = ok and wins >= need
            parts.append(f"{wins}/{len(seeds)} at {c}")
        out.append(f"`{subject}` above `{baseline}` at every checkpoint in ≥ 80 % of the seeds: "
                   f"{'met' if ok else 'missed'} ({', '.join(parts)})")
    final = statistics.mean(mine["at"][evals])
    if s["expert"]:
        met = final >= s["expert_mean"]
        out.append(f"`{subject}`'s mean best ≥ the expert's mean: {'met' if met else 'missed'} "
                   f"({final:.4f} against {s['expert_mean']:.4f})")
        if baseline in strategies:
            a = statistics.median(mine["to_expert"])
            b = statistics.median(strategies[baseline]["to_expert"])
            met = not math.isinf(a) and a * 3 <= b
            out.append(f"evaluations to match the expert ≤ 1/3 of `{baseline}`'s (medians over the seeds): "
                       f"{'met' if met else 'missed'} ({_evals(a)} against {_evals(b)})")
    # judged on the seeds every strategy finished: a mean over other seeds is not a comparison
    common = sorted(set.intersection(*(set(d["traces"]) for d in strategies.values())))
    if not common:
        out.append(f"`{subject}` first at {evals} evaluations: not judged (no seed finished by every strategy)")
        return out
    score = {k: statistics.mean(strategies[k]["traces"][seed][evals - 1] for seed in common) for k in strategies}
    ranking = sorted(strategies, key=lambda k: (-score[k], k != subject))
    tied = [k for k in ranking if k != subject and abs(score[k] - score[subject]) < 1e-9]
    met = ranking[0] == subject and not tied
    on = "" if all(set(d["traces"]) == set(common) for d in strategies.values()) else \
        f" on the seeds every strategy finished, {', '.join(map(str, common))}"
    verdict = "met" if met else (f"missed, tied with {', '.join(tied)}" if tied and ranking[0] == subject else "missed")
    out.append(f"`{subject}` first at {evals} evaluations{on}: {verdict} (order: " +
               ", ".join(f"{k} {score[k]:.4f}" for k in ranking) + ")")
    return out


def plot(results: dict[str, Any], path: Path, title: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)", file=sys.stderr)
        return False
    s = summarize(results)
    evals = results["config"]["evals"]
    fig, (ax, worst) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110, sharey=True)
    x = np.arange(1, evals + 1)
    for strategy, d in s["strategies"].items():
        errors = 1 - np.array(list(d["traces"].values()))
        mean = errors.mean(axis=0)
        se = errors.std(axis=0, ddof=1) / math.sqrt(len(errors)) if len(errors) > 1 else np.zeros_like(mean)
        line, = ax.plot(x, mean, label=f"{strategy} ({len(errors)} seeds)")
        ax.fill_between(x, mean - se, mean + se, color=line.get_color(), alpha=0.15)
        worst.plot(x, errors.max(axis=0), color=line.get_color(), label=strategy)
    for axis in (ax, worst):
        if s["expert"]:
            axis.axhline(1 - s["expert_mean"], color="black", linestyle="--", label="expert defaults (mean)")
        axis.set_yscale("log")
        axis.set_xlabel("evaluations (trained networks, in the order they finished)")
        axis.grid(alpha=0.3, which="both")
    ax.set_ylabel("best validation error so far")
    ax.set_title("mean over seeds (±1 standard error)")
    worst.set_title("worst seed")
    ax.legend(fontsize=8)
    config = results["config"]
    fig.suptitle(f"{title} on digits {config['image_size']}px, width {config['width']}, epochs ×"
                 f"{config['epoch_scale']}, {config['parallel']} in parallel")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return True


def _train_images(config: dict[str, Any]) -> str:
    return f"the first {config['train_size']:,} of 1,438" if config.get("train_size") else "1,438"


def write_section(results: dict[str, Any], doc: Path, plot_name: str | None, *, heading: str, title: str,
                  seed_table: str = "Table 1") -> None:
    config = results["config"]
    s = summarize(results)
    random_trials = [t for r in s["strategies"].get("random", {}).get("runs", []) for t in r["trials"]]
    body = [
        heading, "",
        f"The seed's {seed_table} on a CPU: {title} tuned over the seed's hyperparameters and ranges "
        f"(`{config['space']}`, unchanged), against the expert defaults of `trainer-image/train.py`. Data: "
        f"scikit-learn's digits at {config['image_size']}×{config['image_size']} ({_train_images(config)} train / "
        f"359 validation images), width {config['width']}, batch {config['batch_size']}, "
        f"epoch scale {config['epoch_scale']} "
        f"(the seed's 50–500 epochs → {max(1, round(50 * config['epoch_scale']))}–"
        f"{round(500 * config['epoch_scale'])} real epochs), one CPU thread per trial. {config['evals']} "
        f"evaluations per run, {config['parallel']} at a time as the operator runs them "
        "(`bench/parallel_sim.py`: free slots refilled while the others run, kubetune's suggesters told the "
        f"running ones as pending), seeds {config['seeds']}. Accuracy: validation accuracy of the final model; "
        "a diverged trial is a failed observation (best-so-far stays at chance, 0.1, until a trial succeeds).",
        "",
        table(results), "",
        "*90 % of seeds*: the 5th and 95th percentiles of the seeds' values. *Evaluations to match the "
        "expert*: the first evaluation whose best-so-far reaches the expert's mean accuracy, median over all "
        "seeds (a seed that never does counts as never). *Error reduction*: 1 − mean error / the expert's "
        "mean error.", "",
    ]
    if random_trials:
        n = len(random_trials)
        diverged = sum(t["accuracy"] is None for t in random_trials)
        chance = sum(t["accuracy"] is not None and t["accuracy"] < CHANCE for t in random_trials)
        body += [f"The character of the space, from `random`'s {n} trials: {100 * diverged / n:.0f} % diverge, "
                 f"{100 * chance / n:.0f} % finish at chance (< {CHANCE}), {100 * (n - diverged - chance) / n:.0f} % "
                 "learn.", ""]
    body += ["Targets:", ""] + [f"- {t}" for t in targets(results)] + [""]
    body += ["Per seed (expert: accuracy; searches: best after all evaluations):", ""]
    body.append("- expert: " + ", ".join(f"{a:.3f}" for a in s["expert"]))
    for strategy, d in s["strategies"].items():
        body.append(f"- {strategy}: " + ", ".join(f"{t[-1]:.3f}" for t in d["traces"].values()))
    body.append("")
    if plot_name:
        body += [f"![best-so-far validation error](img/{plot_name})", ""]
    body += [f"- {note}" for note in results.get("notes", [])]
    commits = sorted({r.get("commit", "not recorded") for r in results["runs"]})
    if commits:
        body.append(f"- kubetune commit of the runs: {', '.join(commits)}")
    command = (f"python bench/allcnn_reproduction.py --model {config['model']} --seeds {len(config['seeds'])} "
               f"--algorithms {' '.join(config['algorithms'])}")
    body += ["", f"Rerun: `.venv/bin/{command}` after `make bench-setup` ({config['host']}; "
             f"{results.get('wall_minutes', 0):.0f} min of strategy processes).", "", ""]
    replace_section(doc, heading, "\n".join(body))
