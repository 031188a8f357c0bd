"""The local runner's state file: what the API server would hold for one experiment, on disk.

One YAML file (the spec it ran with, the Experiment's status and its Trials, the same models the
operator stores in the API server), written atomically (write, then rename), under an exclusive
lock so two runs never share it. :mod:`kubetune.local` runs trials against it.
"""

from __future__ import annotations

import fcntl
import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import yaml
from pydantic import Field

from kubetune.api import Experiment, ExperimentSpec, ExperimentStatus, Model, Trial, now_rfc3339


class LocalState(Model):
    """The state file: what the API server would hold for this experiment."""

    experiment: str
    #: The spec the trials were run with (a different search space or objective cannot resume them).
    spec: ExperimentSpec | None = None
    status: ExperimentStatus = Field(default_factory=ExperimentStatus)
    trials: list[Trial] = Field(default_factory=list)


class StateError(RuntimeError):
    """A state file that cannot be used with this experiment (or by this run)."""


def default_state_path(experiment_file: Path, experiment: Experiment) -> Path:
    return experiment_file.resolve().parent / f"{experiment.metadata.name}.state.yaml"


def trial_dir_of(state_path: Path) -> Path:
    return state_path.with_name(state_path.name.removesuffix(".yaml") + ".trials")


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
    text = "# kubetune local state: the experiment's spec, its status and its trials\n" + yaml.safe_dump(
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


def remove_temp_files(path: Path) -> int:
    """Delete the temporary files an interrupted :func:`save_state` left (call with the lock held)."""
    removed = 0
    for leftover in path.parent.glob(f".{path.name}.*"):
        with suppress(OSError):
            leftover.unlink()
            removed += 1
    return removed


@contextmanager
def state_lock(path: Path) -> Iterator[None]:
    """Hold ``<state>.lock`` exclusively for the run; a second run is refused, naming the holder."""
    lock_path = path.with_name(path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = lock_path.open("a+")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise StateError(f"{path} is in use by another `kubetune run` ({holder}); wait for it to end, or pass "
                             "--state to give this run a state file of its own") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}, since {now_rfc3339()}\n")
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the lock


def resume_problem(state: LocalState, experiment: Experiment) -> str | None:
    """Why ``state``'s trials cannot continue ``experiment`` (another search space or objective), or None."""
    if state.spec is None:
        return None
    old, new = state.spec, experiment.spec
    changes = []
    old_params = {p.name: p.to_wire() for p in old.parameters}
    new_params = {p.name: p.to_wire() for p in new.parameters}
    added = sorted(set(new_params) - set(old_params))
    removed = sorted(set(old_params) - set(new_params))
    changed = sorted(n for n in set(old_params) & set(new_params) if old_params[n] != new_params[n])
    if added:
        changes.append(f"parameter(s) added: {', '.join(added)}")
    if removed:
        changes.append(f"parameter(s) removed: {', '.join(removed)}")
    if changed:
        changes.append(f"parameter(s) changed: {', '.join(changed)}")
    if (old.objective.metric, old.objective.goal) != (new.objective.metric, new.objective.goal):
        changes.append(f"objective changed from {old.objective.goal.value} {old.objective.metric} to "
                       f"{new.objective.goal.value} {new.objective.metric}")
    return "; ".join(changes) or None
