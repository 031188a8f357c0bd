"""The two networks the trainer tunes, both for N×3×S×S images and 10 classes.

* :class:`AllCNN` — All-CNN-C of Springenberg et al., "Striving for Simplicity: The All
  Convolutional Net" (ICLR 2015 workshop, arXiv 1412.6806): max-pooling replaced by 3×3 stride-2
  convolutions, the dense layers by 1×1 convolutions, then global average pooling. Channels
  96-96-96(s2)-192-192-192(s2)-192(3×3 valid)-192(1×1)-10(1×1), dropout 0.2 on the input and 0.5
  after each stride-2 layer, no batch norm.
* :class:`CifarResNet` — the CIFAR ResNet of He et al., "Deep Residual Learning" (CVPR 2016,
  §4.2): a 3×3 stem, three stages of ``n`` basic blocks (16, 32, 64 channels, stride 2 between
  stages), global average pooling and one linear layer: 6n+2 layers. Shortcuts are option A
  (identity; subsample and zero-pad channels where the shape changes), as in the paper.

``width`` multiplies every channel count (0.25 keeps a CPU run small); the layer structure stays.
Weights are drawn from N(0, σ²) with σ = ``init_std``/√``width``: ``init_std`` (the tuned
``gaussian_scale``) is the std of the full-width network, and a thinner network, whose layers have
``width`` times the fan-in, gets the std that keeps each layer's signal gain the same — so
``width`` changes the cost of a run, not which init std works. Biases start at zero, batch-norm
layers at (γ=1, β=0).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

NUM_CLASSES = 10
#: All-CNN-C's last 3×3 convolution is unpadded: inputs must keep ≥ 3×3 after two stride-2 layers.
ALLCNN_MIN_IMAGE_SIZE = 12


def scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))


def init_gaussian(module: nn.Module, std: float) -> None:
    """N(0, std²) weights for every convolution and linear layer, zero biases."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(layer.weight, mean=0.0, std=std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)


class AllCNN(nn.Module):
    """All-CNN-C. Input (N, 3, S, S) with S ≥ 12, output logits (N, 10)."""

    def __init__(
        self,
        *,
        width: float = 1.0,
        init_std: float = 0.05,
        dropout: float = 0.5,
        input_dropout: float = 0.2,
        num_classes: int = NUM_CLASSES,
    ) -> None:
        super().__init__()
        c1, c2 = scaled(96, width), scaled(192, width)

        def conv(c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 1) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            nn.Dropout(input_dropout),
            *conv(3, c1, 3),
            *conv(c1, c1, 3),
            *conv(c1, c1, 3, stride=2),  # replaces the first max-pool
            nn.Dropout(dropout),
            *conv(c1, c2, 3),
            *conv(c2, c2, 3),
            *conv(c2, c2, 3, stride=2),  # replaces the second max-pool
            nn.Dropout(dropout),
            *conv(c2, c2, 3, padding=0),
            *conv(c2, c2, 1, padding=0),  # 1×1 convolutions instead of dense layers
            nn.Conv2d(c2, num_classes, 1),
        )
        init_gaussian(self, init_std / math.sqrt(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] < ALLCNN_MIN_IMAGE_SIZE or x.shape[-2] < ALLCNN_MIN_IMAGE_SIZE:
            raise ValueError(f"All-CNN-C needs images of at least {ALLCNN_MIN_IMAGE_SIZE}×{ALLCNN_MIN_IMAGE_SIZE}")
        return self.features(x).mean(dim=(2, 3))  # global average pooling


class BasicBlock(nn.Module):
    """Two 3×3 conv-BN layers and an option-A shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.stride = stride
        self.extra_channels = c_out - c_in

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra_channels:
            low = self.extra_channels // 2
            x = F.pad(x, (0, 0, 0, 0, low, self.extra_channels - low))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x), inplace=True)


class CifarResNet(nn.Module):
    """ResNet-(6·depth+2). Input (N, 3, S, S), output logits (N, 10)."""

    def __init__(
        self, *, depth: int = 3, width: float = 1.0, init_std: float = 0.05, num_classes: int = NUM_CLASSES
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError("depth (blocks per stage) must be at least 1")
        channels = [scaled(c, width) for c in (16, 32, 64)]
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels[0], 3, padding=1, bias=False), nn.BatchNorm2d(channels[0]), nn.ReLU(inplace=True)
        )
        blocks: list[nn.Module] = []
        c_in = channels[0]
        for stage, c_out in enumerate(channels):
            for index in range(depth):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(BasicBlock(c_in, c_out, stride))
                c_in = c_out
        self.stages = nn.Sequential(*blocks)
        self.head = nn.Linear(c_in, num_classes)
        self.depth = depth
        init_gaussian(self, init_std / math.sqrt(width))

    @property
    def layers(self) -> int:
        """Weighted layers, as the paper counts them: 6n + 2."""
        return 6 * self.depth + 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stages(self.stem(x))
        return self.head(out.mean(dim=(2, 3)))


def build_model(
    name: str, *, width: float, init_std: float, depth: int = 3, dropout: float = 0.5, input_dropout: float = 0.2
) -> nn.Module:
    """``allcnn`` or ``resnet`` with the given knobs."""
    if name == "allcnn":
        return AllCNN(width=width, init_std=init_std, dropout=dropout, input_dropout=input_dropout)
    if name == "resnet":
        return CifarResNet(depth=depth, width=width, init_std=init_std)
    raise ValueError(f"unknown model {name!r} (allcnn or resnet)")
