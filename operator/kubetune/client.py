"""A synchronous Python client of kubetune's Experiments on a cluster, for notebooks and scripts.

::

    from kubetune.client import Client
    kt = Client()                          # the kubeconfig as kubectl finds it, its namespace
    kt.create("examples/quickstart.yaml")  # validated as `kubetune validate` does
    done = kt.wait("quickstart")           # a live progress bar; returns the final Experiment
    kt.trials_frame("quickstart")          # one row per trial (pandas)

I/O against the API server through the ``kubernetes`` package (the operator has its own async
client in :mod:`kubetune.kube.client`); results are the models of :mod:`kubetune.api`. Every
failure is a :class:`ClientError` whose message names the object: :class:`ExperimentNotFound`
(also a ``KeyError``), :class:`NotFound`, :class:`LogsUnavailable`, :class:`ExtendRefused`.
"""

from __future__ import annotations

import builtins
import datetime as dt
import functools
import json
import math
import os
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import urllib3
from kubernetes import client as k8s
from kubernetes import watch as k8s_watch
from rich.console import Console

from kubetune.api import (
    EXPERIMENT_LABEL,
    GROUP,
    TRIAL_LABEL,
    VERSION,
    Experiment,
    ExperimentPhase,
    ExperimentStatus,
    Trial,
)
from kubetune.display import ConsoleDisplay
from kubetune.kubeconfig import ConfigurationError, load_configuration
from kubetune.results.history import History
from kubetune.results.rows import trial_columns, trial_rows

if TYPE_CHECKING:
    import pandas

T = TypeVar("T")
Body = dict[str, Any]

#: What :meth:`Client.wait` returns on by default: the two ends, and a suspended experiment with no trial left.
FINAL_PHASES: tuple[str, ...] = ("Succeeded", "Failed", "Suspended")
#: (connect, read) seconds of every plain request; a watch reads for its own server timeout plus a margin.
REQUEST_TIMEOUT = (10, 60)
#: A watch is closed by the API server after this long and opened again from where it was.
WATCH_SECONDS = 60


class ClientError(Exception):
    """A request that did not work out; the message names the object and says why."""


class NotFound(ClientError, KeyError):
    """The object does not exist (a ``KeyError`` too, so ``except KeyError`` works)."""

    def __init__(self, kind: str, namespace: str, name: str) -> None:
        super().__init__(f'{kind} "{name}" not found in namespace "{namespace}"')
        self.kind, self.namespace, self.name = kind, namespace, name

    def __str__(self) -> str:  # KeyError's own would put the message in quotes
        return str(self.args[0])


class ExperimentNotFound(NotFound):
    def __init__(self, namespace: str, name: str) -> None:
        super().__init__("experiment", namespace, name)


class LogsUnavailable(ClientError):
    """The trial has no pod left to read (deleted with its Job, or never started)."""


class ExtendRefused(ClientError, ValueError):
    """``extend`` to fewer trials than the budget or than the trials already created."""


@dataclass(frozen=True)
class ExperimentEvent:
    """A Kubernetes Event about an experiment (TrialCreated, NewBestTrial, ...)."""

    type: str
    reason: str
    message: str
    count: int
    #: RFC 3339, the last time it happened ("" when the API server did not say).
    time: str


class Client:
    """Experiments and Trials of one namespace.

    The credentials are found as kubectl finds them: ``kubeconfig`` (else ``$KUBECONFIG``, else
    ``~/.kube/config``) and its ``context`` (else the current one); without any kubeconfig, the
    service account of the pod it runs in. ``namespace`` defaults to the context's namespace,
    else ``default``.
    """

    def __init__(self, namespace: str | None = None, *, context: str | None = None,
                 kubeconfig: str | os.PathLike[str] | None = None) -> None:
        try:
            configuration, context_namespace = load_configuration(context=context, kubeconfig=kubeconfig)
        except ConfigurationError as err:
            raise ClientError(str(err)) from None
        self.namespace = namespace or context_namespace
        self.host = configuration.host
        self.api = k8s.ApiClient(configuration)
        self.custom = k8s.CustomObjectsApi(self.api)

    @functools.cached_property
    def core(self) -> k8s.CoreV1Api:
        """Pods, logs and Events; made on first use (the kubernetes package takes a second to load it)."""
        return k8s.CoreV1Api(self.api)

    def close(self) -> None:
        self.api.close()  # type: ignore[no-untyped-call]

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- Experiments --------------------------------------------------------------------------------

    def create(self, experiment: str | os.PathLike[str] | dict[str, Any] | Experiment) -> Experiment:
        """Create an Experiment from a YAML file's path, YAML text, a dict (wire spelling) or a model.

        It is checked first with the rules of ``kubetune validate`` (:class:`kubetune.validation.InvalidExperiment`).
        """
        # imported here: validating loads the suggesters (scipy), which reading results does not need
        from kubetune.validation import InvalidExperiment, experiment_from_input

        model = experiment_from_input(experiment)
        if model.metadata.namespace not in (None, self.namespace):
            raise InvalidExperiment(f"experiment {model.metadata.name}: its metadata.namespace "
                                    f"{model.metadata.namespace!r} is not the client's namespace {self.namespace!r}")
        body = model.to_wire()
        body.pop("status", None)
        body["metadata"]["namespace"] = self.namespace
        created = self._body(f"creating experiment {self.namespace}/{model.metadata.name}",
                             self.custom.create_namespaced_custom_object, GROUP, VERSION, self.namespace,
                             "experiments", body)
        return _experiment(created)

    def get(self, name: str) -> Experiment:
        return _experiment(self._get_experiment(name))

    def list(self) -> list[Experiment]:
        """The namespace's Experiments, by name."""
        result = self._body(f"listing experiments in namespace {self.namespace}",
                            self.custom.list_namespaced_custom_object, GROUP, VERSION, self.namespace, "experiments")
        return sorted((_experiment(b) for b in result.get("items") or []), key=lambda e: e.metadata.name)

    def delete(self, name: str) -> None:
        """Delete the Experiment; the garbage collector deletes its Trials, Jobs and pods."""
        self._call(f"deleting experiment {self.namespace}/{name}", self.custom.delete_namespaced_custom_object,
                   GROUP, VERSION, self.namespace, "experiments", name, not_found=("experiment", name))

    def suspend(self, name: str) -> Experiment:
        """``spec.suspend: true``: no new trial starts; the running ones finish."""
        return self._patch_spec(name, {"suspend": True})

    def resume(self, name: str) -> Experiment:
        """``spec.suspend: false``: new trials start again."""
        return self._patch_spec(name, {"suspend": False})

    def extend(self, name: str, max_trials: int) -> Experiment:
        """Raise ``spec.maxTrials`` to ``max_trials`` (a finished experiment continues).

        Refused (:class:`ExtendRefused`) below the current maxTrials or the trials already created.
        The patch carries the resourceVersion read, so a concurrent change is not overwritten.
        """
        for _ in range(5):
            current = self.get(name)
            created = current.status.trials.created if current.status else 0
            problem = extend_problem(name, max_trials, current=current.spec.max_trials, created=created)
            if problem:
                raise ExtendRefused(problem)
            version = (current.metadata.model_extra or {}).get("resourceVersion")
            try:
                return self._patch_spec(name, {"maxTrials": max_trials}, resource_version=version)
            except _Conflict:
                continue
        raise ClientError(f"extending experiment {self.namespace}/{name}: it kept changing while being patched")

    # -- Trials ---------------------------------------------------------------------------------------

    def trials(self, name: str) -> builtins.list[Trial]:
        """The experiment's Trials, by index."""
        return self._experiment_and_trials(name)[1]

    def best_trial(self, name: str) -> Trial | None:
        """The Trial named by ``status.bestTrial`` (None while no trial succeeded)."""
        experiment, trials = self._experiment_and_trials(name)
        best = experiment.status.best_trial if experiment.status else None
        return next((t for t in trials if best and t.metadata.name == best.name), None)

    def trials_frame(self, name: str) -> pandas.DataFrame:
        """A pandas DataFrame, one row per trial; the columns are :func:`trial_columns`'s."""
        try:
            import pandas
        except ImportError:
            raise ImportError("trials_frame needs pandas: pip install pandas") from None
        experiment, trials = self._experiment_and_trials(name)
        return pandas.DataFrame(trial_rows(trials, experiment.spec), columns=trial_columns(experiment.spec, trials))

    def history(self, name: str) -> History:
        """Spec, status and Trials as ``kubetune report`` reads them (source ``namespace/name``)."""
        experiment, trials = self._experiment_and_trials(name)
        return History.of(name, experiment.spec, experiment.status or ExperimentStatus(), trials,
                          source=f"{self.namespace}/{name}")

    def events(self, name: str) -> builtins.list[ExperimentEvent]:
        """The Kubernetes Events about the experiment, oldest first (the API server keeps them about 1 h)."""
        selector = f"involvedObject.name={name},involvedObject.kind=Experiment"
        result = self._call(f"listing events of experiment {self.namespace}/{name}", self.core.list_namespaced_event,
                            self.namespace, field_selector=selector)
        ordered = sorted(result.items, key=_event_moment)
        return [ExperimentEvent(type=e.type or "", reason=e.reason or "", message=e.message or "",
                                count=e.count or 1, time=_rfc3339(_event_moment(e))) for e in ordered]

    @overload
    def logs(self, trial_name: str, *, follow: Literal[False] = False) -> str: ...
    @overload
    def logs(self, trial_name: str, *, follow: Literal[True]) -> Iterator[str]: ...

    def logs(self, trial_name: str, *, follow: bool = False) -> str | Iterator[str]:
        """The output of the trial's pod: all of it, or (``follow=True``) its lines as they come."""
        pods = self._call(f"listing pods of trial {self.namespace}/{trial_name}", self.core.list_namespaced_pod,
                          self.namespace, label_selector=f"{TRIAL_LABEL}={trial_name}").items
        if not pods:
            trial = self._get(f"reading trial {self.namespace}/{trial_name}", "trials", trial_name, kind="trial")
            status = trial.get("status") or {}
            why = ", ".join(str(status[k]) for k in ("phase", "reason") if status.get(k)) or "Pending"
            raise LogsUnavailable(f"trial {self.namespace}/{trial_name} ({why}) has no pod left: its logs are gone "
                                  "(the pod is deleted with its Job when a trial is stopped, and by the garbage "
                                  "collector when its experiment is deleted)")
        pod = max(pods, key=_created)
        pod_name = str(pod.metadata.name if pod.metadata else "")
        container = pod.spec.containers[0].name if pod.spec else None
        what = f"reading the log of trial {self.namespace}/{trial_name} (pod {pod_name})"
        if not follow:
            text = self._call(what, self.core.read_namespaced_pod_log, pod_name, self.namespace, container=container)
            return str(text)
        return self._follow(what, pod_name, container)

    def _follow(self, what: str, pod: str, container: str | None) -> Iterator[str]:
        stream = _stream(self.core.read_namespaced_pod_log, pod, self.namespace, container=container, follow=True)
        yield from self._guarded(what, stream)

    # -- waiting --------------------------------------------------------------------------------------

    def wait(self, name: str, *, timeout: float | None = None, progress: bool = True,
             phases: Iterable[str | ExperimentPhase] = FINAL_PHASES, console: Console | None = None) -> Experiment:
        """Wait until the experiment is in one of ``phases``; return it.

        By default that is Succeeded, Failed, or Suspended once no trial is left running (a
        suspended experiment would otherwise never end). A status older than the spec (written
        before a resume or an extend was seen by the operator) does not count. With ``progress``,
        a live progress bar (terminal or Jupyter, on ``console``) and one line per finished trial.
        It watches the Experiment (reconnecting when the API server closes the watch).
        ``timeout`` (seconds) raises :class:`TimeoutError` naming the experiment and its last phase.
        """
        wanted = frozenset(ExperimentPhase(p) for p in phases)
        deadline = None if timeout is None else time.monotonic() + timeout
        experiment = self.get(name)
        display = _WaitDisplay(self, console or Console(), experiment) if progress else None
        try:
            if display:
                display.show(experiment)
            while reached(experiment, wanted) is None:
                experiment = self._watch_once(name, experiment, wanted, deadline, display)
        finally:
            if display:
                display.close()
        return experiment

    def _watch_once(self, name: str, last: Experiment, wanted: frozenset[ExperimentPhase], deadline: float | None,
                    display: _WaitDisplay | None) -> Experiment:
        """Watch until the experiment reaches ``wanted``, the deadline, or the API server closes the watch."""
        remaining = math.inf if deadline is None else deadline - time.monotonic()
        if remaining <= 0:
            phase = last.status.phase.value if last.status else "unknown (no status yet)"
            raise TimeoutError(f"experiment {self.namespace}/{name} did not finish in time; last phase {phase}")
        seconds = max(1, math.ceil(min(remaining, WATCH_SECONDS)))
        version = (last.metadata.model_extra or {}).get("resourceVersion")
        watcher = k8s_watch.Watch()  # type: ignore[no-untyped-call]
        stream = _stream(self.custom.list_namespaced_custom_object, GROUP, VERSION, self.namespace, "experiments",
                         field_selector=f"metadata.name={name}", resource_version=version, timeout_seconds=seconds,
                         _request_timeout=(REQUEST_TIMEOUT[0], seconds + 15), watcher=watcher)
        events = self._guarded(f"watching experiment {self.namespace}/{name}", stream)
        try:
            for event in events:
                if event["type"] == "DELETED":
                    raise ExperimentNotFound(self.namespace, name)
                if event["type"] not in ("ADDED", "MODIFIED"):
                    continue
                last = _experiment(event["object"])
                if display:
                    display.show(last)
                if reached(last, wanted) is not None or (deadline is not None and time.monotonic() > deadline):
                    watcher.stop()  # type: ignore[no-untyped-call]
                    break
        except _Expired:
            return self.get(name)  # the version watched from is gone: read it again and watch from now
        finally:
            events.close()  # closes the response too
        return last

    # -- requests -------------------------------------------------------------------------------------

    def _experiment_and_trials(self, name: str) -> tuple[Experiment, builtins.list[Trial]]:
        raw = self._get_experiment(name)
        result = self._body(f"listing trials of experiment {self.namespace}/{name}",
                            self.custom.list_namespaced_custom_object, GROUP, VERSION, self.namespace, "trials",
                            label_selector=f"{EXPERIMENT_LABEL}={name}")
        uid = raw["metadata"].get("uid")
        # a deleted namesake's Trials may linger until the garbage collector removes them
        owned = [b for b in result.get("items") or [] if _owned_by(b, uid)]
        trials = sorted((Trial.model_validate(_without_kopf(b)) for b in owned), key=lambda t: t.spec.index)
        return _experiment(raw), trials

    def _get_experiment(self, name: str) -> Body:
        return self._get(f"reading experiment {self.namespace}/{name}", "experiments", name, kind="experiment")

    def _get(self, what: str, plural: str, name: str, *, kind: str) -> Body:
        return self._body(what, self.custom.get_namespaced_custom_object, GROUP, VERSION, self.namespace,
                          plural, name, not_found=(kind, name))

    def _patch_spec(self, name: str, spec: Body, *, resource_version: str | None = None) -> Experiment:
        patch: Body = {"spec": spec}
        if resource_version:
            patch["metadata"] = {"resourceVersion": resource_version}
        # the kubernetes package sends a dict body of a custom object patch as a merge patch
        body = self._body(f"patching experiment {self.namespace}/{name}", self.custom.patch_namespaced_custom_object,
                          GROUP, VERSION, self.namespace, "experiments", name, patch, not_found=("experiment", name),
                          conflict=resource_version is not None)
        return _experiment(body)

    def _call(self, what: str, method: Callable[..., T], *args: Any, not_found: tuple[str, str] | None = None,
              conflict: bool = False, **kwargs: Any) -> T:
        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
        try:
            return method(*args, **kwargs)
        except k8s.ApiException as err:
            if err.status == 404 and not_found is not None:
                raise _not_found(not_found[0], self.namespace, not_found[1]) from None
            if err.status == 409 and conflict:
                raise _Conflict from None
            raise ClientError(f"{what}: {api_message(err)}") from None
        except urllib3.exceptions.HTTPError as err:
            raise ClientError(f"{what}: cannot reach the API server at {self.host} ({_reason(err)})") from None

    def _body(self, what: str, method: Callable[..., object], *args: Any, not_found: tuple[str, str] | None = None,
              conflict: bool = False, **kwargs: Any) -> Body:
        """A custom-object call's answer: a JSON object."""
        body = self._call(what, method, *args, not_found=not_found, conflict=conflict, **kwargs)
        if not isinstance(body, dict):
            raise ClientError(f"{what}: the API server answered {type(body).__name__}, not an object")
        return body

    def _guarded(self, what: str, stream: Iterator[T]) -> Generator[T, None, None]:
        """``stream``'s items, with its API and connection errors turned into :class:`ClientError`."""
        try:
            yield from stream
        except k8s.ApiException as err:
            if err.status == 410:
                raise _Expired from None
            raise ClientError(f"{what}: {api_message(err)}") from None
        except urllib3.exceptions.HTTPError as err:
            raise ClientError(f"{what}: cannot reach the API server at {self.host} ({_reason(err)})") from None


class _WaitDisplay:
    """The progress bar of :meth:`Client.wait`, and a line for each trial that finished since the last look."""

    def __init__(self, client: Client, console: Console, experiment: Experiment) -> None:
        self.client = client
        self.name = experiment.metadata.name
        self.display = ConsoleDisplay(console, experiment)
        self.shown: set[str] = set()
        self.finished = -1
        self.display.__enter__()

    def show(self, experiment: Experiment) -> None:
        status = experiment.status or ExperimentStatus()
        if status.trials.finished != self.finished:
            self.finished = status.trials.finished
            for trial in self.client.trials(self.name):
                if trial.status.phase.finished and trial.metadata.name not in self.shown:
                    self.shown.add(trial.metadata.name)
                    self.display.trial_finished(trial, None)
        self.display.status(status, max_trials=experiment.spec.max_trials)

    def close(self) -> None:
        self.display.__exit__()


class _Conflict(Exception):
    """409 on a patch guarded by resourceVersion: read again and retry."""


class _Expired(Exception):
    """410 Gone on a watch: the resourceVersion watched from is too old."""


# -- pure parts ---------------------------------------------------------------------------------------


def reached(experiment: Experiment, wanted: frozenset[ExperimentPhase]) -> ExperimentPhase | None:
    """The phase of ``wanted`` the experiment is in, or None (also while its status is older than its spec,
    and for Suspended while a trial is still running)."""
    status = experiment.status
    if status is None or status.phase not in wanted:
        return None
    generation = experiment.metadata.generation
    if generation is not None and (status.observed_generation or 0) < generation:
        return None
    if status.phase is ExperimentPhase.SUSPENDED and status.trials.active:
        return None
    return status.phase


def extend_problem(name: str, max_trials: int, *, current: int, created: int) -> str | None:
    """Why ``maxTrials`` cannot become ``max_trials``, or None."""
    if max_trials < current:
        return (f"experiment {name}: maxTrials can only be raised: {max_trials} is below the current "
                f"maxTrials {current}")
    if max_trials < created:
        return f"experiment {name}: maxTrials {max_trials} is below the {created} trials already created"
    return None


def api_message(err: k8s.ApiException) -> str:
    """The API server's own message (``experiments.kubetune.io "x" already exists``) with its status code."""
    message = ""
    try:
        body = json.loads(err.body) if err.body else {}
        message = str(body.get("message") or "") if isinstance(body, dict) else ""
    except ValueError:
        message = str(err.body or "")[:500]
    return f"{message or err.reason} ({err.status} {err.reason})" if message else f"{err.status} {err.reason}"


def _not_found(kind: str, namespace: str, name: str) -> NotFound:
    return ExperimentNotFound(namespace, name) if kind == "experiment" else NotFound(kind, namespace, name)


def _reason(err: urllib3.exceptions.HTTPError) -> str:
    inner = getattr(err, "reason", None)
    return str(inner or err).split(": ", 1)[-1]


def _experiment(body: Body) -> Experiment:
    return Experiment.model_validate(_without_kopf(body))


def _without_kopf(body: Body) -> Body:
    """``body`` without kopf's storage in the status, which the models do not know."""
    status = body.get("status")
    if not isinstance(status, dict) or "kopf" not in status:
        return body
    return {**body, "status": {k: v for k, v in status.items() if k != "kopf"}}


def _stream(method: Callable[..., object], *args: Any, watcher: k8s_watch.Watch | None = None,
            **kwargs: Any) -> Iterator[Any]:
    """``Watch().stream``: watch events of a list call, or the lines of a followed log."""
    watcher = watcher or k8s_watch.Watch()  # type: ignore[no-untyped-call]
    stream: Iterator[Any] = watcher.stream(method, *args, **kwargs)  # type: ignore[no-untyped-call]
    return stream


def _created(pod: k8s.V1Pod) -> str:
    moment = pod.metadata.creation_timestamp if pod.metadata else None
    return moment.isoformat() if moment else ""


def _owned_by(body: Body, uid: str | None) -> bool:
    owners = body.get("metadata", {}).get("ownerReferences") or []
    return uid is None or not owners or any(o.get("uid") == uid for o in owners)


def _event_moment(event: k8s.CoreV1Event) -> dt.datetime:
    """When it last happened (eventTime has microseconds, lastTimestamp only seconds)."""
    moment = event.event_time if (event.count or 1) <= 1 and event.event_time else None
    moment = moment or event.last_timestamp or event.event_time or event.first_timestamp
    return moment or dt.datetime.min.replace(tzinfo=dt.UTC)


def _rfc3339(moment: dt.datetime) -> str:
    return "" if moment.year == 1 else moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
