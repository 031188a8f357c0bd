"""Every example Experiment is valid, and the trainer examples ask the trainer for what it can do."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubetune.api import Experiment
from kubetune.cli import load_experiment


def _example_files() -> list[Path]:
    """Every YAML file of examples/ but the state files a local run leaves next to them (``*.state.yaml``)."""
    folder = Path(__file__).resolve().parents[2] / "examples"
    return sorted(p for p in folder.glob("*.yaml") if not p.name.endswith(".state.yaml"))


EXAMPLES = _example_files()
SEED_PARAMETERS = {
    "epochs", "learning_rate", "weight_decay", "gaussian_scale", "momentum_coef", "momentum_step_change",
    "momentum_step_schedule_start", "momentum_step_schedule_step_width", "momentum_step_schedule_steps",
}


def load(path: Path) -> Experiment:
    return load_experiment(path)  # as `kubetune run` reads it: strict YAML, the models, the algorithm's checks


def test_there_are_examples() -> None:
    assert {"allcnn-cifar10.yaml", "resnet-cifar10.yaml", "allcnn-digits.yaml"} <= {p.name for p in EXAMPLES}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_validates(path: Path) -> None:
    experiment = load(path)
    assert experiment.metadata.name == path.stem


@pytest.mark.parametrize(
    ("name", "extra"), [("allcnn-cifar10", set()), ("resnet-cifar10", {"depth"}), ("allcnn-digits", set())]
)
def test_trainer_examples_search_the_seed_space(name: str, extra: set[str]) -> None:
    experiment = load(Path(EXAMPLES[0].parent / f"{name}.yaml"))
    params = {p.name: p for p in experiment.spec.parameters}
    assert set(params) == SEED_PARAMETERS | extra
    assert (params["epochs"].min, params["epochs"].max) == (50, 500)
    assert params["learning_rate"].scale == "log" and params["weight_decay"].scale == "log"
    container = experiment.spec.trial_template.spec.template.spec.containers[0]
    assert container.image == "kubetune/trainer:dev"
    assert container.command == ["python", "../trainer-image/train.py"]
    assert experiment.spec.early_stopping is not None  # the trainer reports every epoch: doomed trials stop
    if name.startswith("allcnn"):
        assert experiment.spec.early_stopping.rule == "asha"
    if name.endswith("cifar10"):
        assert container.model_extra is not None
        assert container.model_extra["resources"]["limits"]["nvidia.com/gpu"] == 1
