"""The local runner on real processes: parallel trials, failures, deadlines, and resume after a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from kubetune.api import ExperimentPhase, TrialPhase
from kubetune.local_state import LocalState, load_state

TRIAL_SCRIPT = '''
import json, os, shutil, subprocess, sys, time
x = float(os.environ["KUBETUNE_PARAM_X"])
mode = os.environ["KUBETUNE_PARAM_MODE"]
metrics = os.environ["KUBETUNE_METRICS_FILE"]
time.sleep(float(os.environ.get("TRIAL_SLEEP", "0")))
if mode == "rmdir":  # a trial that deletes its own output folder
    shutil.rmtree(os.path.dirname(metrics))
if mode == "mkdir":  # ... that makes its metrics path a directory
    os.makedirs(metrics)
    sys.exit(0)
if mode == "fifo":  # ... a FIFO nobody writes to
    os.mkfifo(metrics)
    sys.exit(0)
if mode == "spawn":  # ... that leaves a child and a setsid grandchild behind
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    grandchild = subprocess.Popen(["setsid", sys.executable, "-c", "import time; time.sleep(300)"])
    with open("spawned.txt", "a") as out:
        out.write(f"{child.pid} {grandchild.pid}\\n")
if mode == "noise":  # ... whose last line carries NUL and ESC bytes
    print("bad \\x00 byte \\x1b[31mred")
    sys.exit(1)
if mode == "crash":
    print("training blew up: CUDA out of memory")
    sys.exit(1)
if mode == "hang":
    time.sleep(60)
if mode == "garbage":
    open(os.environ["KUBETUNE_METRICS_FILE"], "w").write("accuracy: high")
    sys.exit(0)
print(f"kubetune: step=1 score={x / 2}")
open(os.environ["KUBETUNE_METRICS_FILE"], "w").write(json.dumps({"score": -(x - 0.3) ** 2}))
with open("ledger.txt", "a") as ledger:
    ledger.write(os.environ["KUBETUNE_TRIAL"] + "\\n")
'''


def write_experiment(folder: Path, *, modes: list[str], max_trials: int, parallel: int, sleep: float = 0.0,
                     deadline: int | None = None, **spec: Any) -> Path:
    (folder / "trial.py").write_text(TRIAL_SCRIPT)
    job: dict[str, Any] = {"template": {"spec": {"containers": [{
        "name": "t", "command": ["python", "trial.py"], "env": [{"name": "TRIAL_SLEEP", "value": str(sleep)}],
    }]}}}
    if deadline:
        job["activeDeadlineSeconds"] = deadline
    document = {
        "apiVersion": "kubetune.io/v1alpha1", "kind": "Experiment", "metadata": {"name": "local"},
        "spec": {
            "objective": {"metric": "score", "goal": "maximize"},
            "algorithm": {"name": "sobol", "seed": 5},
            "maxTrials": max_trials, "parallelTrials": parallel,
            "parameters": [{"name": "x", "type": "double", "min": 0, "max": 1},
                           {"name": "mode", "type": "categorical", "values": modes}],
            "trialTemplate": {"spec": job},
            **spec,
        },
    }
    path = folder / "experiment.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def kubetune(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "kubetune.cli", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_for(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def finished(state_file: Path) -> list[str]:
    try:
        state = load_state(state_file)
    except Exception:
        return []
    return [t.metadata.name for t in state.trials if t.status.phase.finished] if state else []


def test_resume_after_kill_9_loses_and_repeats_nothing(tmp_path: Path) -> None:
    path = write_experiment(tmp_path, modes=["ok"], max_trials=12, parallel=3, sleep=0.4)
    state_file = tmp_path / "local.state.yaml"
    ledger_file = tmp_path / "ledger.txt"
    # (trials recorded as finished at a kill, how many runs the ledger held then)
    snapshots: list[tuple[set[str], int]] = []
    for kill_after in (2, 6):
        runner = kubetune("run", str(path), cwd=tmp_path)
        wait_for(lambda n=kill_after: len(finished(state_file)) >= n)
        runner.send_signal(signal.SIGKILL)
        runner.wait()
        snapshots.append((set(finished(state_file)), len(ledger_file.read_text().split())))
    final = kubetune("run", str(path), cwd=tmp_path)
    output, _ = final.communicate(timeout=120)
    assert final.returncode == 0, output
    assert "Resuming from" in output

    state = load_state(state_file)
    assert state is not None
    names = [t.metadata.name for t in state.trials]
    assert names == [f"local-{i}" for i in range(12)]  # exactly maxTrials, none lost, none twice
    assert all(t.status.phase is TrialPhase.SUCCEEDED for t in state.trials)
    assert state.status.phase is ExperimentPhase.SUCCEEDED
    ledger = ledger_file.read_text().split()
    for recorded, runs_so_far in snapshots:  # a trial recorded as finished never runs again
        assert not recorded & set(ledger[runs_so_far:]), (recorded, ledger)
    assert set(ledger) == set(names)
    best = max(state.trials, key=lambda t: t.status.objective_value or -1)
    assert state.status.best_trial is not None and state.status.best_trial.name == best.metadata.name


def test_ctrl_c_keeps_state_and_the_next_run_finishes(tmp_path: Path) -> None:
    path = write_experiment(tmp_path, modes=["ok"], max_trials=6, parallel=2, sleep=0.3)
    runner = kubetune("run", str(path), cwd=tmp_path)
    wait_for(lambda: len(finished(tmp_path / "local.state.yaml")) >= 1)
    runner.send_signal(signal.SIGINT)
    output, _ = runner.communicate(timeout=30)
    assert runner.returncode == 130, output
    assert "run the same command again to resume" in output
    final = kubetune("run", str(path), cwd=tmp_path)
    output, _ = final.communicate(timeout=60)
    assert final.returncode == 0, output
    state = load_state(tmp_path / "local.state.yaml")
    assert state is not None and len(state.trials) == 6


def run_to_end(tmp_path: Path, **kwargs: Any) -> tuple[int, str, LocalState]:
    path = write_experiment(tmp_path, **kwargs)
    runner = kubetune("run", str(path), cwd=tmp_path)
    output, _ = runner.communicate(timeout=120)
    state = load_state(tmp_path / "local.state.yaml")
    assert state is not None
    return runner.returncode, output, state


def test_failing_trials_are_recorded_with_their_reason(tmp_path: Path) -> None:
    code, output, state = run_to_end(tmp_path, modes=["crash", "garbage"], max_trials=4, parallel=2)
    assert code == 1, output  # nothing succeeded: the experiment failed
    reasons = {t.status.reason for t in state.trials}
    assert reasons == {"NonZeroExit", "MetricsInvalid"}
    crash = next(t for t in state.trials if t.status.reason == "NonZeroExit")
    assert crash.status.message == "exited with code 1: training blew up: CUDA out of memory"
    failed = next(c for c in state.status.conditions if c.type == "Failed")
    assert failed.reason == "NoSuccessfulTrial"


def test_max_failed_trials_stops_the_experiment(tmp_path: Path) -> None:
    code, _, state = run_to_end(tmp_path, modes=["crash"], max_trials=10, parallel=1, maxFailedTrials=2)
    assert code == 1
    assert len(state.trials) == 3
    assert next(c for c in state.status.conditions if c.type == "Failed").reason == "TooManyFailedTrials"


def test_deadline_stops_a_hanging_trial(tmp_path: Path) -> None:
    code, _, state = run_to_end(tmp_path, modes=["hang"], max_trials=1, parallel=1, deadline=1)
    assert code == 1
    (trial,) = state.trials
    assert (trial.status.phase, trial.status.reason) == (TrialPhase.FAILED, "DeadlineExceeded")


def test_reaching_the_target_ends_early(tmp_path: Path) -> None:
    code, output, state = run_to_end(tmp_path, modes=["ok"], max_trials=40, parallel=2,
                                     objective={"metric": "score", "goal": "maximize", "target": -0.01})
    assert code == 0, output
    assert len(state.trials) < 40
    assert next(c for c in state.status.conditions if c.type == "Succeeded").reason == "GoalReached"
    assert os.path.exists(tmp_path / "local.state.trials")


def test_initial_points_run_first_locally_too(tmp_path: Path) -> None:
    points = [{"x": 0.3, "mode": "ok"}, {"mode": "crash"}]  # the optimum, then a partial point
    code, output, state = run_to_end(tmp_path, modes=["ok", "crash"], max_trials=4, parallel=2,
                                     initialPoints=points)
    assert code == 0, output
    trials = sorted(state.trials, key=lambda t: t.spec.index)
    assert trials[0].spec.params == points[0] and trials[0].status.objective_value == 0.0
    assert trials[1].spec.params["mode"] == "crash" and trials[1].status.phase is TrialPhase.FAILED
    assert state.status.best_trial is not None and state.status.best_trial.name == "local-0"


def test_a_warm_start_reads_the_earlier_state_file_next_to_this_one(tmp_path: Path) -> None:
    code, output, first = run_to_end(tmp_path, modes=["ok", "crash"], max_trials=4, parallel=2)
    assert code == 0, output
    later = yaml.safe_load((tmp_path / "experiment.yaml").read_text())
    later["metadata"]["name"] = "later"
    later["spec"]["warmStart"] = {"experiments": ["local", "gone"]}
    (tmp_path / "later.yaml").write_text(yaml.safe_dump(later))
    runner = kubetune("run", "later.yaml", cwd=tmp_path)
    output, _ = runner.communicate(timeout=120)
    assert runner.returncode == 0, output
    state = load_state(tmp_path / "later.state.yaml")
    assert state is not None and len(state.trials) == 4  # its own budget: the prior trials do not count
    warm = state.status.warm_start
    assert warm is not None and warm.observations == len(first.trials) == 4
    assert warm.missing == [f"gone: no state file {tmp_path / 'gone.state.yaml'}"]
    assert "WarmStartSourceMissing" in output


# --- early stopping ----------------------------------------------------------------------------

CURVE_SCRIPT = '''
import json, os, time
q = float(os.environ["KUBETUNE_PARAM_Q"])
for epoch in range(1, 10):
    accuracy = q * (1 - 0.5 ** epoch)  # known curves: a better q is better at every epoch
    print(f"kubetune: epoch={epoch} accuracy={accuracy:.4f}", flush=True)
    time.sleep(0.25)
open(os.environ["KUBETUNE_METRICS_FILE"], "w").write(json.dumps({"accuracy": accuracy}))
'''


def run_curves(folder: Path, qualities: list[str], early_stopping: dict[str, Any]) -> tuple[int, str, LocalState]:
    (folder / "curves.py").write_text(CURVE_SCRIPT)
    document = {
        "apiVersion": "kubetune.io/v1alpha1", "kind": "Experiment", "metadata": {"name": "local"},
        "spec": {
            "objective": {"metric": "accuracy", "goal": "maximize"},
            "algorithm": {"name": "grid"},  # the qualities in the order given, one trial at a time
            "maxTrials": len(qualities), "parallelTrials": 1, "earlyStopping": early_stopping,
            "parameters": [{"name": "q", "type": "categorical", "values": qualities}],
            "trialTemplate": {"spec": {"template": {"spec": {"containers": [
                {"name": "t", "command": ["python", "curves.py"]}]}}}},
        },
    }
    (folder / "experiment.yaml").write_text(yaml.safe_dump(document))
    runner = kubetune("run", str(folder / "experiment.yaml"), cwd=folder)
    output, _ = runner.communicate(timeout=120)
    state = load_state(folder / "local.state.yaml")
    assert state is not None
    return runner.returncode, output, state


def test_asha_stops_the_bad_trials_at_the_first_rung(tmp_path: Path) -> None:
    code, output, state = run_curves(tmp_path, ["0.9", "0.2", "0.5", "0.95"],
                                     {"rule": "asha", "minSteps": 1, "maxSteps": 9, "reductionFactor": 3,
                                      "minTrials": 1})
    assert code == 0, output
    by_q = {t.spec.params["q"]: t for t in state.trials}
    assert [by_q[q].status.phase for q in ("0.9", "0.2", "0.5", "0.95")] == [
        TrialPhase.SUCCEEDED, TrialPhase.EARLY_STOPPED, TrialPhase.EARLY_STOPPED, TrialPhase.SUCCEEDED]
    for q in ("0.2", "0.5"):
        status = by_q[q].status
        assert status.reason == "AshaRung" and status.message.startswith("stopped at rung 1 ")
        assert status.curve and status.curve[-1].step < 9  # it did not train to the end
        assert status.objective_value is None and status.metrics  # its partial result is kept
    assert [r.step for r in by_q["0.95"].status.rungs] == [1, 3]  # the rungs it passed, recorded
    assert state.status.trials.early_stopped == 2
    assert state.status.best_trial is not None and state.status.best_trial.params == {"q": "0.95"}
    assert len(by_q["0.9"].status.curve) == 9  # every progress report is in the curve
    assert state.status.trial_seconds >= 4


def test_the_median_rule_stops_the_trials_behind(tmp_path: Path) -> None:
    code, output, state = run_curves(tmp_path, ["0.9", "0.1", "0.95", "0.12"],
                                     {"rule": "median", "minSteps": 1, "minTrials": 1})
    assert code == 0, output
    phases = {t.spec.params["q"]: (t.status.phase, t.status.reason) for t in state.trials}
    assert phases == {"0.9": (TrialPhase.SUCCEEDED, "Completed"), "0.1": (TrialPhase.EARLY_STOPPED, "MedianRule"),
                      "0.95": (TrialPhase.SUCCEEDED, "Completed"), "0.12": (TrialPhase.EARLY_STOPPED, "MedianRule")}
    assert "EarlyStopped" not in output or "■" in output


# --- a runner that survives its trials ---------------------------------------------------------


def test_a_trial_that_deletes_its_output_folder_is_recorded(tmp_path: Path) -> None:
    code, output, state = run_to_end(tmp_path, modes=["rmdir"], max_trials=2, parallel=1)
    assert code == 1 and "Traceback" not in output, output  # the runner goes on; the trials failed their write
    assert [t.status.reason for t in state.trials] == ["NonZeroExit", "NonZeroExit"]
    assert all("FileNotFoundError" in (t.status.message or "") for t in state.trials)  # their own last line


def test_a_metrics_path_made_a_directory_fails_the_trial_and_the_run_resumes(tmp_path: Path) -> None:
    code, output, state = run_to_end(tmp_path, modes=["mkdir"], max_trials=1, parallel=1)
    assert code == 1, output
    (trial,) = state.trials
    assert trial.status.reason == "MetricsInvalid" and "is a directory" in (trial.status.message or "")
    # what a trial killed with its runner leaves: a directory where the next start clears the report
    (tmp_path / "local.state.trials" / "local-1.metrics.json" / "junk").mkdir(parents=True)
    path = write_experiment(tmp_path, modes=["mkdir"], max_trials=2, parallel=1)
    again = kubetune("run", str(path), cwd=tmp_path)  # raising maxTrials continues it
    output, _ = again.communicate(timeout=60)
    assert again.returncode == 1 and "Traceback" not in output, output
    state = load_state(tmp_path / "local.state.yaml")
    assert state is not None and [t.status.reason for t in state.trials] == ["MetricsInvalid", "MetricsInvalid"]


def test_a_fifo_at_the_metrics_path_neither_hangs_the_runner_nor_stops_deadlines(tmp_path: Path) -> None:
    started = time.monotonic()
    _, output, state = run_to_end(tmp_path, modes=["fifo", "hang"], max_trials=2, parallel=2, deadline=2)
    assert time.monotonic() - started < 30
    reasons = sorted(t.status.reason or "" for t in state.trials)
    assert reasons == ["DeadlineExceeded", "MetricsInvalid"], output


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_trial_leaves_no_process_behind_not_even_a_setsid_grandchild(tmp_path: Path) -> None:
    code, output, _ = run_to_end(tmp_path, modes=["spawn"], max_trials=2, parallel=2)
    assert code == 0, output
    pids = [int(p) for p in (tmp_path / "spawned.txt").read_text().split()]
    assert len(pids) == 4
    wait_for(lambda: not any(_alive(p) for p in pids), timeout=10)


def test_control_characters_of_a_trial_never_reach_the_state(tmp_path: Path) -> None:
    _, _, state = run_to_end(tmp_path, modes=["noise"], max_trials=1, parallel=1)
    (trial,) = state.trials
    assert trial.status.message == "exited with code 1: bad \\x00 byte \\x1b[31mred"


# --- a state file that is safe -----------------------------------------------------------------


def test_a_second_run_of_the_same_state_is_refused_naming_the_first(tmp_path: Path) -> None:
    path = write_experiment(tmp_path, modes=["hang"], max_trials=2, parallel=2)
    first = kubetune("run", str(path), cwd=tmp_path)
    try:
        wait_for(lambda: (tmp_path / "local.state.yaml.lock").exists() and bool(
            (tmp_path / "local.state.yaml.lock").read_text()))
        second = kubetune("run", str(path), cwd=tmp_path)
        output, _ = second.communicate(timeout=30)
        assert second.returncode == 2, output
        assert f"is in use by another `kubetune run` (pid {first.pid} on" in output
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=30)


def test_temp_files_of_a_killed_write_are_cleaned_up(tmp_path: Path) -> None:
    leftover = tmp_path / ".local.state.yaml.abc123"
    leftover.write_text("half a state")
    code, output, _ = run_to_end(tmp_path, modes=["ok"], max_trials=1, parallel=1)
    assert code == 0, output
    assert not leftover.exists()
    assert not list(tmp_path.glob(".local.state.yaml.*"))


def test_a_state_of_another_search_space_is_refused_and_fresh_starts_anew(tmp_path: Path) -> None:
    code, _, _ = run_to_end(tmp_path, modes=["ok"], max_trials=2, parallel=1)
    assert code == 0
    path = write_experiment(tmp_path, modes=["ok", "other"], max_trials=2, parallel=1)
    refused = kubetune("run", str(path), cwd=tmp_path)
    output, _ = refused.communicate(timeout=30)
    assert refused.returncode == 2, output
    assert "of a different search space or objective (parameter(s) changed: mode)" in output
    assert "--fresh" in output
    fresh = kubetune("run", str(path), "--fresh", cwd=tmp_path)
    output, _ = fresh.communicate(timeout=60)
    assert fresh.returncode == 0, output
    new = load_state(tmp_path / "local.state.yaml")
    assert new is not None and new.spec is not None
    assert [p.values for p in new.spec.parameters if p.name == "mode"] == [["ok", "other"]]
    assert (tmp_path / "local.state.yaml.bak").exists()  # the old state is kept aside, not lost


def test_a_suspended_experiment_exits_with_its_own_code(tmp_path: Path) -> None:
    code, output, state = run_to_end(tmp_path, modes=["ok"], max_trials=2, parallel=1, suspend=True)
    assert code == 3, output
    assert "Suspended" in output
    assert state.status.phase == "Suspended"
