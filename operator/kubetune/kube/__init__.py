"""The Kubernetes operator: kopf handlers executing :func:`kubetune.lifecycle.plan` on a cluster.

The only package of kubetune that imports ``kopf``, and the only one that calls the API server
for the operator (the user-side :mod:`kubetune.client` calls it for ``kubectl tune`` and notebooks).
It decides nothing about tuning itself: the Experiment pass (:mod:`.experiments`) runs the pure
plan and executes it, the Trial pass (:mod:`.trials`) runs a trial's Job and records its outcome
as :mod:`.classification` and :func:`kubetune.metrics.harvest` judge it. Run it with
``kubetune operator`` or ``kopf run -m kubetune.kube``. See docs/operator.md.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

from kubetune.kube import handlers as handlers  # registers the handlers with kopf
from kubetune.kube.runtime import ConfigError, OperatorConfig


def run_operator(namespaces: Sequence[str] = (), metrics_port: int = 8080, health_port: int = 8081,
                 webhook_port: int = 0, webhook_cert_dir: str | None = None) -> None:
    """Run the operator until SIGINT/SIGTERM: ``namespaces`` to watch (none: all of them);
    ``webhook_port``: serve the validating admission webhook there (0: not at all)."""
    import kopf

    overrides: dict[str, object] = {"webhook_cert_dir": webhook_cert_dir} if webhook_cert_dir else {}
    config = OperatorConfig.from_env(namespaces=tuple(namespaces), metrics_port=metrics_port,
                                     health_port=health_port, webhook_port=webhook_port, **overrides)
    config.check()
    handlers.watch_workloads(config.trial_kinds)
    if config.webhook_port:
        handlers.validate_experiments()
    liveness = f"http://0.0.0.0:{health_port}/healthz" if health_port else None
    kopf.run(
        # an explicit identity: kopf's default asks getpass.getuser(), which fails for a numeric
        # container UID without a passwd entry
        identity=f"kubetune@{socket.gethostname()}",  # type: ignore[arg-type]  # kopf.Identity is a NewType of str
        clusterwide=not namespaces,
        namespaces=list(namespaces),
        standalone=True,
        liveness_endpoint=liveness,
        memo=kopf.Memo(config=config),
    )


__all__ = ["ConfigError", "OperatorConfig", "run_operator"]
