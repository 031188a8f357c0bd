"""The local runner: the lifecycle plan executed with trials as subprocesses on this machine.

Everything lives in one state file (the Experiment's status and its Trials, the same models the
operator stores in the API server), written atomically (write, then rename) after every change.
A trial is recorded before its process starts, so a runner killed at any moment resumes with no
trial lost or run twice: finished trials are kept, trials that were running start again.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

import yaml
from pydantic import Field

from kubetune.api import (
    Experiment,
    ExperimentStatus,
    Model,
    ObjectMeta,
    Trial,
    TrialPhase,
    TrialSpec,
    TrialStatus,
    now_rfc3339,
)
from kubetune.lifecycle import Event, plan
from kubetune.metrics import Outcome, harvest
from kubetune.trial import RenderError, render_process

#: How much of a trial's output is read back for metric lines and the failure reason.
OUTPUT_TAIL_BYTES = 1 << 20
STOP_GRACE_SECONDS = 5.0


class LocalState(Model):
    """The state file: what the API server would hold for this experiment."""

    experiment: str
    status: ExperimentStatus = Field(default_factory=ExperimentStatus)
    trials: list[Trial] = Field(default_factory=list)


class StateError(RuntimeError):
    """A state file that cannot be used with this experiment."""


def default_state_path(experiment_file: Path, experiment: Experiment) -> Path:
    return experiment_file.resolve().parent / f"{experiment.metadata.name}.state.yaml"


def load_state(path: Path) -> LocalState | None:
    if not path.exists():
        return None
    try:
        return LocalState.model_validate(yaml.safe_load(path.read_text()) or {})
    except Exception as err:
        raise StateError(f"{path}: not a kubetune state file ({err})") from err


def save_state(path: Path, state: LocalState) -> None:
    """Write atomically: a crash leaves either the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "# kubetune local state: the experiment's status and its trials\n" + yaml.safe_dump(
        state.to_wire(), sort_keys=False, width=120)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Display(Protocol):
    def event(self, event: Event) -> None: ...
    def trial_finished(self, trial: Trial, best: float | None) -> None: ...
    def status(self, status: ExperimentStatus) -> None: ...


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the trial is killed if the runner dies (even by SIGKILL), so no orphan outlives it."""
    with suppress(Exception):
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclass
class _Process:
    popen: subprocess.Popen[bytes]
    log: IO[bytes]
    log_path: Path
    metrics_path: Path
    started: float
    timeout: float | None


class LocalRunner:
    """Runs one experiment to its end (or until interrupted); see the module docstring."""

    def __init__(self, experiment: Experiment, *, state_path: Path, workdir: Path, display: Display,
                 poll_seconds: float = 0.1, clock: Callable[[], str] = now_rfc3339) -> None:
        self.experiment = experiment
        self.state_path = state_path
        self.workdir = workdir
        self.display = display
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.trial_dir = state_path.with_name(state_path.name.removesuffix(".yaml") + ".trials")
        self.processes: dict[str, _Process] = {}
        self.stop_requested = False
        state = load_state(state_path)
        if state is not None and state.experiment != experiment.metadata.name:
            raise StateError(f"{state_path} belongs to experiment {state.experiment!r}, "
                             f"not {experiment.metadata.name!r}; pass --state to use another file")
        self.state = state or LocalState(experiment=experiment.metadata.name)
        for trial in self.state.trials:  # interrupted trials start again from scratch
            if not trial.status.phase.finished:
                trial.status = TrialStatus(phase=TrialPhase.PENDING, message="restarted after the runner stopped")

    @property
    def resumed(self) -> int:
        return sum(1 for t in self.state.trials if t.status.phase.finished)

    def run(self) -> ExperimentStatus:
        """Run to the end; KeyboardInterrupt after SIGINT/SIGTERM (trials stopped, state kept)."""
        with _on_stop_signal(self._request_stop):
            try:
                return self._loop()
            finally:
                self._stop_all()
                save_state(self.state_path, self.state)

    def _request_stop(self) -> None:
        self.stop_requested = True

    def _check_stop(self) -> None:
        if self.stop_requested:
            raise KeyboardInterrupt

    def _loop(self) -> ExperimentStatus:
        while True:
            self._check_stop()
            current = self.experiment.model_copy(update={"status": self.state.status})
            decision = plan(current, self.state.trials, now=self.clock())
            self.state.status = decision.status
            for new in decision.create:
                self.state.trials.append(Trial(
                    metadata=ObjectMeta(name=new.name),
                    spec=TrialSpec(index=new.index, params=new.params),
                ))
            for event in decision.events:
                self.display.event(event)
            save_state(self.state_path, self.state)  # recorded before anything starts
            for name in decision.kill:
                self._kill(name)
            if decision.kill:
                continue
            self._start_pending()
            self.display.status(self.state.status)
            if self.processes:
                self._wait_for_any()
            elif not decision.create:
                # finished, or suspended with nothing running: nothing more happens in this run
                return self.state.status

    def _trial(self, name: str) -> Trial:
        return next(t for t in self.state.trials if t.metadata.name == name)

    def _start_pending(self) -> None:
        for trial in self.state.trials:
            if trial.status.phase is not TrialPhase.PENDING or trial.metadata.name in self.processes:
                continue
            self._start(trial)
        save_state(self.state_path, self.state)

    def _start(self, trial: Trial) -> None:
        name = trial.metadata.name
        self.trial_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.trial_dir / f"{name}.log"
        metrics_path = self.trial_dir / f"{name}.metrics.json"
        metrics_path.unlink(missing_ok=True)
        try:
            spec = render_process(self.experiment, trial, workdir=str(self.workdir),
                                  metrics_file=str(metrics_path), base_env=os.environ)
            argv = list(spec.argv)
            if argv[0] in ("python", "python3"):
                argv[0] = sys.executable  # the trial sees the same interpreter and packages as kubetune
            log = log_path.open("wb")
            popen = subprocess.Popen(
                argv, cwd=spec.cwd, env=spec.env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        except (RenderError, OSError) as err:
            reason = "InvalidTemplate" if isinstance(err, RenderError) else "StartFailed"
            self._record(trial, Outcome(False, reason, str(err)))
            return
        trial.status = TrialStatus(phase=TrialPhase.RUNNING, start_time=self.clock())
        self.processes[name] = _Process(popen, log, log_path, metrics_path, time.monotonic(), spec.timeout_seconds)

    def _wait_for_any(self) -> None:
        """Block until at least one trial finishes (or runs past its deadline); record it."""
        while True:
            self._check_stop()
            done = False
            for name, proc in list(self.processes.items()):
                code = proc.popen.poll()
                if code is not None:
                    self._finish(name, proc, code)
                    done = True
                elif proc.timeout is not None and time.monotonic() - proc.started > proc.timeout:
                    self._stop(proc)
                    self._finish(name, proc, None, deadline=proc.timeout)
                    done = True
            if done:
                return
            time.sleep(self.poll_seconds)

    def _finish(self, name: str, proc: _Process, code: int | None, *, deadline: float | None = None) -> None:
        del self.processes[name]
        proc.log.close()
        trial = self._trial(name)
        if deadline is not None:
            outcome = Outcome(False, "DeadlineExceeded", f"ran longer than activeDeadlineSeconds={deadline:g}")
        elif code is not None and code < 0:
            outcome = Outcome(False, "Killed", f"killed by signal {-code} ({signal.Signals(-code).name})")
        else:
            report = proc.metrics_path.read_text(errors="replace") if proc.metrics_path.exists() else None
            outcome = harvest(objective=self.experiment.spec.objective, source=self.experiment.spec.metrics_source,
                              exit_code=code, report=report, output=_tail(proc.log_path))
        self._record(trial, outcome)

    def _record(self, trial: Trial, outcome: Outcome) -> None:
        trial.status = trial.status.model_copy(update={
            "phase": TrialPhase.SUCCEEDED if outcome.succeeded else TrialPhase.FAILED,
            "metrics": outcome.metrics,
            "objective_value": outcome.objective_value,
            "reason": outcome.reason,
            "message": outcome.message,
            "completion_time": self.clock(),
        })
        save_state(self.state_path, self.state)
        best = self.state.status.best_trial
        self.display.trial_finished(trial, best.objective_value if best else None)

    def _kill(self, name: str) -> None:
        proc = self.processes.pop(name, None)
        if proc is not None:
            self._stop(proc)
            proc.log.close()
        trial = self._trial(name)
        trial.status = trial.status.model_copy(update={
            "phase": TrialPhase.KILLED, "reason": "ExperimentFinished",
            "message": "stopped because the experiment ended", "completion_time": self.clock(),
        })
        save_state(self.state_path, self.state)

    def _stop(self, proc: _Process) -> None:
        """SIGTERM the trial's process group, SIGKILL it after a grace period."""
        for sig, wait in ((signal.SIGTERM, STOP_GRACE_SECONDS), (signal.SIGKILL, None)):
            with suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, sig)
            try:
                proc.popen.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def _stop_all(self) -> None:
        """Stop every running trial; they stay Running in the state file and restart on resume."""
        for proc in list(self.processes.values()):
            self._stop(proc)
            proc.log.close()
        self.processes.clear()


def _tail(path: Path) -> str:
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - OUTPUT_TAIL_BYTES))
        return handle.read().decode(errors="replace")


@contextmanager
def _on_stop_signal(request_stop: Callable[[], None]) -> Iterator[None]:
    """SIGINT and SIGTERM ask the runner to stop; it does so at its next safe point.

    The handler only sets a flag: an exception raised from a signal handler can land where Python
    swallows it (a fork hook inside ``subprocess``, a finalizer), and the run would go on.
    SIGINT is set explicitly: a process started in the background by a non-interactive shell
    inherits SIGINT as ignored, and Ctrl-C (or ``kill -INT``) must still stop the run.
    """

    def on_signal(signum: int, frame: object) -> None:
        request_stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
