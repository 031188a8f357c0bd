"""Helpers the benchmark scripts share: naming a suggester, Optuna's suggest calls, the process
pool that runs the tasks, writing a docs section."""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from kubetune.api import Parameter, SettingValue


def machine() -> dict[str, str]:
    """The CPU and the BLAS kernels a run was made with, for the record: a seeded search can take another
    path on another CPU when its floating-point results differ in the last bits."""
    import numpy  # noqa: F401 - loads the BLAS that threadpoolctl reports
    from threadpoolctl import threadpool_info  # scikit-learn's dependency

    cpu = platform.machine()
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    blas = [f"{i['internal_api']} {i.get('version')} {i.get('architecture', '')}".strip()
            for i in threadpool_info() if i.get("user_api") == "blas"]
    blas.sort()  # the order libraries were loaded in varies
    record = {"cpu": cpu, "blas": ", ".join(blas)}
    if "torch" in sys.modules:  # the trainer's kernels (not imported here when the run has no torch)
        record["torch"] = f"{sys.modules['torch'].__version__} {sys.modules['torch'].backends.cpu.get_cpu_capability()}"
    return record


def parse_algorithm(spec: str) -> tuple[str, dict[str, SettingValue]]:
    """``bayes:initialTrials=5,acquisition=logei`` → ("bayes", {"initialTrials": 5, "acquisition": "logei"})."""
    name, _, rest = spec.partition(":")
    settings: dict[str, SettingValue] = {}
    for item in filter(None, rest.split(",")):
        key, _, text = item.partition("=")
        value: SettingValue = text
        for convert in (int, float):
            try:
                value = convert(text)
                break
            except ValueError:
                continue
        settings[key] = value
    return name, settings


def replace_section(doc: Path, heading: str, section: str) -> None:
    """Put ``section`` (starting with the line ``heading``) in place of that section of ``doc``.

    The section runs from its heading to the next ``## `` heading; a document without it gets it
    appended at its end.
    """
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    start = text.find(heading + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)


def optuna_suggest(trial: Any, p: Parameter) -> Any:
    """``p``'s value from an Optuna trial, with the distribution its spec says (log scale included)."""
    log = str(p.scale) == "log"
    if str(p.type) == "categorical":
        return trial.suggest_categorical(p.name, list(p.values or []))
    if str(p.type) == "int":
        return trial.suggest_int(p.name, int(p.min or 0), int(p.max or 0), log=log)
    return trial.suggest_float(p.name, float(p.min or 0), float(p.max or 0), log=log)


def optuna_ask(study: Any, parameters: Sequence[Parameter], n: int, trials: dict[int, Any]) -> list[dict[str, Any]]:
    """``n`` assignments asked of an Optuna study, each trial kept in ``trials`` under its dict's id."""
    out = []
    for _ in range(n):
        trial = study.ask()
        params = {p.name: optuna_suggest(trial, p) for p in parameters}
        trials[id(params)] = trial
        out.append(params)
    return out


def run_tasks(run_one: Callable[..., dict[str, Any]], tasks: Sequence[tuple[Any, ...]], jobs: int, out: Path,
              describe: Callable[[dict[str, Any]], str]) -> list[dict[str, Any]]:
    """``run_one(*task)`` for every task in a process pool; the results so far rewritten to ``out``
    after each one (a long run can be read, or resumed, while it goes). A task that raises is
    reported and skipped: one optimizer crashing is a result too, not a reason to lose the rest."""
    results: list[dict[str, Any]] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_one, *t) for t in tasks]
        for i, future in enumerate(as_completed(futures)):
            try:
                r = future.result()
            except Exception as error:
                print(f"task failed: {error!r}", file=sys.stderr)
                continue
            results.append(r)
            print(f"[{i + 1}/{len(tasks)}] {r['problem']} {r['optimizer']} seed={r['seed']} {describe(r)}",
                  file=sys.stderr, flush=True)
            out.write_text(json.dumps(results))
    return results

