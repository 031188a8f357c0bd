"""``kubetune report``: the page, its figures and the Markdown summary, from a history with every kind of trial."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from kubetune.api import (
    BestTrial,
    CurvePoint,
    ExperimentPhase,
    ExperimentStatus,
    Objective,
    TrialCounts,
    TrialPhase,
    TrialReason,
)
from kubetune.lifecycle import plan
from kubetune.local_state import LocalState
from kubetune.results import History
from kubetune.results.history import best_so_far, rows
from kubetune.results.page import markdown_summary, render_html, write_report
from tests.browser import REPORT_CHECK, visit
from tests.unit.factories import experiment, trial

PNG = b"\x89PNG\r\n\x1a\n"


def synthetic_history(n: int = 30, *, seed: int = 3) -> History:
    """lr matters most, opt a little, layers not at all; some trials fail, some are stopped, one runs."""
    rng = np.random.default_rng(seed)
    spec = experiment(maxTrials=n + 4, earlyStopping={"rule": "median", "minSteps": 2}).spec
    trials = []
    for i in range(n):
        lr = float(10 ** rng.uniform(-3, -1))
        params = {"lr": round(lr, 6), "layers": int(rng.integers(1, 5)), "opt": str(rng.choice(["sgd", "adam"]))}
        final = 0.95 - 0.5 * (math.log10(lr) + 2) ** 2 + (0.05 if params["opt"] == "adam" else 0.0)
        curve = [CurvePoint(step=s, metrics={"accuracy": final * (1 - 0.6 * 0.5 ** s)}) for s in range(1, 7)]
        times = {"start_time": f"2026-12-01T10:{i:02d}:00Z", "completion_time": f"2026-12-01T10:{i:02d}:40Z"}
        if i % 7 == 3:
            trials.append(trial(i, TrialPhase.FAILED, params=params, reason=TrialReason.NON_ZERO_EXIT,
                                message="exited with code 3: diverged at epoch 1 <script>alert(1)</script>",
                                curve=curve[:1], **times))
        elif i % 5 == 4:
            trials.append(trial(i, TrialPhase.EARLY_STOPPED, value=None, params=params,
                                reason=TrialReason.MEDIAN_RULE, message="stopped at step 3", curve=curve[:3],
                                **times))
        else:
            trials.append(trial(i, TrialPhase.SUCCEEDED, value=final, params=params, curve=curve, **times))
    trials.append(trial(n, TrialPhase.RUNNING, value=None, params={"lr": 0.01, "layers": 2, "opt": "adam"},
                        curve=[CurvePoint(step=1, metrics={"accuracy": 0.4})], start_time="2026-12-01T11:00:00Z"))
    done = [t for t in trials if t.status.phase is TrialPhase.SUCCEEDED]
    best = max(done, key=lambda t: t.status.objective_value or 0.0)
    counts = TrialCounts(created=n + 1, running=1, **{
        phase.counter: sum(t.status.phase is phase for t in trials)
        for phase in (TrialPhase.SUCCEEDED, TrialPhase.FAILED, TrialPhase.EARLY_STOPPED)})
    status = ExperimentStatus(phase=ExperimentPhase.RUNNING, trials=counts, trial_seconds=40 * n,
                              best_trial=BestTrial(name=best.metadata.name, params=best.spec.params,
                                                   objective_value=best.status.objective_value or 0.0))
    return History.of("exp", spec, status, trials, source="synthetic")


def two_objective_history() -> History:
    """The synthetic history with a second objective, latency, that grows with layers; status from the plan."""
    base = synthetic_history()
    objective = {"metric": "accuracy", "goal": "maximize",
                 "additionalObjectives": [{"metric": "latency", "goal": "minimize"}]}
    spec = base.spec.model_copy(update={"objective": Objective.model_validate(objective)})
    trials = []
    for t in base.trials:
        if t.status.phase is TrialPhase.SUCCEEDED:
            latency = 5.0 * float(t.spec.params["layers"]) + 20 * (t.status.objective_value or 0.0)
            t = t.model_copy(update={"status": t.status.model_copy(
                update={"metrics": {**t.status.metrics, "latency": latency}})})
        trials.append(t)
    exp = experiment().model_copy(update={"spec": spec})
    status = plan(exp, trials, now="2026-12-01T12:00:00Z").status
    return History.of("exp", spec, status, trials, source="synthetic")


def test_several_objectives_add_the_pareto_front_to_the_page_and_the_summary(tmp_path: Path) -> None:
    history = two_objective_history()
    assert history.status.pareto_size and history.status.pareto_size >= 2
    written = write_report(history, tmp_path)
    assert [p.name for p in written][-1] == "exp-pareto.png" and written[-1].read_bytes().startswith(PNG)
    assert '<h2 id="pareto">Pareto front</h2>' in written[0].read_text()
    text = markdown_summary(history)
    section = text.split(f"## Pareto front: {history.status.pareto_size} trials")[1].split("##")[0]
    names = re.findall(r"^\| (exp-\d+) \|", section, re.M)
    assert sorted(names) == sorted(p.name for p in history.status.pareto_front)
    assert names[0] == history.status.best_trial.name  # type: ignore[union-attr]  # best accuracy first
    assert "Pareto front" not in markdown_summary(synthetic_history())


def test_rows_give_stopped_and_running_trials_their_last_value_and_failed_ones_none() -> None:
    history = synthetic_history()
    by_phase = {r.phase: r for r in rows(history)}
    assert by_phase[TrialPhase.FAILED].value is None
    stopped = by_phase[TrialPhase.EARLY_STOPPED]
    assert stopped.partial and stopped.value == stopped.trial.status.curve[-1].metrics["accuracy"]
    assert by_phase[TrialPhase.RUNNING].partial and by_phase[TrialPhase.RUNNING].value == 0.4
    assert by_phase[TrialPhase.SUCCEEDED].seconds == 40


def test_best_so_far_is_monotone_in_the_goals_direction_and_ends_at_the_best() -> None:
    history = synthetic_history()
    trace = best_so_far(history)
    values = [v for _, v in trace]
    assert values == sorted(values)
    assert values[-1] == history.status.best_trial.objective_value  # type: ignore[union-attr]
    minimizing = History.of("exp", history.spec.model_copy(update={"objective": history.spec.objective.model_copy(
        update={"goal": "minimize"})}), history.status, list(history.trials), "synthetic")
    down = [v for _, v in best_so_far(minimizing)]
    assert down == sorted(down, reverse=True)


def test_the_markdown_summary_names_the_best_trial_the_importance_and_the_failures() -> None:
    history = synthetic_history()
    text = markdown_summary(history)
    best = history.status.best_trial
    assert best is not None and f"**{best.name}**" in text
    assert "| NonZeroExit | 4 |" in text and "| MedianRule | 5 |" in text
    section = text.split("## Parameter importance")[1].split("##")[0]
    importance = dict(re.findall(r"^\| (\w+) \| ([0-9.]+) \|", section, re.M))
    assert set(importance) == {"lr", "layers", "opt"}
    assert max(importance, key=lambda k: float(importance[k])) == "lr"
    table = text.split("## Best 10 of 21 succeeded trials")[1]
    first = re.search(r"^\| (exp-\d+) \| ([0-9.]+) \|", table, re.M)
    assert first and first.group(1) == best.name


def test_the_page_is_self_contained_and_escapes_what_trials_report(tmp_path: Path) -> None:
    history = synthetic_history()
    written = write_report(history, tmp_path)
    assert [p.name for p in written] == ["exp.html", "exp-trace.png", "exp-importance.png", "exp-slices.png",
                                         "exp-curves.png"]
    assert all(p.read_bytes().startswith(PNG) for p in written[1:])
    page = written[0].read_text()
    assert page.count('src="data:image/png;base64,') == 4
    assert not re.search(r"(src|href)=\"(https?:)?//", page), "the page must not fetch anything"
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<tr") == len(history.trials) + 1


def test_a_history_with_nothing_to_plot_says_so_instead_of_drawing_empty_frames() -> None:
    history = synthetic_history()
    only_failed = [t for t in history.trials if t.status.phase is TrialPhase.FAILED]
    empty = History.of("exp", history.spec, ExperimentStatus(), only_failed, "synthetic")
    page = render_html(empty, {"trace": None, "importance": None, "slices": None, "curves": None}, None)
    assert "No trial has an objective value yet." in page and "Not enough trials to estimate importance" in page
    assert "# Experiment exp" in markdown_summary(empty)


def test_a_state_file_without_a_spec_is_refused_with_its_name() -> None:
    with pytest.raises(ValueError, match=r"old\.state\.yaml: the state file has no spec"):
        History.from_state(LocalState(experiment="old"), "old.state.yaml")


@pytest.mark.browser
@pytest.mark.parametrize("objectives", [1, 2])
def test_the_page_loads_in_chromium_with_no_errors_and_its_plots_render(tmp_path: Path, objectives: int) -> None:
    history = synthetic_history() if objectives == 1 else two_objective_history()
    page = write_report(history, tmp_path)[0]
    result = visit(page, REPORT_CHECK)
    assert result.errors == []
    assert all(url.startswith(("file:", "data:")) for url in result.requests), result.requests
    checked = result.evaluated
    assert len(checked["images"]) == 3 + objectives
    for image in checked["images"]:
        assert image["complete"] and image["width"] > 300 and image["height"] > 150, image
    assert checked["sections"] == ["Search history", "Parameter importance", "Parameters", "Learning curves",
                                   *(["Pareto front"] if objectives == 2 else []), "Trials"]
    # sorting by the objective: the best trial first when descending, and the order really changed
    best = history.status.best_trial
    assert best is not None and checked["descending"][0] == best.name
    assert checked["ascending"] != checked["before"] and sorted(checked["ascending"]) == sorted(checked["before"])
    assert result.screenshot.startswith(PNG) and len(result.screenshot) > 50_000
    (tmp_path / "screenshot.png").write_bytes(result.screenshot)
