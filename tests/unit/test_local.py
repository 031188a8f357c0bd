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
from kubetune.local import LocalState, load_state

TRIAL_SCRIPT = '''
import json, os, sys, time
x = float(os.environ["KUBETUNE_PARAM_X"])
mode = os.environ["KUBETUNE_PARAM_MODE"]
time.sleep(float(os.environ.get("TRIAL_SLEEP", "0")))
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
