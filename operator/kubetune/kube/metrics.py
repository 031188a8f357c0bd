"""The operator's Prometheus metrics.

Gauges of experiments and trials by phase are computed at scrape time from the last status each
reconcile pass wrote (a snapshot per experiment, dropped when the experiment is deleted), so they
never drift from what the API server holds. Counters and histograms are the usual process-local
kind: they restart at zero with the operator, as Prometheus expects.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kubetune.api import ExperimentPhase, TrialCounts, TrialPhase

PLAN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(eq=False)  # a registry keys collectors by identity
class PhaseSnapshot(Collector):
    """The last known phase and trial counts of every experiment this operator reconciled."""

    experiments: dict[tuple[str, str], tuple[ExperimentPhase, TrialCounts]] = field(default_factory=dict)

    def update(self, namespace: str, name: str, phase: ExperimentPhase, counts: TrialCounts) -> None:
        self.experiments[(namespace, name)] = (phase, counts)

    def forget(self, namespace: str, name: str) -> None:
        self.experiments.pop((namespace, name), None)

    def collect(self) -> Iterator[Metric]:
        experiments = GaugeMetricFamily("kubetune_experiments", "Experiments by phase", labels=["phase"])
        trials = GaugeMetricFamily("kubetune_trials", "Trials by phase (of reconciled experiments)",
                                   labels=["phase"])
        by_phase = dict.fromkeys(ExperimentPhase, 0)
        trial_totals = dict.fromkeys(TrialPhase, 0)
        for phase, counts in list(self.experiments.values()):
            by_phase[phase] += 1
            for trial_phase in TrialPhase:
                trial_totals[trial_phase] += getattr(counts, trial_phase.counter)
        for phase, count in by_phase.items():
            experiments.add_metric([phase.value], count)
        for trial_phase, count in trial_totals.items():
            trials.add_metric([trial_phase.value], count)
        yield experiments
        yield trials


class OperatorMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self.snapshot = PhaseSnapshot()
        registry.register(self.snapshot)
        self.plan_seconds = Histogram(
            "kubetune_plan_duration_seconds", "Time to plan one reconcile pass (suggestions included)",
            buckets=PLAN_BUCKETS, registry=registry)
        self.reconcile_seconds = Histogram(
            "kubetune_reconcile_duration_seconds", "Time of one experiment reconcile pass",
            buckets=PLAN_BUCKETS, registry=registry)
        self.reconcile_errors = Counter(
            "kubetune_reconcile_errors", "Reconcile passes that raised", ["kind"], registry=registry)
        self.trials_created = Counter(
            "kubetune_trials_created", "Trials created by this operator", registry=registry)
        self.trials_finished = Counter(
            "kubetune_trials_finished", "Trials this operator recorded as finished", ["phase", "reason"],
            registry=registry)
        self.trial_retries = Counter(
            "kubetune_trial_retries", "Trials this operator ran again after a disruption", registry=registry)
        self.log_reads = Counter(
            "kubetune_log_reads", "Reads of running trials' logs for their learning curves", registry=registry)
        self.api_requests = Counter(
            "kubetune_api_requests", "Requests to the API server (watches not included)", ["verb", "resource"],
            registry=registry)

    def close(self) -> None:
        self.registry.unregister(self.snapshot)
        for metric in (self.plan_seconds, self.reconcile_seconds, self.reconcile_errors,
                       self.trials_created, self.trials_finished, self.trial_retries, self.log_reads,
                       self.api_requests):
            self.registry.unregister(metric)


def serve(port: int, registry: CollectorRegistry = REGISTRY) -> None:
    """Expose ``/metrics`` on ``port`` (0: not at all), in a daemon thread."""
    if port:
        start_http_server(port, registry=registry)
