"""The CRDs are generated from the models, structural, and the files in crds/ never drift."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubetune.crds import GENERATED_HEADER, all_crds, crd_files

REPO = Path(__file__).resolve().parents[2]


def walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.items():
            found.extend(walk(value, f"{path}.{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(walk(value, f"{path}[{i}]"))
    return found


@pytest.mark.parametrize("name", sorted(crd_files()))
def test_files_in_crds_folder_match_the_models(name: str) -> None:
    on_disk = (REPO / "crds" / name).read_text()
    assert on_disk == crd_files()[name], f"crds/{name} is stale: run `kubetune crd --write crds`"
    assert on_disk.startswith(GENERATED_HEADER)


@pytest.mark.parametrize("crd", all_crds(), ids=lambda c: c["metadata"]["name"])
def test_schema_is_structural(crd: dict[str, Any]) -> None:
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in walk(schema):
        assert not {"$ref", "anyOf", "allOf", "oneOf", "$defs", "title", "const"} & set(node), path
        if "properties" in node:
            assert node.get("type") == "object" and "additionalProperties" not in node, path
        is_schema_node = path.endswith(("properties", "x-kubernetes-validations")) is False
        if is_schema_node and not path.endswith(".properties") and ("items" in node or "properties" in node):
            assert "type" in node, path


def test_experiment_status_keeps_room_for_the_framework_and_suggester_state() -> None:
    experiment = next(c for c in all_crds() if c["spec"]["names"]["kind"] == "Experiment")
    status = experiment["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert status["kopf"]["x-kubernetes-preserve-unknown-fields"] is True
    assert status["suggester"]["properties"]["state"]["x-kubernetes-preserve-unknown-fields"] is True
    assert experiment["spec"]["versions"][0]["subresources"] == {"status": {}}


def test_cross_field_rules_are_cel_validations() -> None:
    experiment = next(c for c in all_crds() if c["spec"]["names"]["kind"] == "Experiment")
    schema = experiment["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    messages = {rule["message"] for _, node in walk(schema) for rule in node.get("x-kubernetes-validations", [])}
    for expected in ("max must be greater than min", "log scale needs min > 0",
                     "categorical parameters need at least one value", "parallelTrials must not exceed maxTrials"):
        assert expected in messages
    parameters = schema["properties"]["spec"]["properties"]["parameters"]
    assert parameters["x-kubernetes-list-type"] == "map"  # names unique, enforced by the API server
    assert parameters["x-kubernetes-list-map-keys"] == ["name"]


def test_printer_columns_and_names() -> None:
    experiment, trial = all_crds()

    def default_columns(crd: dict[str, Any]) -> list[str]:
        columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
        return [c["name"] for c in columns if not c.get("priority")]

    assert default_columns(experiment) == ["Phase", "Trials", "Running", "Stopped", "Best", "Pareto", "Trial-Time",
                                           "Age"]
    assert default_columns(trial) == ["Phase", "Objective", "Age"]
    assert experiment["spec"]["names"]["categories"] == ["kubetune"]
