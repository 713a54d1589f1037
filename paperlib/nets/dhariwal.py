"""DhariwalUNet: the ADM backbone of Dhariwal & Nichol (2021) as configured by EDM.

Constructed from EDM's keyword arguments; state-dict keys equal EDM's. ``forward(x, noise_labels,
class_labels, augment_labels)`` maps x: [B, in_channels, R, R], noise_labels: [B],
class_labels: [B, label_dim] or None to [B, out_channels, R, R].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from paperlib.nets.layers import Conv2d, GroupNorm, Linear, PositionalEmbedding, UNetBlock


class DhariwalUNet(nn.Module):
    """ADM (Dhariwal and Nichol 2021) from EDM's kwargs, as EDM's ImageNet-64 model. ``forward(x [B, in_channels,
    R, R], noise_labels [B], class_labels [B, label_dim] or None)`` returns [B, out_channels, R, R]: the raw network F
    of a denoiser, before preconditioning."""

    def __init__(self,
                 img_resolution: int,                          # image side, pixels
                 in_channels: int,                             # input image channels
                 out_channels: int,                            # output image channels
                 label_dim: int = 0,                           # classes; 0 = unconditional
                 augment_dim: int = 0,                         # augmentation labels; 0 = none
                 model_channels: int = 192,                    # channels at the first resolution
                 channel_mult: list[int] = (1, 2, 3, 4),       # channel multiplier per resolution
                 channel_mult_emb: int = 4,                    # embedding width, in model_channels
                 num_blocks: int = 3,                          # residual blocks per resolution
                 attn_resolutions: list[int] = (32, 16, 8),    # resolutions with self-attention
                 dropout: float = 0.10,                        # dropout in the residual blocks
                 label_dropout: float = 0):                    # probability of dropping the class label (training)
        if img_resolution % (2 ** (len(channel_mult) - 1)):
            raise ValueError(f"DhariwalUNet: img_resolution {img_resolution} is not divisible by "
                             f"2^{len(channel_mult) - 1} for {len(channel_mult)} levels")
        super().__init__()
        self.img_resolution = img_resolution
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.label_dim = label_dim
        self.augment_dim = augment_dim
        self.label_dropout = label_dropout
        emb_channels = model_channels * channel_mult_emb
        init = dict(init_mode="kaiming_uniform", init_weight=math.sqrt(1 / 3), init_bias=math.sqrt(1 / 3))
        init_zero = dict(init_mode="kaiming_uniform", init_weight=0, init_bias=0)
        block_kwargs = dict(emb_channels=emb_channels, channels_per_head=64, dropout=dropout, init=init, init_zero=init_zero)

        self.map_noise = PositionalEmbedding(num_channels=model_channels)
        self.map_augment = Linear(augment_dim, model_channels, bias=False, **init_zero) if augment_dim else None
        self.map_layer0 = Linear(model_channels, emb_channels, **init)
        self.map_layer1 = Linear(emb_channels, emb_channels, **init)
        self.map_label = Linear(label_dim, emb_channels, bias=False, init_mode="kaiming_normal",
                                init_weight=math.sqrt(label_dim)) if label_dim else None

        self.enc = nn.ModuleDict()
        cout = in_channels
        for level, mult in enumerate(channel_mult):
            res = img_resolution >> level
            if level == 0:
                cin, cout = cout, model_channels * mult
                self.enc[f"{res}x{res}_conv"] = Conv2d(cin, cout, kernel=3, **init)
            else:
                self.enc[f"{res}x{res}_down"] = UNetBlock(cout, cout, down=True, **block_kwargs)
            for idx in range(num_blocks):
                cin, cout = cout, model_channels * mult
                self.enc[f"{res}x{res}_block{idx}"] = UNetBlock(cin, cout, attention=res in attn_resolutions, **block_kwargs)
        skips = [block.out_channels for block in self.enc.values()]

        self.dec = nn.ModuleDict()
        for level, mult in reversed(list(enumerate(channel_mult))):
            res = img_resolution >> level
            if level == len(channel_mult) - 1:
                self.dec[f"{res}x{res}_in0"] = UNetBlock(cout, cout, attention=True, **block_kwargs)
                self.dec[f"{res}x{res}_in1"] = UNetBlock(cout, cout, **block_kwargs)
            else:
                self.dec[f"{res}x{res}_up"] = UNetBlock(cout, cout, up=True, **block_kwargs)
            for idx in range(num_blocks + 1):
                cin, cout = cout + skips.pop(), model_channels * mult
                self.dec[f"{res}x{res}_block{idx}"] = UNetBlock(cin, cout, attention=res in attn_resolutions, **block_kwargs)
        self.out_norm = GroupNorm(cout)
        self.out_conv = Conv2d(cout, out_channels, kernel=3, **init_zero)

    def forward(self, x: torch.Tensor, noise_labels: torch.Tensor, class_labels: torch.Tensor | None,
                augment_labels: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.map_noise(noise_labels)
        if self.map_augment is not None and augment_labels is not None:
            emb = emb + self.map_augment(augment_labels)
        emb = F.silu(self.map_layer0(emb))
        emb = self.map_layer1(emb)
        if self.map_label is not None:
            labels = class_labels
            if self.training and self.label_dropout:
                keep = torch.rand([x.shape[0], 1], device=x.device) >= self.label_dropout
                labels = labels * keep.to(labels.dtype)
            emb = emb + self.map_label(labels)
        emb = F.silu(emb)

        skips = []
        for block in self.enc.values():
            x = block(x, emb) if isinstance(block, UNetBlock) else block(x)
            skips.append(x)
        for block in self.dec.values():
            if x.shape[1] != block.in_channels:
                x = torch.cat([x, skips.pop()], dim=1)
            x = block(x, emb)
        return self.out_conv(F.silu(self.out_norm(x)))
