"""A small async client for the few Kubernetes API calls the operator makes.

I/O only, no decisions: get, list, create, patch, delete and read a pod's log, as plain JSON
dicts. Credentials come from the ``kubernetes`` package's loaders (kubeconfig or in-cluster
service account); requests go over one shared aiohttp session, so no call ever blocks the event
loop and no thread pool is needed for API traffic.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

Body = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"


@dataclass(frozen=True)
class Resource:
    """An API resource: ``group`` is empty for the core API."""

    group: str
    version: str
    plural: str

    def path(self, namespace: str | None, name: str | None = None, subresource: str | None = None) -> str:
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        parts = [base]
        if namespace is not None:
            parts.append(f"namespaces/{quote(namespace, safe='')}")
        parts.append(self.plural)
        if name is not None:
            parts.append(quote(name, safe=""))
        if subresource is not None:
            parts.append(subresource)
        return "/".join(parts)


EXPERIMENTS = Resource("kubetune.io", "v1alpha1", "experiments")
TRIALS = Resource("kubetune.io", "v1alpha1", "trials")
JOBS = Resource("batch", "v1", "jobs")
PODS = Resource("", "v1", "pods")
EVENTS = Resource("", "v1", "events")


class ApiError(Exception):
    """A non-2xx answer from the API server."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        """409: a stale resourceVersion (or AlreadyExists, see :attr:`already_exists`)."""
        return self.status == 409 and self.reason != "AlreadyExists"

    @property
    def already_exists(self) -> bool:
        return self.status == 409 and self.reason == "AlreadyExists"


def load_configuration() -> k8s_client.Configuration:
    """The in-cluster service account if there is one, else the kubeconfig (``$KUBECONFIG``)."""
    configuration = k8s_client.Configuration()
    try:
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except k8s_config.ConfigException:
        k8s_config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return configuration


class KubeApi:
    """JSON in, JSON out; raises :class:`ApiError` for any non-2xx answer."""

    def __init__(self, configuration: k8s_client.Configuration, *, timeout: float = 30.0, pool: int = 32,
                 on_request: Callable[[str, str], None] | None = None) -> None:
        self.configuration = configuration
        #: called with (verb, what) for every request, e.g. ("GET", "pods/log"): the operator counts them
        self.on_request = on_request
        self.host = configuration.host.rstrip("/")
        context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
        if configuration.cert_file:
            context.load_cert_chain(configuration.cert_file, configuration.key_file)
        if not configuration.verify_ssl:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self._ssl = context if self.host.startswith("https") else False
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._pool = pool
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool, ssl=self._ssl), timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        token = self.configuration.get_api_key_with_prefix("BearerToken", alias="authorization")
        if token:
            headers["Authorization"] = token
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    async def request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                      body: Any = None, content_type: str = "application/json", text: bool = False) -> Any:
        data = json.dumps(body) if body is not None else None
        headers = self._headers(content_type if data is not None else None)
        if self.on_request is not None:
            self.on_request(method, _what(path))
        async with self.session.request(method, self.host + path, params=params, data=data,
                                        headers=headers) as response:
            raw = await response.read()
            if response.status >= 300:
                raise _error(response.status, raw)
            if text:
                return raw.decode(errors="replace")
            return json.loads(raw) if raw else {}

    async def get(self, resource: Resource, namespace: str, name: str) -> Body | None:
        """The object, or None when it does not exist."""
        try:
            result: Body = await self.request("GET", resource.path(namespace, name))
        except ApiError as err:
            if err.not_found:
                return None
            raise
        return result

    async def list(self, resource: Resource, namespace: str | None, *, selector: str | None = None) -> list[Body]:
        """The objects of ``namespace`` (None: of all namespaces)."""
        params = {"labelSelector": selector} if selector else None
        result = await self.request("GET", resource.path(namespace), params=params)
        items: list[Body] = result.get("items") or []
        return items

    async def create(self, resource: Resource, namespace: str, body: Body) -> Body:
        result: Body = await self.request("POST", resource.path(namespace), body=body)
        return result

    async def patch(self, resource: Resource, namespace: str, name: str, patch: Body, *,
                    status: bool = False) -> Body:
        """A JSON merge patch (RFC 7386) of the object or of its status subresource."""
        path = resource.path(namespace, name, "status" if status else None)
        result: Body = await self.request("PATCH", path, body=patch, content_type=MERGE_PATCH)
        return result

    async def delete(self, resource: Resource, namespace: str, name: str, *,
                     propagation: str = "Background") -> bool:
        """Delete with its dependents (pods of a Job); False when it was already gone."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        try:
            await self.request("DELETE", resource.path(namespace, name), body=body)
        except ApiError as err:
            if err.not_found:
                return False
            raise
        return True

    async def read_log(self, namespace: str, pod: str, container: str, *, limit_bytes: int) -> str:
        """The end of a container's log ("" when the log is gone)."""
        params = {"container": container, "limitBytes": str(limit_bytes)}
        # limitBytes keeps the start; ask for the tail instead when the log may be long
        params["tailLines"] = "2000"
        return await self._log(namespace, pod, params)

    async def read_log_since(self, namespace: str, pod: str, container: str, *, since: str | None,
                             limit_bytes: int) -> str:
        """The log from ``since`` (RFC 3339) on, each line prefixed with its timestamp, at most ``limit_bytes``."""
        params = {"container": container, "limitBytes": str(limit_bytes), "timestamps": "true"}
        if since:
            params["sinceTime"] = since
        return await self._log(namespace, pod, params)

    async def _log(self, namespace: str, pod: str, params: dict[str, str]) -> str:
        try:
            result: str = await self.request("GET", PODS.path(namespace, pod, "log"), params=params, text=True)
        except ApiError as err:
            if err.status in (400, 404):
                return ""
            raise
        return result


def _what(path: str) -> str:
    """The resource (and subresource) of a request path: ``/api/v1/namespaces/n/pods/p/log`` → ``pods/log``."""
    parts = [p for p in path.split("/") if p]
    parts = parts[2:] if parts[0] == "api" else parts[3:]  # drop api/v1 or apis/<group>/<version>
    if len(parts) >= 2 and parts[0] == "namespaces":
        parts = parts[2:]
    if not parts:
        return "namespaces"
    return parts[0] + (f"/{parts[2]}" if len(parts) > 2 else "")


def _error(status: int, raw: bytes) -> ApiError:
    try:
        data = json.loads(raw)
        return ApiError(status, str(data.get("reason") or ""), str(data.get("message") or raw[:500]))
    except (ValueError, AttributeError):
        return ApiError(status, "", raw[:500].decode(errors="replace"))
