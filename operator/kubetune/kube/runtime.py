"""What the operator's handlers share in one process: the API client, metrics, pass coalescers.

Created at startup and kept in kopf's ``memo``; nothing here outlives the process or needs to:
the API server holds all state that matters.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kubetune.api import Experiment, TrialPhase, WorkloadKind
from kubetune.kube.client import KubeApi
from kubetune.kube.coalescing import Coalescer
from kubetune.kube.events import EventPoster
from kubetune.kube.metrics import OperatorMetrics

log = logging.getLogger(__name__)


def _env_float(name: str, default: float) -> float:
    """A number from the environment; anything else is ignored with a warning.

    Kubernetes' service links inject ``<SERVICE>_PORT=tcp://…`` variables into pods, and a Service
    named ``kubetune-metrics`` makes ``KUBETUNE_METRICS_PORT`` one of them: such a value must never
    crash the operator.
    """
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        log.warning("ignoring %s=%r: not a number; using %s", name, raw, default)
        return default


class ConfigError(ValueError):
    """A setting of the operator that cannot work; the message names it."""


def trial_kinds(text: str) -> tuple[str, ...]:
    """``KUBETUNE_TRIAL_KINDS``: comma-separated kinds of :class:`kubetune.api.WorkloadKind` beyond Job."""
    kinds = tuple(k.strip() for k in text.split(",") if k.strip() and k.strip() != "Job")
    unknown = [k for k in kinds if k not in WorkloadKind.__members__.values()]
    if unknown:
        raise ConfigError(f"KUBETUNE_TRIAL_KINDS: unknown kind(s) {', '.join(unknown)} "
                          f"(known: {', '.join(k.value for k in WorkloadKind if k is not WorkloadKind.JOB)})")
    return kinds


@dataclass(frozen=True)
class OperatorConfig:
    """Knobs of the operator; environment variables ``KUBETUNE_*`` set them under ``kopf run``."""

    namespaces: tuple[str, ...] = ()
    metrics_port: int = 8080
    health_port: int = 8081
    #: A pod unschedulable (or a Job without a pod) for longer than this fails its Trial.
    unschedulable_seconds: float = 600.0
    #: The safety net: unfinished Experiments are re-reconciled this often, unfinished Trials half as often.
    resync_seconds: float = 30.0
    #: Threads for lifecycle.plan (GP fitting): a slow plan never blocks the event loop.
    plan_workers: int = 2
    #: A running trial's log is read for new progress lines (its learning curve) this often.
    progress_seconds: float = 15.0
    #: Workload kinds beyond Job that trials may run as (``KUBETUNE_TRIAL_KINDS``, e.g. ``JobSet``).
    trial_kinds: tuple[str, ...] = ()
    #: The validating admission webhook's HTTPS port (0: not served; see :mod:`.admission`).
    webhook_port: int = 0
    #: Where its certificate is: ``tls.crt`` and ``tls.key`` (a kubernetes.io/tls Secret, mounted).
    webhook_cert_dir: str = "/etc/kubetune/webhook"

    @property
    def webhook_files(self) -> tuple[str, str]:
        """The webhook's certificate and key files."""
        return os.path.join(self.webhook_cert_dir, "tls.crt"), os.path.join(self.webhook_cert_dir, "tls.key")

    def check(self) -> None:
        """Refuse, before kopf starts, what would only fail later (a webhook without its certificate)."""
        if self.webhook_port:
            missing = [path for path in self.webhook_files if not os.path.isfile(path)]
            if missing:
                raise ConfigError(f"--webhook-port={self.webhook_port} needs its certificate: no "
                                  f"{' and no '.join(missing)} (--webhook-cert-dir; the chart mounts its Secret there)")

    @classmethod
    def from_env(cls, **overrides: object) -> OperatorConfig:
        """The config from ``KUBETUNE_*`` variables; ``overrides`` (command-line flags) win and are not read."""
        knobs: dict[str, tuple[str, float, type]] = {
            "metrics_port": ("KUBETUNE_METRICS_PORT", 8080, int),
            "health_port": ("KUBETUNE_HEALTH_PORT", 8081, int),
            "unschedulable_seconds": ("KUBETUNE_UNSCHEDULABLE_SECONDS", 600.0, float),
            "plan_workers": ("KUBETUNE_PLAN_WORKERS", 2, int),
            "resync_seconds": ("KUBETUNE_RESYNC_SECONDS", 30.0, float),
            "progress_seconds": ("KUBETUNE_PROGRESS_SECONDS", 15.0, float),
        }
        values: dict[str, object] = {
            key: kind(_env_float(env, default)) for key, (env, default, kind) in knobs.items() if key not in overrides
        }
        if "trial_kinds" not in overrides:
            values["trial_kinds"] = trial_kinds(os.environ.get("KUBETUNE_TRIAL_KINDS", ""))
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


@dataclass
class Runtime:
    api: KubeApi
    config: OperatorConfig
    metrics: OperatorMetrics
    plans: ThreadPoolExecutor
    events: EventPoster
    experiments: Coalescer = field(default_factory=Coalescer)
    trials: Coalescer = field(default_factory=Coalescer)
    #: Reads of running trials' logs (a coalescer of their own: they never stand in for a Trial pass).
    progress: Coalescer = field(default_factory=Coalescer)
    #: Background tasks (event poster, resync loop, progress reader), cancelled at cleanup.
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    # Indexes of what the watches last showed; rebuilt from the watches after a restart, so
    # nothing in them matters then. They only spare API calls.
    #: The last phase seen of each Trial, so that only phase changes re-plan its Experiment.
    trial_phases: dict[tuple[str, str], TrialPhase] = field(default_factory=dict)
    #: What of each Trial, when it changes, calls for the Trial's own pass (phase, start, stop request).
    trial_signatures: dict[tuple[str, str], tuple[object, ...]] = field(default_factory=dict)
    #: The last step of each Trial's curve, so that a new point re-plans its Experiment (early stopping).
    trial_steps: dict[tuple[str, str], int | None] = field(default_factory=dict)
    #: The latest body of each unfinished Trial from the watch (the progress reader's starting point).
    trial_bodies: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    #: The running pod (name, container) of each Trial, as its last pass saw it.
    pods: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    #: Whether each Experiment stops trials early (curve changes re-plan it only then).
    early_stopping: dict[tuple[str, str], bool] = field(default_factory=dict)
    #: Experiments whose standing Events this process has posted again (once each, after a start).
    replayed: set[tuple[str, str]] = field(default_factory=set)
    #: Each Experiment as its last pass read it (the progress reader needs its metric names).
    experiment_specs: dict[tuple[str, str | None], Experiment] = field(default_factory=dict)

    @property
    def unschedulable_after(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.config.unschedulable_seconds)

    def trial_finished(self, namespace: str, name: str) -> bool:
        phase = self.trial_phases.get((namespace, name))
        return phase is not None and phase.finished
