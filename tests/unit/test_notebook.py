"""The live progress bar in a real Jupyter kernel (ipykernel, run by nbclient): what a notebook shows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]

CELL = r'''
import time
from rich.console import Console
from kubetune.display import ConsoleDisplay
from kubetune.api import ExperimentStatus, TrialCounts
from tests.unit.factories import experiment, trial
console = Console()
print("jupyter:", console.is_jupyter, flush=True)  # flushed now: before the bar's widget captures output
with ConsoleDisplay(console, experiment(maxTrials=4)) as display:
    for done in range(1, 5):
        display.trial_finished(trial(done - 1, value=0.5 + done / 10), None)
        display.status(ExperimentStatus(trials=TrialCounts(created=4, succeeded=done, running=4 - done)))
        time.sleep(0.3)
time.sleep(0.5)
'''


def test_the_progress_bar_is_a_live_widget_in_a_notebook() -> None:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELL)])
    # iopub_timeout: outputs that arrive late (a loaded machine) are waited for, not dropped
    NotebookClient(notebook, timeout=120, kernel_name="python3", iopub_timeout=60,
                   resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = notebook.cells[0].outputs
    assert any("jupyter: True" in o.get("text", "") for o in outputs), outputs
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)  # the live bar
    lines = [o["data"]["text/plain"] for o in outputs if "text/html" in o.get("data", {})]
    widgets = notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"].values()
    (bar,) = [w for w in widgets if w["model_name"] == "OutputModel"]
    shown = json.dumps(bar["state"]["outputs"])
    assert "4/4" in shown and "running 0" in shown, shown[:500]  # the bar's last frame: every trial done
    # a line per finished trial, under the bar, each once: in Jupyter the bar is redrawn on the
    # caller's thread (no refresh thread), so no line can land in the widget and be wiped with a frame
    texts = [plain(line) for line in lines]
    counts = [sum(f"exp-{i} " in text for text in texts) for i in range(4)]
    assert counts == [1, 1, 1, 1], (counts, texts)
    assert not any("exp-" in plain(o.get("data", {}).get("text/plain", "")) for o in bar["state"]["outputs"])


def plain(text: str) -> str:
    """``text`` without ANSI escapes (rich highlights the numbers in a trial's name)."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)
