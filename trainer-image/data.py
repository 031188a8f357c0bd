"""Datasets for the trainer: images as uint8 tensors (N, 3, S, S) plus labels, split train/validation.

* ``digits`` — scikit-learn's bundled 8×8 handwritten digits (1,797 images, no download), scaled to
  S×S (bilinear) and repeated on 3 channels: the default for CPU runs and tests.
* ``cifar10`` — the standard python-pickle batches (``data_batch_1..5``, ``test_batch``) from
  ``--data-dir`` (the folder itself or its ``cifar-10-batches-py`` subfolder), or fetched from
  ``--download-url`` (the ``cifar-10-python.tar.gz`` archive) when the folder has none.

The validation split is the objective's held-out set. It is drawn with a fixed seed
(:data:`SPLIT_SEED`), not the trial's seed, so every trial of an experiment is scored on the same
images. Pixels stay uint8 until a batch reaches the device (4× less memory and host→device
traffic); :meth:`Splits.normalize` then standardizes with the training split's channel statistics.
"""

from __future__ import annotations

import pickle
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

SPLIT_SEED = 0
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
#: He et al. and Springenberg et al. both hold out the last 5,000 training images for validation.
CIFAR_VALIDATION_SIZE = 5000
DIGITS_VALIDATION_FRACTION = 0.2


class DataError(RuntimeError):
    """The dataset cannot be found, fetched or read."""


@dataclass(frozen=True)
class Splits:
    """Train and validation images (uint8, (N, 3, S, S)), labels (int64, (N,)) and channel statistics."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    mean: torch.Tensor  # (3,), in [0, 255]
    std: torch.Tensor  # (3,)

    @property
    def image_size(self) -> int:
        return int(self.train_x.shape[-1])

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 batch (B, 3, S, S) on any device → standardized float32."""
        mean = self.mean.to(x.device).view(1, 3, 1, 1)
        std = self.std.to(x.device).view(1, 3, 1, 1)
        return (x.float() - mean) / std

    def pin(self) -> Splits:
        """The same splits in page-locked memory, for asynchronous copies to a GPU."""
        return Splits(
            self.train_x.pin_memory(), self.train_y.pin_memory(), self.val_x.pin_memory(),
            self.val_y.pin_memory(), self.mean, self.std,
        )


def _splits(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray) -> Splits:
    tx = torch.from_numpy(np.ascontiguousarray(train_x, dtype=np.uint8))
    as_float = tx.double()
    mean = as_float.mean(dim=(0, 2, 3)).float()
    std = as_float.std(dim=(0, 2, 3)).float().clamp_min(1.0)
    return Splits(
        tx,
        torch.from_numpy(np.asarray(train_y, dtype=np.int64)),
        torch.from_numpy(np.ascontiguousarray(val_x, dtype=np.uint8)),
        torch.from_numpy(np.asarray(val_y, dtype=np.int64)),
        mean,
        std,
    )


def first_training_images(splits: Splits, n: int) -> Splits:
    """The first ``n`` training images (the splits' order is already shuffled), the validation set
    unchanged, the normalization statistics taken again from the images kept."""
    if n < 1:
        raise ValueError(f"train size {n}: must be ≥ 1")
    if n > len(splits.train_y):
        raise ValueError(f"train size {n}: only {len(splits.train_y)} training images")
    return _splits(splits.train_x[:n].numpy(), splits.train_y[:n].numpy(), splits.val_x.numpy(), splits.val_y.numpy())


def resize(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, C, H, W) → uint8 (N, C, size, size), bilinear; unchanged when already that size."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    tensor = torch.from_numpy(np.ascontiguousarray(images)).float()
    scaled = F.interpolate(tensor, size=(size, size), mode="bilinear", align_corners=False)
    return scaled.round().clamp(0, 255).to(torch.uint8).numpy()


def load_digits(image_size: int = 32) -> Splits:
    """scikit-learn's digits as 3×S×S images; 20% held out for validation."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    gray = np.asarray(bunch.images, dtype=np.float64) * (255.0 / 16.0)  # 0..16 → 0..255
    images = np.repeat(gray.round().astype(np.uint8)[:, None], 3, axis=1)
    images = resize(images, image_size)
    labels = np.asarray(bunch.target, dtype=np.int64)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(labels))
    n_val = round(len(labels) * DIGITS_VALIDATION_FRACTION)
    val, train = order[:n_val], order[n_val:]
    return _splits(images[train], labels[train], images[val], labels[val])


def find_cifar10(data_dir: Path) -> Path | None:
    for folder in (data_dir, data_dir / CIFAR_FOLDER):
        if (folder / "data_batch_1").is_file():
            return folder
    return None


def download_cifar10(url: str, data_dir: Path) -> Path:
    """Fetch and unpack the python-pickle archive into ``data_dir``; the batches' folder."""
    data_dir.mkdir(parents=True, exist_ok=True)
    archive = data_dir / "cifar-10-python.tar.gz"
    partial = archive.with_suffix(".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)
        partial.replace(archive)
        with tarfile.open(archive) as tar:
            _extract_safely(tar, data_dir)
    except (OSError, tarfile.TarError) as error:
        raise DataError(f"cannot download CIFAR-10 from {url}: {error}") from None
    folder = find_cifar10(data_dir)
    if folder is None:
        raise DataError(f"{url} did not contain the CIFAR-10 python batches")
    return folder


def _extract_safely(tar: tarfile.TarFile, dest: Path) -> None:
    if hasattr(tarfile, "data_filter"):  # Python ≥ 3.11.4 (and distributions' backports)
        tar.extractall(dest, filter="data")
        return
    root = dest.resolve()
    for member in tar.getmembers():
        target = (dest / member.name).resolve()
        if not (member.isfile() or member.isdir()) or not target.is_relative_to(root):
            raise DataError(f"refusing archive member {member.name!r}")
    tar.extractall(dest)


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open("rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
    except (OSError, pickle.UnpicklingError, EOFError) as error:
        raise DataError(f"cannot read {path}: {error}") from None
    images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return images, np.asarray(batch[b"labels"], dtype=np.int64)


def load_cifar10(data_dir: Path, *, download_url: str | None = None, image_size: int = 32) -> Splits:
    """CIFAR-10's 50,000 training images, the last 5,000 held out for validation."""
    folder = find_cifar10(data_dir)
    if folder is None:
        if not download_url:
            raise DataError(
                f"no CIFAR-10 batches (data_batch_1..5) in {data_dir} or {data_dir / CIFAR_FOLDER}; "
                "mount them there or pass --download-url"
            )
        folder = download_cifar10(download_url, data_dir)
    parts = [_read_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    images = resize(np.concatenate([p[0] for p in parts]), image_size)
    labels = np.concatenate([p[1] for p in parts])
    cut = len(labels) - CIFAR_VALIDATION_SIZE
    return _splits(images[:cut], labels[:cut], images[cut:], labels[cut:])


def synthetic(n: int, image_size: int = 32, *, seed: int = 0) -> Splits:
    """Random images and labels (for throughput checks, not learning)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 3, image_size, image_size), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n)
    n_val = max(1, n // 10)
    return _splits(images[n_val:], labels[n_val:], images[:n_val], labels[:n_val])


def augment(x: torch.Tensor, generator: torch.Generator | None = None, pad: int = 4) -> torch.Tensor:
    """CIFAR's standard augmentation on a float batch (B, C, S, S): random shifts of up to ``pad``
    pixels (zero-padded crop) and horizontal flips, vectorized over the batch on its device."""
    b, c, h, w = x.shape
    device = x.device
    padded = F.pad(x, (pad, pad, pad, pad))
    di = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(device)
    dj = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(device)
    flip = (torch.rand(b, generator=generator) < 0.5).to(device)
    rows = (di[:, None] + torch.arange(h, device=device)[None, :])[:, None, :, None]
    cols = torch.arange(w, device=device)[None, :].expand(b, w)
    cols = torch.where(flip[:, None], cols.flip(1), cols) + dj[:, None]
    batch = torch.arange(b, device=device)[:, None, None, None]
    channel = torch.arange(c, device=device)[None, :, None, None]
    return padded[batch, channel, rows, cols[:, None, None, :]]
