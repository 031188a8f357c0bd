"""The trial side of the trial contract: read parameters, print progress, write the final metrics.

Used inside training containers, so it imports the standard library only (no numpy, no pydantic)
and can be copied into an image on its own as ``kubetune/report.py``. No other kubetune module
imports it.

* :func:`params` / :func:`param` read the assignment from ``KUBETUNE_PARAM_<NAME>`` env vars
  (``NAME`` is the parameter name upper-cased).
* :func:`report_progress` prints ``kubetune: epoch=3 accuracy=0.84 loss=0.5`` on stdout, flushed.
* :func:`report_metrics` writes one JSON object of finite numbers, at most 4 KiB, to
  ``$KUBETUNE_METRICS_FILE`` (local runs) or ``/dev/termination-log`` (the pod's termination
  message), atomically where the file system allows it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import sys
import tempfile
from collections.abc import Mapping
from typing import Final, TypeVar, cast

PARAM_ENV_PREFIX: Final = "KUBETUNE_PARAM_"
METRICS_FILE_ENV: Final = "KUBETUNE_METRICS_FILE"
TRIAL_ENV: Final = "KUBETUNE_TRIAL"
EXPERIMENT_ENV: Final = "KUBETUNE_EXPERIMENT"
TERMINATION_LOG: Final = "/dev/termination-log"
#: The kubelet keeps at most 4096 bytes of a termination message.
MAX_REPORT_BYTES: Final = 4096
PROGRESS_PREFIX: Final = "kubetune:"

# Same pattern as kubetune.api.METRIC_PATTERN (not imported: that module needs pydantic).
_METRIC_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/]*$")
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

_T = TypeVar("_T", int, float, str, bool)


class ReportError(ValueError):
    """Metrics or parameters that break the trial contract."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


# --- parameters --------------------------------------------------------------------------------


def params(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every ``KUBETUNE_PARAM_*`` variable, keyed by the lower-cased parameter name, values as text.

    Env var names are upper-cased, so the original case of a name is not recoverable; look a
    parameter up with :func:`param` when you know its name.
    """
    env = os.environ if environ is None else environ
    return {
        key[len(PARAM_ENV_PREFIX):].lower(): value
        for key, value in env.items()
        if key.startswith(PARAM_ENV_PREFIX) and len(key) > len(PARAM_ENV_PREFIX)
    }


def param_env_name(name: str) -> str:
    """The env var carrying parameter ``name``: ``learning_rate`` → ``KUBETUNE_PARAM_LEARNING_RATE``."""
    if not _PARAM_NAME.match(name):
        raise ReportError(f"invalid parameter name {name!r}: must match {_PARAM_NAME.pattern}")
    return PARAM_ENV_PREFIX + name.upper()


def param(
    name: str,
    type: type[_T],
    default: _T | _Missing = MISSING,
    *,
    environ: Mapping[str, str] | None = None,
) -> _T:
    """Parameter ``name`` converted to ``type`` (int, float, str or bool); ``default`` when unset.

    Ints accept an integral float spelling (``"3.0"``); bools accept 1/0, true/false, yes/no,
    on/off. Raises :class:`ReportError` naming the variable when the value does not convert, or
    when it is unset and there is no default.
    """
    if type not in (int, float, str, bool):
        raise ReportError(f"unsupported parameter type {type!r} (use int, float, str or bool)")
    env = os.environ if environ is None else environ
    key = param_env_name(name)
    raw = env.get(key)
    if raw is None or raw.strip() == "":
        if isinstance(default, _Missing):
            raise ReportError(f"parameter {name!r} is not set ({key})")
        return default
    try:
        return cast(_T, _convert(raw.strip(), type))
    except ValueError:
        raise ReportError(f"{key}={raw!r} is not a valid {type.__name__}") from None


def _convert(text: str, kind: type) -> int | float | str | bool:
    if kind is bool:
        lowered = text.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError(text)
    if kind is int:
        try:
            return int(text)
        except ValueError:
            number = float(text)
            if not number.is_integer():
                raise
            return int(number)
    if kind is float:
        number = float(text)
        if not math.isfinite(number):
            raise ValueError(text)
        return number
    return text


def trial_name(environ: Mapping[str, str] | None = None) -> str | None:
    """This trial's name (``KUBETUNE_TRIAL``), or None outside a kubetune run."""
    return (os.environ if environ is None else environ).get(TRIAL_ENV)


# --- progress ----------------------------------------------------------------------------------


def format_progress(step: int | None = None, **metrics: float) -> str:
    """The progress line :func:`report_progress` prints, e.g. ``kubetune: epoch=3 accuracy=0.84``."""
    fields: list[str] = []
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, int):
            raise ReportError(f"step must be an int, got {step!r}")
        fields.append(f"epoch={step}")
    for name, value in metrics.items():
        number = _check_metric(name, value)
        fields.append(f"{name}={_format_number(number)}")
    return " ".join([PROGRESS_PREFIX, *fields])


def report_progress(step: int | None = None, **metrics: float) -> None:
    """Print one progress line on stdout and flush it (the runner may be tailing the log)."""
    print(format_progress(step, **metrics), file=sys.stdout, flush=True)


def _format_number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    return format(value, ".6g")


# --- final metrics -----------------------------------------------------------------------------


def _check_metric(name: object, value: object) -> float:
    if not isinstance(name, str) or not _METRIC_NAME.match(name) or len(name) > 128:
        raise ReportError(f"invalid metric name {name!r}: must match {_METRIC_NAME.pattern}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ReportError(f"metric {name!r} must be a number, got {type(value).__name__} {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ReportError(f"metric {name!r} is not finite ({value!r})")
    return value


def encode_metrics(metrics: Mapping[str, float]) -> bytes:
    """The JSON bytes :func:`report_metrics` writes; ReportError when invalid or over 4 KiB."""
    if not metrics:
        raise ReportError("no metrics to report")
    checked = {name: _check_metric(name, value) for name, value in metrics.items()}
    data = json.dumps(checked, separators=(",", ":"), allow_nan=False).encode()
    if len(data) > MAX_REPORT_BYTES:
        raise ReportError(f"metrics report is {len(data)} bytes; the limit is {MAX_REPORT_BYTES}")
    return data


def metrics_path(environ: Mapping[str, str] | None = None) -> str:
    """Where the report goes: ``$KUBETUNE_METRICS_FILE`` when set, else ``/dev/termination-log``."""
    env = os.environ if environ is None else environ
    return env.get(METRICS_FILE_ENV) or TERMINATION_LOG


def report_metrics(metrics: Mapping[str, float], path: str | None = None) -> None:
    """Write ``metrics`` as one JSON object to ``path`` (default: :func:`metrics_path`).

    Validates first (names, finite numbers, ≤ 4 KiB), so a bad report raises
    :class:`ReportError` and leaves any previous file untouched. The write goes to a temporary
    file in the same folder, then ``os.replace`` — a reader sees the old report or the new one,
    never half of one. ``/dev/termination-log`` is a file bind-mounted by the kubelet, which a
    rename cannot replace (EBUSY) and whose folder may not be writable: there the report is
    written in place with a single ``write`` (the kubelet reads it only after the container
    exits).
    """
    data = encode_metrics(metrics)
    target = path or metrics_path()
    try:
        _replace_atomically(target, data)
    except OSError:
        _write_in_place(target, data)


def _replace_atomically(target: str, data: bytes) -> None:
    folder = os.path.dirname(os.path.abspath(target))
    fd, tmp = tempfile.mkstemp(prefix=".kubetune-metrics-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_in_place(target: str, data: bytes) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        written = os.write(fd, data)
        if written != len(data):
            raise OSError(f"short write to {target}: {written} of {len(data)} bytes")
    finally:
        os.close(fd)
