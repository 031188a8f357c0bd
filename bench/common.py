"""Helpers the benchmark scripts share: naming a suggester with settings, writing a docs section."""

from __future__ import annotations

from pathlib import Path

from kubetune.api import SettingValue


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
