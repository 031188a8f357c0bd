"""Experiments for the cluster tests: tiny inline Python trials on ``local/python-base:dev``."""

from __future__ import annotations

import copy
from typing import Any

PYTHON_IMAGE = "local/python-base:dev"

#: The known function: maximum 1.0 at x=0.3, y=0.7.
QUADRATIC = (
    "import json, os, time\n"
    "x = float(os.environ['KUBETUNE_PARAM_X']); y = float(os.environ['KUBETUNE_PARAM_Y'])\n"
    "time.sleep(float(os.environ.get('SLEEP', '0')))\n"
    "score = 1.0 - (x - 0.3) ** 2 - (y - 0.7) ** 2\n"
    "print(f'kubetune: score={score}')\n"
    "open('/dev/termination-log', 'w').write(json.dumps({'score': score, 'x2': x * x}))\n"
)


def score(params: dict[str, Any]) -> float:
    return 1.0 - (float(params["x"]) - 0.3) ** 2 - (float(params["y"]) - 0.7) ** 2


EXIT_1 = "import sys\nprint('loading data')\nprint('boom: the trial gave up', flush=True)\nsys.exit(1)\n"
GARBAGE = "open('/dev/termination-log', 'w').write('score: very good{')\n"
SLEEP = "import time\nprint('sleeping', flush=True)\ntime.sleep(600)\n"

PARAMETERS = [
    {"name": "x", "type": "double", "min": 0.0, "max": 1.0},
    {"name": "y", "type": "double", "min": 0.0, "max": 1.0},
]


def experiment(name: str, script: str = QUADRATIC, *, max_trials: int = 8, parallel: int = 3,
               algorithm: str | dict[str, Any] = "sobol", sleep: float = 0.0, image: str = PYTHON_IMAGE,
               **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "trial",
        "image": image,
        "imagePullPolicy": "Never",
        "command": ["python3", "-c", script],
        "env": [{"name": "SLEEP", "value": str(sleep)}],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
    }
    body: dict[str, Any] = {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": {
            "objective": {"metric": "score", "goal": "maximize", "additionalMetrics": ["x2"]},
            "algorithm": algorithm if isinstance(algorithm, dict) else {"name": algorithm, "seed": 7},
            "maxTrials": max_trials,
            "parallelTrials": parallel,
            "parameters": copy.deepcopy(PARAMETERS),
            "trialTemplate": {"spec": {"backoffLimit": 0, "template": {"spec": {
                "restartPolicy": "Never", "terminationGracePeriodSeconds": 1, "containers": [container]}}}},
        },
    }
    body["spec"].update(spec)
    return body
