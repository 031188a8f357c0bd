"""The parts of README.md written from the code, so the documentation cannot drift from it.

``python -m kubetune.docgen`` rewrites each generated block of README.md in place (between its
``<!-- generated: NAME -->`` and ``<!-- end: NAME -->`` markers); a unit test fails when a block
differs from what this module makes.

Blocks: ``trial-reasons`` (every value of ``status.reason`` a Trial can end with, from
:data:`kubetune.api.TRIAL_REASONS`).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from kubetune.api import TRIAL_REASONS

README = Path(__file__).resolve().parents[2] / "README.md"
GENERATOR = "python -m kubetune.docgen"


def trial_reasons() -> str:
    lines = ["| phase | reason | where | when |", "| --- | --- | --- | --- |"]
    for reason, (phase, where, when) in TRIAL_REASONS.items():
        lines.append(f"| {phase.value} | `{reason.value}` | {where} | {when} |")
    return "\n".join(lines)


BLOCKS: dict[str, Callable[[], str]] = {"trial-reasons": trial_reasons}


def render(text: str) -> str:
    """``text`` with every generated block made anew."""
    for name, make in BLOCKS.items():
        pattern = re.compile(rf"(<!-- generated: {name} -->\n)(?:.*?\n)?(<!-- end: {name} -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"README.md has no block {name!r} (<!-- generated: {name} --> ... <!-- end: {name} -->)")
        match = pattern.search(text)
        assert match is not None
        text = text[:match.start()] + match.group(1) + make() + "\n" + match.group(2) + text[match.end():]
    return text


def main() -> int:
    old = README.read_text()
    new = render(old)
    if new != old:
        README.write_text(new)
        print(f"{README.name}: generated blocks rewritten")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
