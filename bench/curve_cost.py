"""What reading learning curves costs on a cluster: API requests per second and operator CPU at N running trials.

One experiment with ``parallelTrials: N`` whose trials print a progress line every second for a
few minutes. Once all N pods run, a steady window is measured: the operator's own count of its
API requests (``kubetune_api_requests_total`` on its /metrics, by verb and resource; watches are
streams and not counted) and its CPU time (utime + stime from /proc), for each progress interval
asked (``KUBETUNE_PROGRESS_SECONDS``). The experiment has ``earlyStopping`` (median, with a grace
period longer than the trials) so every new curve point also runs the Experiment's pass, as it
would with real early stopping, but nothing is stopped.

    KUBECONFIG=... .venv/bin/python -m bench.curve_cost [--trials 50] [--intervals 15 5] [--doc]

``--doc`` writes the table into docs/benchmarks.md under ``## Learning curves on a cluster``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from tests.cluster.manifests import experiment

from bench.control_plane import kubectl

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Learning curves on a cluster"
RESULTS = ROOT / "bench" / "results" / "curve_cost.json"

PRINTER = (
    "import json, os, time\n"
    "for epoch in range(1, int(os.environ['EPOCHS']) + 1):\n"
    "    print(f'kubetune: epoch={epoch} score={1 - 1 / (epoch + 1):.5f}', flush=True)\n"
    "    time.sleep(1)\n"
    "open('/dev/termination-log', 'w').write(json.dumps({'score': 1.0, 'x2': 0.0}))\n"
)
_COUNTER = re.compile(r'^kubetune_api_requests_total\{resource="([^"]+)",verb="([^"]+)"\} ([0-9.e+]+)$', re.M)


def scrape(port: int) -> dict[tuple[str, str], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {(verb, resource): float(value) for resource, verb, value in _COUNTER.findall(text)}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_operator(port: int, interval: float) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KUBETUNE_PROGRESS_SECONDS": str(interval), "PYTHONUNBUFFERED": "1"}
    log = (ROOT / "bench" / "results" / f"curve_cost-operator-{interval:g}.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "kubetune.cli", "operator", "--metrics-port", str(port),
                                "--health-port", "0"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(120):
        try:
            scrape(port)
            return process
        except OSError:
            time.sleep(0.5)
    raise SystemExit("the operator's /metrics did not answer")


def running_pods(namespace: str) -> int:
    pods = json.loads(kubectl("get", "pods", "-n", namespace, "-o", "json"))["items"]
    return sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running")


def measure(trials: int, interval: float, window: float, port: int) -> dict[str, Any]:
    namespace = f"kt-bench-curves-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    operator = start_operator(port, interval)
    try:
        epochs = int(window + 180)
        body = experiment("curves", PRINTER, max_trials=trials, parallel=trials, algorithm="sobol")
        container = body["spec"]["trialTemplate"]["spec"]["template"]["spec"]["containers"][0]
        container["env"] = [{"name": "EPOCHS", "value": str(epochs)}]
        container["resources"] = {"requests": {"cpu": "1m", "memory": "8Mi"}}
        body["spec"]["earlyStopping"] = {"rule": "median", "minSteps": 100_000}
        kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body))
        started = time.monotonic()
        while running_pods(namespace) < trials:
            if time.monotonic() - started > 600:
                raise SystemExit(f"only {running_pods(namespace)} of {trials} pods running after 600 s")
            time.sleep(2)
        time.sleep(max(2 * interval, 10))  # every trial read at least once, the first writes done
        before, cpu0, t0 = scrape(port), cpu_seconds(operator.pid), time.monotonic()
        time.sleep(window)
        after, cpu1, t1 = scrape(port), cpu_seconds(operator.pid), time.monotonic()
        still = running_pods(namespace)
        elapsed = t1 - t0
        rates = {f"{verb} {resource}": (after.get((verb, resource), 0.0) - before.get((verb, resource), 0.0)) / elapsed
                 for verb, resource in sorted(set(after) | set(before))}
        return {"trials": trials, "interval": interval, "window": elapsed, "running_at_end": still,
                "requests_per_second": sum(rates.values()), "by_kind": {k: v for k, v in rates.items() if v > 0},
                "cpu_percent": 100 * (cpu1 - cpu0) / elapsed}
    finally:
        operator.terminate()
        operator.wait(timeout=60)
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def write_doc(results: list[dict[str, Any]], path: Path) -> None:
    lines = [SECTION, "",
             f"Measured by `bench/curve_cost.py` on the offline single-node cluster (2 CPUs), operator out of "
             f"cluster, {time.strftime('%Y-%m-%d')}: {results[0]['trials']} trials running at once, each printing a "
             "progress line every second; the experiment has `earlyStopping` (median, grace period longer than the "
             "trials), so each new curve point also runs the Experiment's pass. Rates are the operator's own "
             "count of its API requests (`kubetune_api_requests_total`; watches are streams and not counted) "
             "over a steady window; CPU is the operator process's utime + stime over the same window.", "",
             "| progress interval | requests/s, all | pods/log GET | trials/status PATCH | trials GET + LIST | "
             "experiments GET | operator CPU (% of a core) | window |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        k = r["by_kind"]
        lines.append(f"| {r['interval']:g} s | {r['requests_per_second']:.2f} | {k.get('GET pods/log', 0):.2f} | "
                     f"{k.get('PATCH trials/status', 0):.2f} | {k.get('GET trials', 0):.2f} | "
                     f"{k.get('GET experiments', 0):.2f} | {r['cpu_percent']:.1f} | {r['window']:.0f} s |")
    first = results[0]
    lines += ["", f"Reading is one GET of the log and, when it found a point, one PATCH per running trial per "
              f"interval ({first['trials']} / {first['interval']:g} s = {first['trials'] / first['interval']:.2f}/s). "
              "The Experiment passes that the new points trigger coalesce (one at a time per Experiment, a trigger "
              "during a pass makes one more), so they stay below one a second; the GETs of Jobs and pods are the "
              "safety net's Trial passes (every trial once a minute), there without curves too. A round of reads "
              "runs 8 at a time and rounds do not overlap, so when a round takes longer than the interval the "
              "reads fall short of N / interval. The machine also ran a one-core benchmark meanwhile (load "
              "average about 2).", "", "Per kind of request, each interval: " + "; ".join(
        f"{r['interval']:g} s: " + ", ".join(f"{name} {rate:.2f}/s" for name, rate in sorted(r["by_kind"].items()))
        for r in results), "",
        "Reproduce: `KUBECONFIG=$(hack/cluster/kubeconfig-path.sh) .venv/bin/python -m bench.curve_cost --doc` "
        "(about 10 minutes).", ""]
    text = path.read_text()
    block = "\n".join(lines)
    if SECTION in text:
        start = text.index(SECTION)
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + block + (text[end + 1:] if end != -1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--intervals", type=float, nargs="+", default=[15.0, 5.0])
    parser.add_argument("--window", type=float, default=120.0, help="seconds measured once all trials run")
    parser.add_argument("--metrics-port", type=int, default=18090)
    parser.add_argument("--doc", action="store_true")
    parser.add_argument("--doc-only", action="store_true", help="rewrite the doc from the last results file")
    args = parser.parse_args()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if args.doc_only:
        results = json.loads(RESULTS.read_text())
    else:
        results = [measure(args.trials, interval, args.window, args.metrics_port) for interval in args.intervals]
        RESULTS.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    if args.doc or args.doc_only:
        write_doc(results, ROOT / "docs" / "benchmarks.md")


if __name__ == "__main__":
    main()
