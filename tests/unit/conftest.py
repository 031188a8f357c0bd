"""Tiers inside tests/unit: pure logic (no tools), and the tests that need helm, PyTorch or Chromium.

``make unit`` runs ``-m "not torch and not helm and not browser"`` (seconds, nothing to build or
download); ``make trainer-tests``, ``make chart-tests`` and ``make browser-tests`` run the others,
and ``make test`` all four. A
test that needs the ``helm`` fixture is marked ``helm`` here, so the marker cannot be forgotten.
The trainer's module imports torch at the top: it is not even collected when torch tests are
deselected, and fails loudly (an ImportError) when they are selected without torch installed.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    expression = (config.option.markexpr or "").replace(" ", "")
    if collection_path.name == "test_trainer.py" and "nottorch" in expression:
        return True
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "helm" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.helm)
