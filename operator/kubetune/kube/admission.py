"""The validating admission webhook's decision: what is wrong with an Experiment being applied.

The CRD's schema and CEL rules refuse most bad Experiments at apply time. What CEL cannot express
(an initial point's values against the space, a condition's values, cycles among conditions, the
grid's size, references in the template's strings, the trial kinds this operator runs: the
``validate`` rows of tests/bad_experiments.py) the operator checks with the same models and rules
``kubetune validate`` uses, here, before the API server stores the object. Without the webhook
(``webhook.enabled: false``, or ``failurePolicy: Ignore`` with the operator down) the same
problems end the Experiment ``InvalidSpec`` on the operator's first pass, before any trial.

Pure: a request's operation and objects in, the problems out (none: admitted). The kopf
registration is in :mod:`.handlers`.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pydantic import ValidationError

from kubetune.api import Experiment, WorkloadKind, validation_problems
from kubetune.kube.patching import without_kopf
from kubetune.lifecycle import spec_problems

#: The path the webhook is served at (kopf routes ``/<handler id>``); the chart's
#: ValidatingWebhookConfiguration and the cluster tests' point here.
WEBHOOK_ID = "validate-experiment"
#: The name of the webhook in the ValidatingWebhookConfiguration (what kubectl's refusal names).
WEBHOOK_NAME = "experiments.kubetune.io"


def kind_problem(experiment: Experiment, trial_kinds: Collection[str]) -> str | None:
    """Why this operator cannot run the Experiment's trials, if it cannot (a kind not enabled)."""
    kind = experiment.spec.trial_template.kind
    if kind is WorkloadKind.JOB or kind.value in trial_kinds:
        return None
    enabled = ", ".join(["Job", *trial_kinds])
    return (f"spec.trialTemplate.kind: {kind.value} is not enabled in this operator (enabled: {enabled}; "
            f"the Helm value trialKinds enables more)")


def review(operation: str | None, new: dict[str, Any] | None, old: dict[str, Any] | None,
           trial_kinds: Collection[str] = ()) -> list[str]:
    """The problems that refuse this CREATE or UPDATE of an Experiment; ``[]`` admits it.

    An UPDATE that leaves the spec as it was is always admitted: the operator's own writes
    (annotations, labels) and a user's ``kubectl label`` must never be refused because of a rule
    added after the Experiment was stored; nor is an object being deleted ever refused.
    """
    if operation not in ("CREATE", "UPDATE") or new is None:
        return []
    if (new.get("metadata") or {}).get("deletionTimestamp"):
        return []
    if operation == "UPDATE" and old is not None and old.get("spec") == new.get("spec"):
        return []
    try:
        experiment = Experiment.model_validate(without_kopf(new))
    except ValidationError as err:
        return validation_problems(err)
    problems = spec_problems(experiment)
    kind = kind_problem(experiment, trial_kinds)
    return [*problems, *([kind] if kind else [])]


def message(problems: list[str]) -> str:
    """The refusal as kubectl shows it after ``admission webhook "experiments.kubetune.io" denied the request:``."""
    return "invalid Experiment: " + "; ".join(problems)
