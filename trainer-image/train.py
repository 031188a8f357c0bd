"""Train All-CNN-C or a CIFAR ResNet with SGD and report validation accuracy to kubetune.

    python train.py --model allcnn --dataset digits --width 0.25 --image-size 16 --epoch-scale 0.02
    python train.py --model resnet --dataset cifar10 --data-dir /data --depth 3 --learning-rate 0.1

Hyperparameters (the tuned ones): each comes from its flag (``--learning-rate``), else from the env
var ``KUBETUNE_PARAM_<NAME>`` (``KUBETUNE_PARAM_LEARNING_RATE``), else from the model's expert
default below. Flags win.

=================================  =========================  ======================================
name                               All-CNN-C default          ResNet default
=================================  =========================  ======================================
epochs (int ≥ 1)                   350                        182  (64k iterations at batch 128)
learning_rate (> 0)                0.01                       0.1
weight_decay (≥ 0)                 0.001                      0.0001
gaussian_scale (> 0, init std)     0.05                       0.05
momentum_coef [0, 1)               0.9                        0.9
momentum_step_change [0, 1]        0 (no schedule)            0
momentum_step_schedule_start ≥ 0   0                          0
momentum_step_schedule_step_width  1                          1
momentum_step_schedule_steps ≥ 0   0                          0
depth (int ≥ 1, ResNet only)       —                          3  (ResNet-20)
=================================  =========================  ======================================

The All-CNN-C defaults are Springenberg et al.'s (arXiv 1412.6806): SGD with momentum 0.9, weight
decay 0.001, 350 epochs, learning rate ×0.1 after epochs 200, 250 and 300; of their learning-rate
grid {0.25, 0.1, 0.05, 0.01} we take 0.01, the one reproductions without batch norm train stably
with. The ResNet defaults are He et al.'s (CVPR 2016): learning rate 0.1, ×0.1 at 50% and 75% of
training, weight decay 1e-4, momentum 0.9. Neither paper fixes an init std; 0.05 is close to He
initialization for All-CNN-C's 3×3×96 layers.

Learning-rate schedule: ×0.1 at the same *fractions* of ``epochs`` as the paper (All-CNN-C: 4/7,
5/7, 6/7; ResNet: 1/2, 3/4), so a tuned ``epochs`` keeps the paper's shape.

Momentum schedule: momentum starts at ``momentum_coef``. At nominal epoch
``momentum_step_schedule_start``, and again every ``momentum_step_schedule_step_width`` epochs
after it, for ``momentum_step_schedule_steps`` steps in all, momentum moves the fraction
``momentum_step_change`` of its remaining distance to 1: after k steps
``m_k = 1 − (1 − momentum_coef)·(1 − momentum_step_change)^k``, capped at 0.999. This keeps every
point of the seed's ranges (both in [0.001, 0.999]) a valid momentum below 1, where an additive
step would leave the range after one step for most of them.

``--epoch-scale s`` (default 1): train ``max(1, round(s·epochs))`` real epochs and run every
schedule (learning-rate drops, momentum steps) on the nominal clock ``t = real epochs / s``, read
at every iteration. With s = 0.02 the seed's range epochs ∈ [50, 500] becomes 1–10 real epochs
with the same schedule shapes. ``epochs_run`` in the report counts real epochs.

Output: ``kubetune: epoch=N accuracy=… loss=…`` per real epoch (validation set), then the JSON
report ``{"accuracy", "loss", "epochs_run", "train_seconds"}`` via :mod:`kubetune.report`. The
objective is the final model's validation accuracy.

Exit codes: 0 done; 2 invalid argument or hyperparameter; 3 diverged (non-finite loss: no report
is written, so the trial fails instead of scoring chance accuracy); 4 data unavailable; 1 other
errors. The last stderr line is always a one-line reason.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
try:
    from kubetune import report
except ImportError:  # a source checkout without kubetune installed: use the repository's copy
    sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "operator"))
    from kubetune import report

import data as datasets
from models import ALLCNN_MIN_IMAGE_SIZE, build_model

EXIT_USAGE, EXIT_DIVERGED, EXIT_DATA, EXIT_ERROR = 2, 3, 4, 1
MAX_MOMENTUM = 0.999
LR_DROP = 0.1
LR_MILESTONES = {"allcnn": (200 / 350, 250 / 350, 300 / 350), "resnet": (0.5, 0.75)}


class UsageError(ValueError):
    """An invalid argument or hyperparameter (exit 2)."""


class Diverged(RuntimeError):
    """The loss became NaN or infinite (exit 3)."""

    def __init__(self, epoch: int) -> None:
        super().__init__(f"diverged at epoch {epoch}: non-finite loss")
        self.epoch = epoch


@dataclass(frozen=True)
class HyperParams:
    """The tuned values; see the module docstring for their meaning and defaults."""

    epochs: int
    learning_rate: float
    weight_decay: float
    gaussian_scale: float
    momentum_coef: float
    momentum_step_change: float = 0.0
    momentum_step_schedule_start: float = 0.0
    momentum_step_schedule_step_width: float = 1.0
    momentum_step_schedule_steps: int = 0
    depth: int = 3

    def check(self) -> None:
        """Raise UsageError naming the first out-of-range value."""
        rules: list[tuple[str, bool, str]] = [
            ("epochs", self.epochs >= 1, "must be ≥ 1"),
            ("learning_rate", self.learning_rate > 0, "must be > 0"),
            ("weight_decay", self.weight_decay >= 0, "must be ≥ 0"),
            ("gaussian_scale", self.gaussian_scale > 0, "must be > 0"),
            ("momentum_coef", 0 <= self.momentum_coef < 1, "must be in [0, 1)"),
            ("momentum_step_change", 0 <= self.momentum_step_change <= 1, "must be in [0, 1]"),
            ("momentum_step_schedule_start", self.momentum_step_schedule_start >= 0, "must be ≥ 0"),
            ("momentum_step_schedule_step_width", self.momentum_step_schedule_step_width > 0, "must be > 0"),
            ("momentum_step_schedule_steps", self.momentum_step_schedule_steps >= 0, "must be ≥ 0"),
            ("depth", self.depth >= 1, "must be ≥ 1"),
        ]
        for name, ok, rule in rules:
            value = getattr(self, name)
            if not math.isfinite(value):
                raise UsageError(f"{name}={value} must be finite")
            if not ok:
                raise UsageError(f"{name}={value} {rule}")


INT_PARAMS = frozenset({"epochs", "momentum_step_schedule_steps", "depth"})
EXPERT_DEFAULTS: Mapping[str, HyperParams] = {
    "allcnn": HyperParams(epochs=350, learning_rate=0.01, weight_decay=0.001, gaussian_scale=0.05,
                          momentum_coef=0.9),
    "resnet": HyperParams(epochs=182, learning_rate=0.1, weight_decay=0.0001, gaussian_scale=0.05,
                          momentum_coef=0.9),
}


@dataclass(frozen=True)
class Options:
    """Everything that is not tuned: model shape, data, hardware, run length."""

    model: str = "allcnn"
    dataset: str = "digits"
    data_dir: Path = Path("/data")
    download_url: str | None = None
    image_size: int = 32
    train_size: int = 0  # 0: every training image; N: only the first N (validation unchanged)
    width: float = 1.0
    batch_size: int = 128
    epoch_scale: float = 1.0
    seed: int = 0
    device: str = "auto"
    amp: bool | None = None  # None: on when training on CUDA
    augment: bool | None = None  # None: on for cifar10
    dropout: float = 0.5
    input_dropout: float = 0.2
    threads: int = 0  # 0: torch's default

    def check(self) -> None:
        if self.model not in LR_MILESTONES:
            raise UsageError(f"--model {self.model!r}: use allcnn or resnet")
        if self.dataset not in ("digits", "cifar10", "synthetic"):
            raise UsageError(f"--dataset {self.dataset!r}: use digits, cifar10 or synthetic")
        min_size = ALLCNN_MIN_IMAGE_SIZE if self.model == "allcnn" else 4
        if self.image_size < min_size:
            raise UsageError(f"--image-size {self.image_size}: {self.model} needs at least {min_size}")
        if self.train_size < 0:
            raise UsageError(f"--train-size {self.train_size}: must be ≥ 0 (0: every training image)")
        if not (self.width > 0 and self.batch_size >= 1 and self.epoch_scale > 0):
            raise UsageError("--width and --epoch-scale must be > 0 and --batch-size ≥ 1")
        if not (0 <= self.dropout < 1 and 0 <= self.input_dropout < 1):
            raise UsageError("--dropout and --input-dropout must be in [0, 1)")


@dataclass(frozen=True)
class TrainResult:
    accuracy: float
    loss: float
    epochs_run: int
    train_seconds: float

    def metrics(self) -> dict[str, float]:
        return {"accuracy": self.accuracy, "loss": self.loss, "epochs_run": self.epochs_run,
                "train_seconds": round(self.train_seconds, 3)}


# --- schedules ---------------------------------------------------------------------------------


def real_epochs(hp: HyperParams, epoch_scale: float) -> int:
    return max(1, round(hp.epochs * epoch_scale))


def learning_rate_at(t: float, hp: HyperParams, model: str) -> float:
    """Learning rate at nominal epoch ``t`` (fractional)."""
    drops = sum(t >= fraction * hp.epochs for fraction in LR_MILESTONES[model])
    return hp.learning_rate * LR_DROP**drops


def momentum_at(t: float, hp: HyperParams) -> float:
    """Momentum at nominal epoch ``t``: see the module docstring."""
    if t < hp.momentum_step_schedule_start or hp.momentum_step_schedule_steps == 0:
        steps = 0
    else:
        taken = math.floor((t - hp.momentum_step_schedule_start) / hp.momentum_step_schedule_step_width) + 1
        steps = min(hp.momentum_step_schedule_steps, taken)
    gap = (1.0 - hp.momentum_coef) * (1.0 - hp.momentum_step_change) ** steps
    return min(1.0 - gap, MAX_MOMENTUM)


# --- training ----------------------------------------------------------------------------------


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise UsageError(f"--device {name!r}: {error}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available")
    return device


def load_data(opts: Options) -> datasets.Splits:
    if opts.dataset == "digits":
        splits = datasets.load_digits(opts.image_size)
    elif opts.dataset == "synthetic":
        splits = datasets.synthetic(5000, opts.image_size, seed=opts.seed)
    else:
        splits = datasets.load_cifar10(opts.data_dir, download_url=opts.download_url, image_size=opts.image_size)
    return datasets.first_training_images(splits, opts.train_size) if opts.train_size else splits


ProgressFn = Callable[..., None]


def train(
    hp: HyperParams, opts: Options, *, progress: ProgressFn | None = report.report_progress,
    splits: datasets.Splits | None = None,
) -> TrainResult:
    """Train and evaluate once; raises Diverged on a non-finite loss, UsageError on bad input."""
    hp.check()
    opts.check()
    device = pick_device(opts.device)
    use_cuda = device.type == "cuda"
    amp = use_cuda if opts.amp is None else opts.amp
    augment = opts.dataset == "cifar10" if opts.augment is None else opts.augment
    if amp and not use_cuda:
        raise UsageError("--amp needs a CUDA device")
    if opts.threads:
        torch.set_num_threads(opts.threads)
    torch.manual_seed(opts.seed)
    if use_cuda:
        torch.backends.cudnn.benchmark = True
    else:
        torch.use_deterministic_algorithms(True)
        torch.set_flush_denormal(True)  # vanishing activations as denormals slow a CPU tenfold
    generator = torch.Generator().manual_seed(opts.seed)

    splits = splits or load_data(opts)
    if use_cuda:  # small datasets (CIFAR-10 is 150 MB as uint8): copy them once, asynchronously
        pinned = splits.pin()
        splits = replace(pinned, **{f: getattr(pinned, f).to(device, non_blocking=True)
                                    for f in ("train_x", "train_y", "val_x", "val_y", "mean", "std")})
    model = build_model(opts.model, width=opts.width, init_std=hp.gaussian_scale, depth=hp.depth,
                        dropout=opts.dropout, input_dropout=opts.input_dropout).to(device)
    memory_format = torch.channels_last if use_cuda else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    optimizer = torch.optim.SGD(model.parameters(), lr=hp.learning_rate, momentum=hp.momentum_coef,
                                weight_decay=hp.weight_decay)
    amp_dtype = torch.bfloat16 if use_cuda and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=amp and amp_dtype == torch.float16)

    n_train = splits.train_x.shape[0]
    batches = math.ceil(n_train / opts.batch_size)
    epochs = real_epochs(hp, opts.epoch_scale)
    accuracy = loss = math.nan
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(n_train, generator=generator).to(device)
        loss_sum = torch.zeros((), device=device)
        for b in range(batches):
            t = (epoch + b / batches) / opts.epoch_scale  # the nominal clock of every schedule
            for group in optimizer.param_groups:
                group["lr"] = learning_rate_at(t, hp, opts.model)
                group["momentum"] = momentum_at(t, hp)
            index = order[b * opts.batch_size:(b + 1) * opts.batch_size]
            x = splits.normalize(splits.train_x[index])
            if augment:
                x = datasets.augment(x, generator)
            x = x.contiguous(memory_format=memory_format)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
                batch_loss = F.cross_entropy(model(x), splits.train_y[index])
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(batch_loss).backward()
            scaler.step(optimizer)
            scaler.update()
            loss_sum += batch_loss.detach().float() * index.shape[0]
        if not math.isfinite(loss_sum.item()):
            raise Diverged(epoch + 1)
        accuracy, loss = evaluate(model, splits, device, amp=amp, amp_dtype=amp_dtype,
                                  memory_format=memory_format)
        if not math.isfinite(loss):
            raise Diverged(epoch + 1)
        if progress is not None:
            progress(epoch + 1, accuracy=round(accuracy, 6), loss=round(loss, 6))
    if use_cuda:
        torch.cuda.synchronize()
    return TrainResult(accuracy, loss, epochs, time.perf_counter() - start)


@torch.no_grad()
def evaluate(
    model: nn.Module, splits: datasets.Splits, device: torch.device, *, amp: bool, amp_dtype: torch.dtype,
    memory_format: torch.memory_format, batch_size: int = 1000,
) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) on the validation split."""
    model.eval()
    correct = torch.zeros((), device=device)
    loss_sum = torch.zeros((), device=device)
    n = splits.val_x.shape[0]
    for i in range(0, n, batch_size):
        x = splits.normalize(splits.val_x[i:i + batch_size]).contiguous(memory_format=memory_format)
        y = splits.val_y[i:i + batch_size]
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
            logits = model(x).float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(dim=1) == y).sum()
    return correct.item() / n, loss_sum.item() / n


# --- command line ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog="See the module docstring.")
    tuned = parser.add_argument_group("hyperparameters (flag > KUBETUNE_PARAM_<NAME> > expert default)")
    for name in (f.name for f in fields(HyperParams)):
        tuned.add_argument("--" + name.replace("_", "-"), dest=name, metavar="INT" if name in INT_PARAMS
                           else "FLOAT", help=f"env KUBETUNE_PARAM_{name.upper()}")
    add = parser.add_argument
    add("--model", choices=sorted(LR_MILESTONES), default=Options.model)
    add("--dataset", choices=("digits", "cifar10", "synthetic"), default=Options.dataset,
        help="digits: built in, no download (default); cifar10: python batches in --data-dir")
    add("--data-dir", type=Path, default=Options.data_dir, help="CIFAR-10 folder (default /data)")
    add("--download-url", default=None, help=f"fetch CIFAR-10 when --data-dir has none, e.g. {datasets.CIFAR_URL}")
    add("--image-size", type=int, default=Options.image_size, help="resize images to S×S (default 32)")
    add("--train-size", type=int, default=Options.train_size,
        help="train on the first N training images only, a harder task (default 0: all; validation unchanged)")
    add("--width", type=float, default=Options.width, help="channel multiplier (default 1)")
    add("--batch-size", type=int, default=Options.batch_size)
    add("--epoch-scale", type=float, default=Options.epoch_scale,
        help="train max(1, round(s·epochs)) real epochs with schedules on the nominal clock (default 1)")
    add("--seed", type=int, default=Options.seed)
    add("--device", default=Options.device, help="auto (CUDA when present), cpu, cuda, cuda:1 …")
    add("--amp", action=argparse.BooleanOptionalAction, default=None, help="mixed precision (default: on CUDA)")
    add("--augment", action=argparse.BooleanOptionalAction, default=None,
        help="random shifts and flips (default: on for cifar10)")
    add("--dropout", type=float, default=Options.dropout, help="All-CNN dropout after strided convs")
    add("--input-dropout", type=float, default=Options.input_dropout, help="All-CNN dropout on the input")
    add("--threads", type=int, default=Options.threads, help="CPU threads (default: torch's)")
    return parser


def _number(text: str, name: str, source: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{source}={text!r}: {name} must be a number") from None
    if name in INT_PARAMS:
        if not value.is_integer():
            raise UsageError(f"{source}={text!r}: {name} must be an integer")
        return int(value)
    return value


def parse(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> tuple[HyperParams,
                                                                                                  Options]:
    args = vars(build_parser().parse_args(argv))
    env = os.environ if environ is None else environ
    opts = Options(**{f.name: args[f.name] for f in fields(Options)})
    if opts.model not in EXPERT_DEFAULTS:
        raise UsageError(f"--model {opts.model!r}: use allcnn or resnet")
    values = {}
    for name in (f.name for f in fields(HyperParams)):
        key = report.param_env_name(name)
        if args[name] is not None:
            values[name] = _number(args[name], name, "--" + name.replace("_", "-"))
        elif env.get(key, "").strip():
            values[name] = _number(env[key].strip(), name, key)
    hp = replace(EXPERT_DEFAULTS[opts.model], **values)
    hp.check()
    opts.check()
    return hp, opts


def main(argv: Sequence[str] | None = None) -> int:
    try:
        hp, opts = parse(argv)
        print(f"train.py: {opts.model} width={opts.width} on {opts.dataset} ({opts.image_size}px), "
              f"{real_epochs(hp, opts.epoch_scale)} epochs, {hp}", flush=True)
        result = train(hp, opts)
        report.report_metrics(result.metrics())
    except UsageError as error:
        print(f"train.py: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except Diverged as error:
        print(f"train.py: {error}", file=sys.stderr)
        return EXIT_DIVERGED
    except datasets.DataError as error:
        print(f"train.py: data: {error}", file=sys.stderr)
        return EXIT_DATA
    except Exception as error:
        traceback.print_exc()
        reason = " ".join(f"{type(error).__name__}: {error}".split())[:300]
        print(f"train.py: failed: {reason}", file=sys.stderr)
        return EXIT_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
