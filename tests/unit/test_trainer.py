"""The PyTorch trainer of trainer-image/: models, schedules, the command line and the trial contract."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.torch

TRAINER = Path(__file__).resolve().parents[2] / "trainer-image"
sys.path.insert(0, str(TRAINER))

import data  # noqa: E402
import models  # noqa: E402
import train  # noqa: E402

SMALL = ["--width", "0.125", "--image-size", "12", "--batch-size", "64", "--threads", "1"]


def run_trainer(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KUBETUNE_")}
    environ.update(KUBETUNE_METRICS_FILE=str(tmp_path / "metrics.json"), **env)
    return subprocess.run(
        [sys.executable, str(TRAINER / "train.py"), *args], capture_output=True, text=True, env=environ,
        timeout=120, cwd=tmp_path,
    )


# --- models --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "width"), [(32, 1.0), (16, 0.25), (12, 0.125)])
def test_allcnn_maps_images_to_ten_logits(size: int, width: float) -> None:
    net = models.AllCNN(width=width)
    assert net(torch.zeros(2, 3, size, size)).shape == (2, 10)


def test_allcnn_is_all_convolutional() -> None:
    layers = list(models.AllCNN().modules())
    assert not any(isinstance(m, (torch.nn.Linear, torch.nn.MaxPool2d, torch.nn.AvgPool2d)) for m in layers)
    convs = [m for m in layers if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [96, 96, 96, 192, 192, 192, 192, 192, 10]
    assert [c.stride[0] for c in convs] == [1, 1, 2, 1, 1, 2, 1, 1, 1]


def test_allcnn_rejects_images_too_small_for_its_valid_convolution() -> None:
    with pytest.raises(ValueError, match="at least 12"):
        models.AllCNN(width=0.125)(torch.zeros(1, 3, 8, 8))


@pytest.mark.parametrize(("depth", "layers"), [(1, 8), (3, 20)])
def test_resnet_depth_is_blocks_per_stage(depth: int, layers: int) -> None:
    net = models.CifarResNet(depth=depth, width=0.5)
    assert net.layers == layers
    weighted = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(weighted) == layers  # option-A shortcuts add no weights
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert net(torch.zeros(2, 3, 8, 8)).shape == (2, 10)


def test_width_scales_channels_and_keeps_the_init_gain() -> None:
    wide, thin = models.AllCNN(width=1.0, init_std=0.1), models.AllCNN(width=0.25, init_std=0.1)
    assert sum(p.numel() for p in thin.parameters()) < sum(p.numel() for p in wide.parameters()) / 10
    conv = [m for m in thin.modules() if isinstance(m, torch.nn.Conv2d)][4]
    assert conv.weight.std().item() == pytest.approx(0.1 / math.sqrt(0.25), rel=0.05)


# --- data ----------------------------------------------------------------------------------------


def test_digits_are_three_channel_images_with_a_fixed_validation_split() -> None:
    first, second = data.load_digits(16), data.load_digits(16)
    assert first.train_x.shape[1:] == (3, 16, 16) and first.train_x.dtype == torch.uint8
    assert first.train_x.shape[0] + first.val_x.shape[0] == 1797
    assert first.val_x.shape[0] == 359
    assert torch.equal(first.val_y, second.val_y)
    normalized = first.normalize(first.train_x)
    assert normalized.mean().abs().item() < 1e-3


def test_a_train_size_keeps_the_first_training_images_and_the_whole_validation_set() -> None:
    full = data.load_digits(8)
    small = train.load_data(train.Options(dataset="digits", image_size=8, train_size=300))
    assert small.train_x.shape[0] == 300 and torch.equal(small.train_y, full.train_y[:300])
    assert torch.equal(small.val_x, full.val_x) and torch.equal(small.val_y, full.val_y)
    assert small.normalize(small.train_x).mean().abs().item() < 1e-3  # statistics of the images kept
    with pytest.raises(ValueError, match="only 1438 training images"):
        data.first_training_images(full, 5000)
    with pytest.raises(train.UsageError, match="--train-size -1"):
        train.parse(["--train-size", "-1"], environ={})[1].check()


def test_the_300_image_resnet_benchmark_trains_a_resnet_on_300_images() -> None:
    import argparse

    from bench import allcnn_reproduction as rep

    args = argparse.Namespace(model="resnet300", image_size=12, width=0.25, batch_size=64, epoch_scale=0.144,
                              threads=1, train_size=300)
    opts = rep.options(args, 3)
    assert (opts.model, opts.train_size, opts.seed) == ("resnet", 300, 3)
    assert rep.hyperparams({}, "resnet300") == train.EXPERT_DEFAULTS["resnet"]
    assert rep.trainer_model("allcnn") == "allcnn"


def test_augment_keeps_shape_and_is_seeded() -> None:
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    a = data.augment(x, torch.Generator().manual_seed(1))
    b = data.augment(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b)


def write_fake_cifar10(folder: Path) -> None:
    import pickle

    import numpy as np

    folder.mkdir(parents=True)
    for i in range(1, 6):
        batch = {b"data": np.full((1200, 3072), i, dtype=np.uint8), b"labels": [i] * 1200}
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch))


def test_cifar10_reads_the_python_batches(tmp_path: Path) -> None:
    write_fake_cifar10(tmp_path / "cifar-10-batches-py")
    splits = data.load_cifar10(tmp_path, image_size=32)
    assert splits.train_x.shape == (1000, 3, 32, 32)
    assert splits.val_x.shape == (5000, 3, 32, 32)  # the last 5,000 training images
    assert set(splits.val_y.tolist()) == {1, 2, 3, 4, 5}


def test_cifar10_downloads_and_unpacks_the_archive(tmp_path: Path) -> None:
    import tarfile

    write_fake_cifar10(tmp_path / "src" / "cifar-10-batches-py")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    splits = data.load_cifar10(tmp_path / "data", download_url=archive.as_uri(), image_size=16)
    assert splits.train_x.shape == (1000, 3, 16, 16)
    assert (tmp_path / "data" / "cifar-10-batches-py" / "data_batch_5").is_file()


def test_cifar10_missing_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(data.DataError, match="no CIFAR-10 batches"):
        data.load_cifar10(tmp_path)


# --- schedules -----------------------------------------------------------------------------------


def hp(**changes: float) -> train.HyperParams:
    base = train.HyperParams(epochs=350, learning_rate=0.1, weight_decay=0.001, gaussian_scale=0.05,
                             momentum_coef=0.5, momentum_step_change=0.5, momentum_step_schedule_start=100,
                             momentum_step_schedule_step_width=10, momentum_step_schedule_steps=3)
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("t", "momentum"),
    [(0, 0.5), (99.9, 0.5), (100, 0.75), (109.9, 0.75), (110, 0.875), (120, 0.9375), (500, 0.9375)],
)
def test_momentum_steps_close_the_gap_to_one(t: float, momentum: float) -> None:
    assert train.momentum_at(t, hp()) == pytest.approx(momentum)


def test_momentum_stays_below_one() -> None:
    extreme = hp(momentum_coef=0.999, momentum_step_change=0.999, momentum_step_schedule_steps=20)
    assert train.momentum_at(1000, extreme) == train.MAX_MOMENTUM


@pytest.mark.parametrize(("t", "lr"), [(0, 0.1), (199, 0.1), (200, 0.01), (250, 0.001), (300, 0.0001)])
def test_allcnn_learning_rate_drops_at_the_papers_epochs(t: float, lr: float) -> None:
    assert train.learning_rate_at(t, hp(), "allcnn") == pytest.approx(lr)


def test_epoch_scale_shortens_the_run_not_the_schedule_shape() -> None:
    assert train.real_epochs(hp(epochs=50), 0.02) == 1
    assert train.real_epochs(hp(epochs=500), 0.02) == 10
    assert train.real_epochs(hp(epochs=10), 0.02) == 1  # never zero


# --- command line --------------------------------------------------------------------------------


def test_flags_win_over_env_which_wins_over_expert_defaults() -> None:
    env = {"KUBETUNE_PARAM_LEARNING_RATE": "0.2", "KUBETUNE_PARAM_EPOCHS": "60.0",
           "KUBETUNE_PARAM_MOMENTUM_COEF": "0.5"}
    params, opts = train.parse(["--learning-rate", "0.3", "--model", "resnet"], env)
    assert params.learning_rate == 0.3 and params.epochs == 60 and params.momentum_coef == 0.5
    assert params.weight_decay == train.EXPERT_DEFAULTS["resnet"].weight_decay
    assert opts.model == "resnet" and opts.dataset == "digits"


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--learning-rate", "-0.1"], {}, "learning_rate=-0.1 must be > 0"),
        ([], {"KUBETUNE_PARAM_LEARNING_RATE": "fast"}, "KUBETUNE_PARAM_LEARNING_RATE='fast'"),
        (["--epochs", "2.5"], {}, "epochs must be an integer"),
        (["--epochs", "0"], {}, "epochs=0 must be ≥ 1"),
        (["--momentum-coef", "1"], {}, "momentum_coef=1.0 must be in"),
        (["--weight-decay", "nan"], {}, "must be finite"),
        (["--gaussian-scale", "0"], {}, "gaussian_scale=0.0 must be > 0"),
        (["--depth", "0", "--model", "resnet"], {}, "depth=0"),
        (["--image-size", "8"], {}, "allcnn needs at least 12"),
    ],
)
def test_bad_hyperparameters_are_usage_errors(argv: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(train.UsageError, match=message):
        train.parse(argv, env)


def test_bad_hyperparameter_exits_2_with_a_one_line_reason(tmp_path: Path) -> None:
    result = run_trainer(SMALL, tmp_path, KUBETUNE_PARAM_LEARNING_RATE="-1")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "train.py: error: learning_rate=-1.0 must be > 0"
    assert not (tmp_path / "metrics.json").exists()


# --- training ------------------------------------------------------------------------------------


def test_one_epoch_on_cpu_writes_the_metrics_report(tmp_path: Path) -> None:
    result = run_trainer([*SMALL, "--epochs", "1", "--learning-rate", "0.05"], tmp_path,
                         KUBETUNE_PARAM_WEIGHT_DECAY="0.0005")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics) == {"accuracy", "loss", "epochs_run", "train_seconds"}
    assert 0 <= metrics["accuracy"] <= 1 and math.isfinite(metrics["loss"]) and metrics["epochs_run"] == 1
    progress = [line for line in result.stdout.splitlines() if line.startswith("kubetune:")]
    assert len(progress) == 1 and progress[0].startswith("kubetune: epoch=1 accuracy=")
    assert set(dict(f.split("=") for f in progress[0].split()[1:])) == {"epoch", "accuracy", "loss"}
    assert "weight_decay=0.0005" in result.stdout


def test_training_is_deterministic_on_cpu_and_learns() -> None:
    params = replace(train.EXPERT_DEFAULTS["resnet"], epochs=3)
    opts = train.Options(model="resnet", width=0.25, image_size=12, batch_size=64, threads=1)
    seen: list[tuple[int, float]] = []
    first = train.train(params, opts, progress=lambda epoch, **m: seen.append((epoch, m["accuracy"])))
    second = train.train(params, opts, progress=None)
    assert (first.accuracy, first.loss) == (second.accuracy, second.loss)
    assert [epoch for epoch, _ in seen] == [1, 2, 3]
    assert first.accuracy > 0.5  # chance is 0.1
    assert first.metrics()["epochs_run"] == 3


def test_diverging_run_fails_instead_of_reporting_chance(tmp_path: Path) -> None:
    result = run_trainer([*SMALL, "--epochs", "2", "--learning-rate", "10000"], tmp_path)
    assert result.returncode == 3
    assert result.stderr.strip().splitlines()[-1].startswith("train.py: diverged at epoch 1")
    assert not (tmp_path / "metrics.json").exists()


def test_missing_data_exits_4(tmp_path: Path) -> None:
    result = run_trainer([*SMALL, "--dataset", "cifar10", "--data-dir", str(tmp_path / "none")], tmp_path)
    assert result.returncode == 4
    assert "no CIFAR-10 batches" in result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("example", ["allcnn-digits", "allcnn-cifar10", "resnet-cifar10"])
def test_example_arguments_parse(example: str) -> None:
    import yaml

    from kubetune.api import Experiment

    path = TRAINER.parent / "examples" / f"{example}.yaml"
    experiment = Experiment.model_validate(yaml.safe_load(path.read_text()))
    container = experiment.spec.trial_template.spec.template.spec.containers[0]
    # The most extreme corner of the search space is still a valid assignment for the trainer.
    env = {f"KUBETUNE_PARAM_{p.name.upper()}": str(p.max) for p in experiment.spec.parameters}
    params, opts = train.parse(container.args, env)
    assert params.epochs == 500 and opts.model == example.split("-")[0]
