"""The projected discriminator's frozen feature networks in miniature, for the mini scale: two small digits
classifiers of different architectures, as the paper pairs VGG16-BN with EfficientNet-lite0.

``digits_vgg`` stacks 3x3 convolutions with BatchNorm and max-pooling (VGG's design); ``digits_mbnet`` is built
from inverted-residual depthwise blocks with ReLU6 (EfficientNet-lite's design). Each maps a [B, 1, 32, 32] image
(digits upsampled from 8x8, values in [-1, 1]) to four feature maps at strides 2, 4, 8 and 16, and is pretrained by
paperlib as a digits classifier on the training split only (the held-out split is used only to report accuracy).
They share nothing with the FID feature network (``paperlib.metrics``): the metric is not the discriminator's own
feature space. ``python -m paperlib backbones`` retrains both into ``paperlib/assets/``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from paperlib.assets import ASSETS

INPUT_SIZE = 32  # digits are upsampled 4x for these networks, as the paper upsamples CIFAR-10 7x to 224
DIGITS_BACKBONES = ("digits_vgg", "digits_mbnet")


def asset_path(name: str) -> Path:
    return ASSETS / f"{name}.safetensors"


def _conv_bn(cin: int, cout: int, stride: int = 1, groups: int = 1, act: type = nn.ReLU) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, groups=groups, bias=False), nn.BatchNorm2d(cout), act())


class InvertedResidual(nn.Module):
    """MobileNetV2/EfficientNet-lite block: 1x1 expand, 3x3 depthwise (stride), 1x1 project; residual if shapes match."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int = 4):
        super().__init__()
        hidden = cin * expand
        self.body = nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(),
            _conv_bn(hidden, hidden, stride, groups=hidden, act=nn.ReLU6),
            nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


class DigitsBackbone(nn.Module):
    """Four stages (``stages``) and a classification head used only for pretraining. ``forward`` returns the
    four maps [B, C_k, 32 / 2^(k+1), 32 / 2^(k+1)]; ``classify`` returns logits [B, 10]."""

    in_channels = 1
    native_size = INPUT_SIZE
    mean = std = (0.5,)  # the feature network's normalisation leaves [-1, 1] inputs as they are

    def __init__(self, stages: list[nn.Module], channels: tuple[int, ...]):
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.channels = channels
        self.head = nn.Linear(channels[-1], 10)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return maps

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward(x)[-1].mean(dim=(2, 3)))


def digits_vgg() -> DigitsBackbone:
    """VGG-style: two 3x3 conv-BN-ReLU then 2x2 max-pool per stage; 16/32/64/128 channels."""
    widths, stages, cin = (16, 32, 64, 128), [], 1
    for cout in widths:
        stages.append(nn.Sequential(_conv_bn(cin, cout), _conv_bn(cout, cout), nn.MaxPool2d(2)))
        cin = cout
    return DigitsBackbone(stages, widths)


def digits_mbnet() -> DigitsBackbone:
    """EfficientNet-lite-style: a strided stem, then inverted-residual blocks (ReLU6); 16/24/40/80 channels."""
    stages = [
        nn.Sequential(_conv_bn(1, 16, stride=2, act=nn.ReLU6), InvertedResidual(16, 16, 1)),
        nn.Sequential(InvertedResidual(16, 24, 2), InvertedResidual(24, 24, 1)),
        nn.Sequential(InvertedResidual(24, 40, 2), InvertedResidual(40, 40, 1)),
        nn.Sequential(InvertedResidual(40, 80, 2), InvertedResidual(80, 80, 1)),
    ]
    return DigitsBackbone(stages, (16, 24, 40, 80))


ARCHITECTURES = {"digits_vgg": digits_vgg, "digits_mbnet": digits_mbnet}


def load_digits_backbone(name: str, weights: str | os.PathLike | None = None) -> DigitsBackbone:
    """A pretrained digits backbone (``weights`` defaults to the shipped asset), in eval mode."""
    from safetensors.torch import load_file

    path = Path(weights) if weights else asset_path(name)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights of the digits backbone {name} not found; regenerate them with "
                                f"`python -m paperlib backbones`")
    net = ARCHITECTURES[name]()
    net.load_state_dict(load_file(str(path)))
    return net.eval()


def upsample(images: torch.Tensor) -> torch.Tensor:
    """[B, 1, 8, 8] digits in [-1, 1] -> [B, 1, 32, 32], bilinear, as the projected discriminator resizes them."""
    return F.interpolate(images, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)


def fit_digits_classifier(net: nn.Module, classify, epochs: int, seed: int, desc: str) -> float:
    """Train ``classify`` (digits [B, 1, 8, 8] in [-1, 1] -> logits [B, 10], through ``net``'s parameters) on the
    digits training split: Adam (lr 2e-3), batches of 64, +-1 pixel translations. Returns the held-out (test split)
    accuracy, which is reported, never used to choose anything. Shared by the FID feature net and these backbones."""
    from tqdm import tqdm

    from paperlib.data import digits_dataset

    train_set, test_set = digits_dataset("train"), digits_dataset("test")
    x = torch.tensor(train_set.images, dtype=torch.float32) / 127.5 - 1
    y = torch.as_tensor(train_set.labels)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in tqdm(range(epochs), desc=desc, unit="epoch"):
        net.train()
        for idx in torch.randperm(len(x), generator=g).split(64):
            shift = torch.randint(-1, 2, (2,), generator=g).tolist()
            loss = F.cross_entropy(classify(torch.roll(x[idx], shifts=shift, dims=(2, 3))), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        xt = torch.tensor(test_set.images, dtype=torch.float32) / 127.5 - 1
        return (classify(xt).argmax(1) == torch.as_tensor(test_set.labels)).float().mean().item()


def train_digits_backbone(name: str, epochs: int = 30, seed: int = 0, out: str | os.PathLike | None = None) -> dict:
    """Pretrain one digits backbone as a classifier on the digits training split and save it (the file's metadata
    holds its held-out accuracy). Returns dict(path, test_accuracy)."""
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    net = ARCHITECTURES[name]()
    accuracy = fit_digits_classifier(net, lambda x: net.classify(upsample(x)), epochs, seed, desc=name)
    path = Path(out) if out else asset_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path),
              metadata={"test_accuracy": f"{accuracy:.4f}", "epochs": str(epochs), "seed": str(seed)})
    return dict(path=str(path), test_accuracy=accuracy)
