"""The local runner: the lifecycle plan executed with trials as subprocesses on this machine.

Everything lives in one state file (:mod:`kubetune.local_state`: the spec it ran with, the
Experiment's status and its Trials, the same models the operator stores in the API server),
written atomically after every change, under an exclusive lock so two runs never share it. A trial is recorded
before its process starts, so a runner killed at any moment resumes with no trial lost or run
twice: finished trials are kept, trials that were running start again.

The runner decides nothing itself: :func:`kubetune.lifecycle.plan` says which trials to create
and to stop, :mod:`kubetune.outcomes` what a trial's exit, report, curve and deadline amount to.
It observes (process exits, the new lines of each trial's output, deadlines) and executes.

Each trial runs in its own session and process group, with ``KUBETUNE_RUN_STATE`` (this state
file) in its environment. When it ends or is stopped, its whole group is ended, and on Linux so
is every process that carries its name and this state file in its environment (a ``setsid``
grandchild leaves the group but keeps the environment); a run starting after a crash first ends
what the crashed run left behind.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from kubetune import curves, outcomes
from kubetune.api import (
    Experiment,
    ExperimentStatus,
    ObjectMeta,
    Trial,
    TrialPhase,
    TrialReason,
    TrialSpec,
    TrialStatus,
    now_rfc3339,
)
from kubetune.lifecycle import Event, Plan, plan
from kubetune.local_state import (
    LocalState,
    StateError,
    load_state,
    remove_temp_files,
    resume_problem,
    save_state,
    state_lock,
    trial_dir_of,
)
from kubetune.metrics import MAX_REPORT_BYTES
from kubetune.priors import PriorSource
from kubetune.stopping import rung_points
from kubetune.trial import RenderError, render_process

#: How much of a trial's output is read back for metric lines and the failure reason.
OUTPUT_TAIL_BYTES = 1 << 20
#: The most of a trial's new output read in one round (a trial printing faster is read over several).
READ_CHUNK_BYTES = 1 << 20
STOP_GRACE_SECONDS = 5.0
#: Planning again because only curves moved happens at most this often (a new or ended trial: at once).
CURVE_PLAN_SECONDS = 0.5
#: Names the state file a trial process belongs to, so its leftovers can be found.
RUN_STATE_ENV = "KUBETUNE_RUN_STATE"
TRIAL_ENV = "KUBETUNE_TRIAL"


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
    #: A read handle on the trial's log (it survives the trial deleting the file).
    reader: IO[bytes]
    metrics_path: Path
    started: float
    timeout: float | None
    partial: bytes = b""
    #: Set when the runner ended the trial itself (a deadline): what it amounts to.
    ending: outcomes.Ended | None = None
    #: When SIGTERM was sent (SIGKILL follows after the grace period).
    terminated_at: float | None = None
    killed: bool = False


class LocalRunner:
    """Runs one experiment to its end (or until interrupted); see the module docstring."""

    def __init__(self, experiment: Experiment, *, state_path: Path, workdir: Path, display: Display,
                 poll_seconds: float = 0.1, clock: Callable[[], str] = now_rfc3339, fresh: bool = False,
                 stop_grace: float = STOP_GRACE_SECONDS) -> None:
        self.experiment = experiment
        self.state_path = state_path
        self.workdir = workdir
        self.display = display
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.stop_grace = stop_grace
        self.trial_dir = trial_dir_of(state_path)
        self.processes: dict[str, _Process] = {}
        self.stop_requested = False
        self.fresh = fresh
        self._curves_moved = False
        self._saved_at = 0.0
        state = None if fresh else load_state(state_path)
        if state is not None:
            if state.experiment != experiment.metadata.name:
                raise StateError(f"{state_path} belongs to experiment {state.experiment!r}, "
                                 f"not {experiment.metadata.name!r}; pass --state to use another file")
            problem = resume_problem(state, experiment)
            if problem is not None:
                raise StateError(f"{state_path} holds {len(state.trials)} trial(s) of a different search space or "
                                 f"objective ({problem}); pass --fresh to discard them and start anew, or --state "
                                 "to use another file")
        self.state = state or LocalState(experiment=experiment.metadata.name)
        self.state.spec = experiment.spec
        self.prior = self._warm_start_sources()
        for trial in self.state.trials:  # interrupted trials start again from scratch
            if not trial.status.phase.finished:
                trial.status = TrialStatus(phase=TrialPhase.PENDING, message="restarted after the runner stopped")

    def _warm_start_sources(self) -> list[PriorSource]:
        """spec.warmStart's experiments: their state files next to this one's, read once."""
        if self.experiment.spec.warm_start is None:
            return []
        sources = []
        for name in self.experiment.spec.warm_start.experiments:
            path = self.state_path.parent / f"{name}.state.yaml"
            try:
                found = load_state(path)
            except StateError as err:
                sources.append(PriorSource(name, None, f"{name}: {err}"))
                continue
            if found is None:
                sources.append(PriorSource(name, None, f"{name}: no state file {path}"))
            else:
                sources.append(PriorSource(name, [t for t in found.trials if t.status.phase.finished]))
        return sources

    @property
    def resumed(self) -> int:
        return sum(1 for t in self.state.trials if t.status.phase.finished)

    def run(self) -> ExperimentStatus:
        """Run to the end; KeyboardInterrupt after SIGINT/SIGTERM (trials stopped, state kept)."""
        with state_lock(self.state_path), _on_stop_signal(self._request_stop):
            remove_temp_files(self.state_path)
            _end_processes(_leftovers(self.state_path, None))  # of a run that was killed
            if self.fresh:
                self._discard_old_state()
            try:
                return self._loop()
            finally:
                self._stop_all()
                save_state(self.state_path, self.state)

    def _discard_old_state(self) -> None:
        for path in (self.state_path, self.trial_dir):
            backup = path.with_name(path.name + ".bak")
            if path.exists():
                if backup.is_dir():
                    shutil.rmtree(backup, ignore_errors=True)
                path.replace(backup)

    def _request_stop(self) -> None:
        self.stop_requested = True

    def _check_stop(self) -> None:
        if self.stop_requested:
            raise KeyboardInterrupt

    # --- the loop ---------------------------------------------------------------------------

    def _loop(self) -> ExperimentStatus:
        planned_at = -1e9
        must_plan = True
        while True:
            self._check_stop()
            if must_plan or (self._curves_moved and time.monotonic() - planned_at >= CURVE_PLAN_SECONDS):
                decision = self._plan()
                planned_at, must_plan, self._curves_moved = time.monotonic(), False, False
                if self._execute(decision):
                    must_plan = True
                    continue
            self._start_pending()
            self.display.status(self.state.status)
            if not self.processes and not any(t.status.phase is TrialPhase.PENDING for t in self.state.trials):
                return self.state.status  # finished, or suspended with nothing running
            if self._tick():
                must_plan = True
            else:
                time.sleep(self.poll_seconds)

    def _plan(self) -> Plan:
        current = self.experiment.model_copy(update={"status": self.state.status})
        decision = plan(current, self.state.trials, now=self.clock(), prior=self.prior)
        self.state.status = decision.status
        for new in decision.create:
            self.state.trials.append(Trial(
                metadata=ObjectMeta(name=new.name),
                spec=TrialSpec(index=new.index, params=new.params),
            ))
        for event in decision.events:
            self.display.event(event)
        return decision

    def _execute(self, decision: Plan) -> bool:
        """Record the plan's rungs and stop requests, then act; True when a trial ended meanwhile."""
        now = self.clock()
        for name, rungs in decision.rungs.items():
            trial = self._trial(name)
            trial.status = trial.status.model_copy(update={"rungs": rungs})
        requests = outcomes.stop_requests(decision.stop, decision.kill, now)
        for name, request in requests.items():
            trial = self._trial(name)
            trial.status = outcomes.stop_requested(trial.status, request)
        save_state(self.state_path, self.state)  # recorded before anything starts or stops
        ended = False
        for name in requests:
            ended |= self._begin_stop(name)
        return ended

    def _trial(self, name: str) -> Trial:
        return next(t for t in self.state.trials if t.metadata.name == name)

    def _begin_stop(self, name: str) -> bool:
        """Stop a trial that has a stop request; True when it is over at once (it never started)."""
        trial = self._trial(name)
        proc = self.processes.get(name)
        if proc is None:
            if trial.status.phase.finished or trial.status.stop is None:
                return False
            self._record(trial, outcomes.Ended(trial.status.stop.reason, trial.status.stop.message))
            return True
        if proc.terminated_at is None:
            _signal_group(proc.popen.pid, signal.SIGTERM)
            proc.terminated_at = time.monotonic()
        return False

    # --- one round of observation -----------------------------------------------------------

    def _tick(self) -> bool:
        """Read new output, notice exits and deadlines, escalate stops; True when a trial ended."""
        ended = False
        now = time.monotonic()
        for name, proc in list(self.processes.items()):
            trial = self._trial(name)
            self._read_progress(trial, proc)
            code = proc.popen.poll()
            if code is not None:
                self._finish(trial, proc, code)
                ended = True
                continue
            if proc.ending is None and proc.timeout is not None and now - proc.started > proc.timeout:
                proc.ending = outcomes.deadline_exceeded(proc.timeout)
                _signal_group(proc.popen.pid, signal.SIGTERM)
                proc.terminated_at = now
            if proc.terminated_at is not None and not proc.killed and now - proc.terminated_at > self.stop_grace:
                _signal_group(proc.popen.pid, signal.SIGKILL)
                proc.killed = True
        return ended

    def _read_progress(self, trial: Trial, proc: _Process) -> int:
        """Add the trial's new progress lines to its curve; the number of bytes read."""
        chunk = proc.reader.read(READ_CHUNK_BYTES)  # the rest waits for the next round
        if not chunk:
            return 0
        data = proc.partial + chunk
        *complete, proc.partial = data.split(b"\n")
        lines = [line.decode(errors="replace") for line in complete]
        spec = self.experiment.spec
        points = curves.parse_points(lines, spec.objective.metric_names, after=trial.status.last_step)
        if points:
            steps = [p.step for p in [*trial.status.curve, *points]]
            trial.status = outcomes.progressed(trial.status, points, protect=rung_points(spec.early_stopping, steps))
            self._curves_moved = True
            self._save_throttled()
        return len(chunk)

    def _save_throttled(self) -> None:
        if time.monotonic() - self._saved_at >= CURVE_PLAN_SECONDS:
            save_state(self.state_path, self.state)
            self._saved_at = time.monotonic()

    def _start_pending(self) -> None:
        started = False
        for trial in self.state.trials:
            if trial.status.phase is not TrialPhase.PENDING or trial.metadata.name in self.processes:
                continue
            if trial.status.stop is not None:
                continue  # stopped before it started: _begin_stop records it
            self._start(trial)
            started = True
        if started:
            save_state(self.state_path, self.state)

    def _start(self, trial: Trial) -> None:
        name = trial.metadata.name
        self.trial_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.trial_dir / f"{name}.log"
        metrics_path = self.trial_dir / f"{name}.metrics.json"
        _remove(metrics_path)
        try:
            spec = render_process(self.experiment, trial, workdir=str(self.workdir),
                                  metrics_file=str(metrics_path), base_env=os.environ)
            argv = list(spec.argv)
            if argv[0] in ("python", "python3"):
                argv[0] = sys.executable  # the trial sees the same interpreter and packages as kubetune
            env = {**spec.env, RUN_STATE_ENV: str(self.state_path.resolve())}
            with log_path.open("wb") as log:
                popen = subprocess.Popen(
                    argv, cwd=spec.cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True,
                    preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                )
            reader = log_path.open("rb")
        except RenderError as err:
            self._record(trial, outcomes.Ended(TrialReason.INVALID_TEMPLATE, str(err)))
            return
        except OSError as err:
            self._record(trial, outcomes.Ended(TrialReason.START_FAILED, str(err)))
            return
        trial.status = outcomes.running(trial.status, self.clock())
        self.processes[name] = _Process(popen, reader, metrics_path, time.monotonic(), spec.timeout_seconds)

    def _finish(self, trial: Trial, proc: _Process, code: int) -> None:
        del self.processes[trial.metadata.name]
        while self._read_progress(trial, proc):  # all of it: the curve is complete when the trial ends
            pass
        _end_processes(_group_and_leftovers(proc.popen.pid, self.state_path, trial.metadata.name))
        observed: outcomes.Observation
        if proc.ending is not None:
            observed = proc.ending
        else:
            report, problem = read_report(proc.metrics_path)
            observed = outcomes.Exited(
                exit_code=code if code >= 0 else None, signal=-code if code < 0 else None,
                report=report, report_problem=problem, output=_tail(proc.reader))
        proc.reader.close()
        self._record(trial, observed)

    def _record(self, trial: Trial, observed: outcomes.Observation) -> None:
        spec = self.experiment.spec
        trial.status = outcomes.judge(objective=spec.objective, source=spec.metrics_source, status=trial.status,
                                      observed=observed, now=self.clock())
        save_state(self.state_path, self.state)
        best = self.state.status.best_trial
        self.display.trial_finished(trial, best.objective_value if best else None)

    def _stop_all(self) -> None:
        """Stop every running trial; they stay Running in the state file and restart on resume."""
        for name, proc in list(self.processes.items()):
            _signal_group(proc.popen.pid, signal.SIGTERM)
            try:
                proc.popen.wait(timeout=self.stop_grace)
            except subprocess.TimeoutExpired:
                _signal_group(proc.popen.pid, signal.SIGKILL)
                with suppress(subprocess.TimeoutExpired):
                    proc.popen.wait(timeout=5)
            _end_processes(_group_and_leftovers(proc.popen.pid, self.state_path, name))
            proc.reader.close()
        self.processes.clear()


# --- files -------------------------------------------------------------------------------------


def read_report(path: Path) -> tuple[str | None, str | None]:
    """(the report's text or None, why it could not be read or None), never blocking.

    The trial owns the path and may have made it anything: a missing file is no report; a
    directory, FIFO or device is a problem named in the trial's reason, not a crash or a hang.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return None, None
    except OSError as err:
        return None, f"the metrics file {path} cannot be read: {err.strerror}"
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "directory" if stat.S_ISDIR(mode) else "FIFO" if stat.S_ISFIFO(mode) else "special file"
            return None, f"the metrics file {path} is a {kind}, not a regular file"
        chunks, size = [], 0
        while size <= MAX_REPORT_BYTES:
            chunk = os.read(fd, MAX_REPORT_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks).decode(errors="replace"), None
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    """Remove whatever is at ``path`` (a file, a FIFO, a directory a trial made there)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with suppress(FileNotFoundError):
            path.unlink()


def _tail(reader: IO[bytes]) -> str:
    reader.seek(0, os.SEEK_END)
    size = reader.tell()
    reader.seek(max(0, size - OUTPUT_TAIL_BYTES))
    return reader.read().decode(errors="replace")


# --- processes ---------------------------------------------------------------------------------


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _leftovers(state_path: Path, trial: str | None) -> list[int]:
    """Linux: the processes whose environment names this state file (and ``trial``, when given)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    marker = f"{RUN_STATE_ENV}={state_path.resolve()}".encode()
    wanted = f"{TRIAL_ENV}={trial}".encode() if trial is not None else None
    found = []
    me = os.getpid()
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            variables = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in variables and (wanted is None or wanted in variables):
            found.append(int(entry.name))
    return found


def _group_and_leftovers(pgid: int, state_path: Path, trial: str) -> list[int]:
    _signal_group(pgid, signal.SIGKILL)
    return _leftovers(state_path, trial)


def _end_processes(pids: list[int]) -> None:
    for pid in pids:
        with suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


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


