"""Credentials found as kubectl finds them, for :mod:`kubetune.client`.

The kubeconfig (an explicit file, else ``$KUBECONFIG``, which may list several files, else
``~/.kube/config``) and its context (an explicit one, else the current one); without any
kubeconfig, the service account of the pod this runs in. No requests are made here.
"""

from __future__ import annotations

import os
from pathlib import Path

from kubernetes import client as k8s
from kubernetes import config as k8s_config

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class ConfigurationError(Exception):
    """No usable credentials; the message says where they were looked for."""


def load_configuration(*, context: str | None,
                       kubeconfig: str | os.PathLike[str] | None) -> tuple[k8s.Configuration, str]:
    """The client configuration and the namespace of the context (else ``default``)."""
    configuration = k8s.Configuration()
    files = str(kubeconfig) if kubeconfig is not None else os.environ.get("KUBECONFIG") or "~/.kube/config"
    present = [p for p in files.split(os.pathsep) if p and Path(p).expanduser().exists()]
    if not present:
        if kubeconfig is not None:
            raise ConfigurationError(f"kubeconfig {files} does not exist")
        if context is None:
            try:
                k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            except k8s_config.ConfigException:
                pass
            else:
                return configuration, _service_account_namespace()
        raise ConfigurationError(f"no kubeconfig: {files} does not exist (set $KUBECONFIG, or give a kubeconfig), "
                                 "and this is not a pod with a service account")
    try:
        k8s_config.load_kube_config(config_file=files, context=context,  # type: ignore[no-untyped-call]
                                    client_configuration=configuration)
        contexts, current = k8s_config.list_kube_config_contexts(files)  # type: ignore[no-untyped-call]
    except (k8s_config.ConfigException, ValueError, OSError) as err:
        raise ConfigurationError(f"kubeconfig {files}: {err}") from None
    chosen = next((c for c in contexts if c.get("name") == context), None) if context else current
    namespace = ((chosen or {}).get("context") or {}).get("namespace") or "default"
    return configuration, str(namespace)


def _service_account_namespace() -> str:
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"
