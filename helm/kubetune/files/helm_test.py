"""`helm test`: create the Experiment given in $EXPERIMENT, wait until it ends, check it, delete it.

Runs in the operator image (the `kubernetes` package is there) under the test ServiceAccount.
Exit 0 when the Experiment Succeeded with a best objective value in (0, 1].
"""

import json
import os
import sys
import time

from kubernetes import client, config

GROUP, VERSION = "kubetune.io", "v1alpha1"


def main() -> int:
    config.load_incluster_config()
    api = client.CustomObjectsApi()
    namespace = os.environ["TEST_NAMESPACE"]
    deadline = time.monotonic() + float(os.environ["TIMEOUT_SECONDS"])
    created = api.create_namespaced_custom_object(GROUP, VERSION, namespace, "experiments",
                                                  json.loads(os.environ["EXPERIMENT"]))
    name = created["metadata"]["name"]
    print(f"created Experiment {namespace}/{name}", flush=True)
    status: dict = {}
    try:
        while time.monotonic() < deadline:
            status = api.get_namespaced_custom_object(GROUP, VERSION, namespace, "experiments", name).get(
                "status") or {}
            if status.get("phase") in ("Succeeded", "Failed"):
                break
            time.sleep(2)
        print(json.dumps(status, indent=2), flush=True)
        best = (status.get("bestTrial") or {}).get("objectiveValue")
        if status.get("phase") != "Succeeded":
            print(f"FAIL: Experiment {name} is {status.get('phase') or 'not started'}, expected Succeeded"
                  " (is the operator running and watching this namespace?)")
            return 1
        if best is None or not 0 < best <= 1:
            print(f"FAIL: best objective value {best!r} is not in (0, 1]")
            return 1
        print(f"OK: Experiment {name} Succeeded, best score {best}")
        return 0
    finally:
        api.delete_namespaced_custom_object(GROUP, VERSION, namespace, "experiments", name)


if __name__ == "__main__":
    sys.exit(main())
