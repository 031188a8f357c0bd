"""The README's generated parts match the code they are written from."""

from __future__ import annotations

from kubetune.api import TRIAL_REASONS, TrialReason
from kubetune.docgen import GENERATOR, README, render, trial_reasons


def test_readme_generated_blocks_are_up_to_date() -> None:
    text = README.read_text()
    assert render(text) == text, f"README.md drifted from the code: run {GENERATOR}"


def test_every_trial_reason_is_documented_with_its_phase() -> None:
    assert set(TRIAL_REASONS) == set(TrialReason)
    table = trial_reasons()
    for reason, (phase, _, _) in TRIAL_REASONS.items():
        assert f"| {phase.value} | `{reason.value}` |" in table
    for reason in ("Killed", "StartFailed", "MedianRule", "AshaRung"):  # once missing from the README
        assert f"`{reason}`" in README.read_text()
