"""Discriminators: GDD's projected discriminator (paper scale) and a small from-scratch one (mini scale).

Both map images x [B, C, R, R] in [-1, 1] and labels [B, label_dim] (or None) to a list of logit tensors,
one [B, N_k] per backbone, which is what ``paperlib.losses`` consumes.

Projected discriminator (the authors' ``pg_modules/`` and ``feature_networks/``, Zyriix/GDD): frozen pretrained
feature networks (VGG16-BN from torchvision, EfficientNet-lite0 and DeiT-B from timm), frozen random cross-channel
(CCM) and cross-scale (CSM) projections, and trainable multi-scale heads with spectral norm. Pretrained weights come
from files the user names; random backbone weights are allowed (for tests) and announced loudly. Unlike the
reference, the frozen random projections are drawn from a generator seeded identically on every rank, so all GPUs
see the same features. """

from __future__ import annotations

import math
import os
import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _SpectralNorm

from paperlib.digits_backbones import DIGITS_BACKBONES, load_digits_backbone
from paperlib.store.checkpoints import read_class_embedding

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
BACKBONE_SETS = {  # GDD's --backbone choices used by the paper runs
    "vgg16_bn+lite0": ("vgg16_bn", "tf_efficientnet_lite0"),       # CIFAR-10
    "deit+lite0": ("deit_base_distilled_patch16_224", "tf_efficientnet_lite0"),  # AFHQv2, FFHQ, ImageNet
    "digits": DIGITS_BACKBONES,  # mini scale: the same design with two small pretrained digits classifiers
}
CCM_CHANNELS = (64, 128, 256, 512)   # cout 64, expanded x1, x2, x4, x8
CSM_CHANNELS = (64, 64, 128, 256)
ASSUMED_RES = (128, 64, 32, 16)      # the reference builds heads for a 256 input although it feeds 224
HEAD_CHANNELS = {64: 64, 32: 128, 16: 256, 8: 512}


class RandomBackboneWarning(UserWarning):
    """A projected discriminator was built without pretrained backbone weights."""


# ----------------------------------------------------------------------------------------------------------
# Frozen feature networks: 4 stages each, [B, 3, 224, 224] -> 4 maps.

class _Stages(nn.Module):
    in_channels = 3
    native_size = 224

    def __init__(self, stages: list[nn.Module], channels: tuple[int, ...]):
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return out


class _DeiTStages(nn.Module):
    """DeiT-B activations after blocks 2/5/8/11, class and distillation tokens dropped, reassembled to 4 scales
    by randomly initialised, never-trained layers (as the reference)."""

    in_channels = 3
    native_size = 224

    def __init__(self, deit: nn.Module, generator: torch.Generator):
        super().__init__()
        self.deit = deit
        dim = deit.embed_dim
        self.reassemble = nn.ModuleList([
            nn.Sequential(nn.Conv2d(dim, 96, 1), nn.ConvTranspose2d(96, 96, 4, stride=4)),
            nn.Sequential(nn.Conv2d(dim, 192, 1), nn.ConvTranspose2d(192, 192, 2, stride=2)),
            nn.Sequential(nn.Conv2d(dim, 384, 1)),
            nn.Sequential(nn.Conv2d(dim, 768, 1), nn.Conv2d(768, 768, 3, stride=2, padding=1)),
        ])
        _reinit(self.reassemble, generator)
        self.channels = (96, 192, 384, 768)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        d = self.deit
        x = d.norm_pre(d.patch_drop(d._pos_embed(d.patch_embed(x))))
        taps = []
        for i, block in enumerate(d.blocks):
            x = block(x)
            if i in (2, 5, 8, 11):
                taps.append(x)
        out = []
        for tokens, layer in zip(taps, self.reassemble):
            tokens = tokens[:, d.num_prefix_tokens:]
            side = int(math.isqrt(tokens.shape[1]))
            out.append(layer(tokens.transpose(1, 2).reshape(tokens.shape[0], -1, side, side)))
        return out


def _reinit(module: nn.Module, generator: torch.Generator) -> None:
    """Re-draw conv weights (kaiming-uniform, as PyTorch's default) from ``generator``: identical on every rank."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            fan_in = m.weight[0].numel() if isinstance(m, nn.Conv2d) else m.weight.shape[0] * m.weight[0, 0].numel()
            bound = 1 / math.sqrt(fan_in)
            with torch.no_grad():
                m.weight.copy_((torch.rand(m.weight.shape, generator=generator) * 2 - 1) * bound)
                if m.bias is not None:
                    m.bias.copy_((torch.rand(m.bias.shape, generator=generator) * 2 - 1) * bound)


def _load_backbone_weights(model: nn.Module, path: str | None, name: str) -> None:
    if path is None:
        warnings.warn(f"projected discriminator: backbone {name} has RANDOM weights (no weights file given). "
                      f"This is only meaningful for tests; pass the pretrained file for real training.",
                      RandomBackboneWarning, stacklevel=3)
        return
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: backbone weights for {name} not found (give the pretrained file, "
                                f"e.g. the timm/torchvision checkpoint saved on a machine with internet access)")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file
        state = load_file(path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(("head", "classifier", "fc"))]
    if missing:
        raise ValueError(f"{path}: not {name} weights: missing {missing[:5]}")


def build_feature_network(name: str, weights: str | None, generator: torch.Generator) -> nn.Module:
    """One frozen backbone split into 4 stages; ``weights`` is a local file of its pretrained weights (or None; the
    digits backbones default to the files paperlib ships)."""
    if name in DIGITS_BACKBONES:
        return load_digits_backbone(name, weights)
    if name == "vgg16_bn":
        import torchvision
        model = torchvision.models.vgg16_bn(weights=None)
        _load_backbone_weights(model, weights, name)
        f = model.features
        net = _Stages([f[0:13], f[13:23], f[23:33], f[33:43]], (128, 256, 512, 512))
        net.mean, net.std = IMAGENET_MEAN, IMAGENET_STD
    elif name == "tf_efficientnet_lite0":
        import timm
        model = timm.create_model(name, pretrained=False)
        _load_backbone_weights(model, weights, name)
        b = model.blocks
        # timm >= 0.9 folds the stem activation into bn1 (BatchNormAct2d): the reference's act1 is inside it.
        net = _Stages([nn.Sequential(model.conv_stem, model.bn1, b[0], b[1]), b[2], nn.Sequential(b[3], b[4]),
                       nn.Sequential(b[5], b[6])], (24, 40, 112, 320))
        net.mean, net.std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    elif name == "deit_base_distilled_patch16_224":
        import timm
        model = timm.create_model(name, pretrained=False)
        _load_backbone_weights(model, weights, name)
        net = _DeiTStages(model, generator)
        net.mean, net.std = IMAGENET_MEAN, IMAGENET_STD
    else:
        raise ValueError(f"unknown backbone {name!r}; expected vgg16_bn, tf_efficientnet_lite0, "
                         f"deit_base_distilled_patch16_224 or one of {DIGITS_BACKBONES}")
    return net


def _scaled(channels: tuple[int, ...], width: float) -> tuple[int, ...]:
    """Channel counts at ``width`` times the paper's (at least 1 each)."""
    return tuple(max(1, round(c * width)) for c in channels)


class RandomProjection(nn.Module):
    """CCM (1x1 conv per stage) + CSM (top-down fusion with bilinear x2 upsampling and 1x1 convs), all frozen."""

    def __init__(self, in_channels: tuple[int, ...], generator: torch.Generator, width: float = 1.0):
        super().__init__()
        ccm_channels, csm_channels = _scaled(CCM_CHANNELS, width), _scaled(CSM_CHANNELS, width)
        self.ccm = nn.ModuleList([nn.Conv2d(c, o, 1) for c, o in zip(in_channels, ccm_channels)])
        self.csm = nn.ModuleList([nn.Conv2d(c, o, 1) for c, o in zip(ccm_channels, csm_channels)])
        self.out_channels = csm_channels
        _reinit(self, generator)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        mixed = [ccm(f) for ccm, f in zip(self.ccm, feats)]
        up = lambda t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=True)
        out = [None] * 4
        out[3] = self.csm[3](up(mixed[3]))
        for i in (2, 1, 0):
            out[i] = self.csm[i](up(mixed[i] + out[i + 1]))
        return out


def _linear_resize_matrix(n_in: int, n_out: int, device: torch.device) -> torch.Tensor:
    """[n_out, n_in] fp32: 1-D linear interpolation (align_corners=False) as a matrix, the weights bilinear resizing
    applies along each axis (read off by resizing the identity)."""
    eye = torch.eye(n_in, device=device).unsqueeze(0)  # [1, n_in channels, n_in positions]
    return F.interpolate(eye, size=n_out, mode="linear", align_corners=False)[0].T


def resize_bilinear_by_matmul(x: torch.Tensor, size: int) -> torch.Tensor:
    """``F.interpolate(x, (size, size), mode="bilinear", align_corners=False)`` for x [B, C, H, W] as two matrix
    products, W_h @ x @ W_w^T: the same weights, other rounding (the products run in the autocast dtype), and a
    backward that is two more products instead of the interpolation's scattered adds."""
    rows = _linear_resize_matrix(x.shape[-2], size, x.device)
    cols = _linear_resize_matrix(x.shape[-1], size, x.device)
    return rows @ x @ cols.T


class FeatureNetwork(nn.Module):
    """Frozen part of the projected discriminator for one backbone: normalise, resize (to the backbone's own input
    size: 224 for the ImageNet networks, as the reference; 32 for the digits ones), features, projection. Another
    ``resize`` is paperlib's option for small inputs (tests)."""

    def __init__(self, backbone: str, weights: str | None, generator: torch.Generator, resize: int | None = None,
                 width: float = 1.0):
        super().__init__()
        self.backbone_name = backbone
        self.backbone = build_feature_network(backbone, weights, generator)
        self.resize = int(resize or self.backbone.native_size)
        if backbone.startswith("deit") and self.resize != 224:
            raise ValueError(f"backbone {backbone} takes 224x224 inputs only; got resize={resize}")
        self.register_buffer("mean", torch.tensor(self.backbone.mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(self.backbone.std).view(1, -1, 1, 1))
        self.projection = RandomProjection(self.backbone.channels, generator, width)
        self.requires_grad_(False).train()

    def train(self, mode: bool = True):
        return super().train(False)  # always eval: BatchNorm of the backbones uses running statistics

    def forward(self, x: torch.Tensor, resize_by_matmul: bool = False) -> list[torch.Tensor]:
        """Projected feature maps of images x [B, C, H, W] in [-1, 1]; ``resize_by_matmul``: the fast path's resize
        (:func:`resize_bilinear_by_matmul`), whose output is made channels-last for the backbone."""
        if x.shape[1] == 1 and self.backbone.in_channels == 3:
            x = x.expand(-1, 3, -1, -1)
        x = ((x + 1) / 2 - self.mean) / self.std
        if resize_by_matmul:
            x = resize_bilinear_by_matmul(x, self.resize).contiguous(memory_format=torch.channels_last)
        else:
            x = F.interpolate(x, size=(self.resize, self.resize), mode="bilinear", align_corners=False)
        return self.projection(self.backbone(x))

    def head_resolutions(self) -> tuple[int, ...]:
        """The input size each head is built for: the reference's (128, 64, 32, 16) at 224 (it assumes a 256 input),
        else the real sizes of the projected maps."""
        if self.resize == 224:
            return ASSUMED_RES
        with torch.no_grad():
            sizes = tuple(m.shape[-1] for m in self(torch.zeros(1, 1, 8, 8)))
        if min(sizes) < 4:
            raise ValueError(f"resize={self.resize}: the projected maps of {self.backbone_name} are {sizes}; the "
                             f"smallest must be at least 4 for the heads' final 4x4 convolution")
        return sizes


# ----------------------------------------------------------------------------------------------------------
# Trainable heads.

class _ReferenceSpectralNorm(_SpectralNorm):
    """PyTorch's spectral-norm parametrization with the reference's power iteration (``torch.nn.utils.spectral_norm``,
    hook-based): v from u first, then u from v. PyTorch's parametrization updates u first; from the same vectors the
    two give other estimates of the norm until they converge."""

    @torch.no_grad()
    def _power_method(self, weight_mat: torch.Tensor, n_power_iterations: int) -> None:
        for _ in range(n_power_iterations):
            self._v = F.normalize(torch.mv(weight_mat.H, self._u), dim=0, eps=self.eps, out=self._v)
            self._u = F.normalize(torch.mv(weight_mat, self._v), dim=0, eps=self.eps, out=self._u)


def _spectral_norm(layer: nn.Module) -> nn.Module:
    """Spectral norm as the reference's (hook-based) one runs: u and v start as random unit vectors, without the 15
    power iterations that PyTorch's parametrization runs at construction, and each training forward updates v, then
    u (:class:`_ReferenceSpectralNorm`)."""
    parametrize.register_parametrization(layer, "weight", _ReferenceSpectralNorm(layer.weight))
    sn = layer.parametrizations.weight[0]
    with torch.no_grad():
        sn._u.copy_(F.normalize(torch.randn_like(sn._u), dim=0, eps=sn.eps))
        sn._v.copy_(F.normalize(torch.randn_like(sn._v), dim=0, eps=sn.eps))
    return layer


def _maybe_sn(layer: nn.Module, spectral: bool) -> nn.Module:
    return _spectral_norm(layer) if spectral else layer


class GroupBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm in training mode with statistics over fixed groups of ``group`` consecutive images (ghost batch
    normalisation); ``group=0`` takes them over the whole batch, as ``nn.BatchNorm2d``.

    The reference normalises over each GPU's batch (64 images; ImageNet 128): fixing the group to that number makes
    the discriminator independent of how many processes share the global batch. No running statistics are kept:
    the heads are always in training mode (as the reference's), so they would never be used.
    """

    def __init__(self, num_features: int, group: int = 0, eps: float = 1e-5):
        super().__init__(num_features, eps=eps, track_running_stats=False)
        self.group = int(group)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        g = self.group or b
        if b % g:
            raise ValueError(f"BatchNorm groups of {g} images do not divide a batch of {b} on this process; make "
                             f"each process's batch a multiple of bn_group")
        # The same arithmetic for every group count, so that a batch of 2g equals two batches of g exactly.
        xg = x.reshape(b // g, g, c, h, w)
        var, mean = torch.var_mean(xg, dim=(1, 3, 4), correction=0, keepdim=True)
        y = (xg - mean) * torch.rsqrt(var + self.eps)
        return y.reshape(b, c, h, w) * self.weight.view(1, c, 1, 1) + self.bias.view(1, c, 1, 1)


class DownBlock(nn.Sequential):
    def __init__(self, cin: int, cout: int, norm: bool = True, spectral: bool = True, bn_group: int = 0):
        layers = [_maybe_sn(nn.Conv2d(cin, cout, 4, stride=2, padding=1), spectral)]
        if norm:
            layers.append(GroupBatchNorm2d(cout, bn_group))
        layers.append(nn.LeakyReLU(0.2))
        super().__init__(*layers)


class ClassProjection(nn.Module):
    """Conditional logit: sum_c(out_c * e_c) / sqrt(cmap_dim), e = lrelu(FC(embedding[class])) (StyleGAN2 FC)."""

    def __init__(self, num_classes: int, embed_dim: int, cmap_dim: int, embedding: torch.Tensor | None = None,
                 table_rows: int = 0):
        super().__init__()
        # The reference always allocates the 1000-row ImageNet table and indexes it by class (CIFAR uses rows 0..9).
        self.embed = nn.Embedding(max(num_classes, table_rows), embed_dim)
        if embedding is not None:
            with torch.no_grad():
                self.embed.weight.copy_(embedding[:self.embed.num_embeddings])
        self.fc_weight = nn.Parameter(torch.randn(cmap_dim, embed_dim))
        self.fc_bias = nn.Parameter(torch.zeros(cmap_dim))
        self.cmap_dim = cmap_dim

    def forward(self, out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        e = self.embed(labels.argmax(dim=1))
        e = F.linear(e, self.fc_weight / math.sqrt(self.fc_weight.shape[1]), self.fc_bias)
        e = F.leaky_relu(e, 0.2) * math.sqrt(2)
        return (out * e[:, :, None, None]).sum(dim=1, keepdim=True) / math.sqrt(self.cmap_dim)


class MiniDiscriminator(nn.Module):
    """DownBlocks from ``start_res`` (as assumed) down to 8, then a 4x4 conv to one logit map (or cmap_dim maps)."""

    def __init__(self, in_channels: int, start_res: int, num_classes: int = 0, cmap_dim: int = 64,
                 embedding: torch.Tensor | None = None, norm: bool = True, end_res: int = 8, bn_group: int = 0,
                 width: float = 1.0):
        super().__init__()
        blocks, c, res = [], in_channels, start_res
        while res > end_res:
            res //= 2
            cout = _scaled((HEAD_CHANNELS.get(res, 512),), width)[0]
            blocks.append(DownBlock(c, cout, norm, bn_group=bn_group))
            c = cout
        self.blocks = nn.Sequential(*blocks)
        out = cmap_dim if num_classes else 1
        self.final = _spectral_norm(nn.Conv2d(c, out, 4, stride=1, padding=0, bias=False))
        self.cond = ClassProjection(num_classes, 320, cmap_dim, embedding, table_rows=1000) if num_classes else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        out = self.final(self.blocks(x))
        if self.cond is not None:
            out = self.cond(out, labels)
        return out.flatten(1)


class ProjectedDiscriminator(nn.Module):
    """GDD's discriminator: per backbone a frozen FeatureNetwork and 4 trainable MiniDiscriminators.

    backbones: a key of BACKBONE_SETS or a tuple of backbone names. weights: {backbone name: local file}.
    class_embedding (conditional only): the [1000, 320] table the heads start from, as a tensor or the path of the
    authors' ``in_embeddings/tf_efficientnet_lite0.pkl``, or 'random' for N(0, 1) rows; required when label_dim > 0.
    bn_group: images per BatchNorm group in the heads (0 = the whole batch a process passes in).
    resize: side the images are resized to before the backbones (default: each backbone's own, 224 as the
    reference for the ImageNet networks).
    projection_seed: seeds the frozen random layers identically on every rank.
    width: channels of the random projections and the heads as a fraction of the paper's (mini scale: 1/8, for
    8x8 digits on a CPU; the paper's 1.0 otherwise).
    """

    def __init__(self, backbones: str | tuple[str, ...] = "vgg16_bn+lite0", label_dim: int = 0,
                 weights: dict[str, str] | None = None, class_embedding: torch.Tensor | str | None = None,
                 bn_group: int = 0, resize: int | None = None, projection_seed: int = 0, width: float = 1.0):
        super().__init__()
        names = BACKBONE_SETS[backbones] if isinstance(backbones, str) else tuple(backbones)
        generator = torch.Generator().manual_seed(projection_seed)
        weights = weights or {}
        embedding = _class_embedding(class_embedding) if label_dim else None
        if not 0 < width <= 1:
            raise ValueError(f"width: expected a fraction in (0, 1] of the paper's channel counts, got {width}")
        self.features = nn.ModuleList([FeatureNetwork(n, weights.get(n), generator, resize, width) for n in names])
        self.heads = nn.ModuleList([
            nn.ModuleList([MiniDiscriminator(c, r, label_dim, embedding=embedding, bn_group=bn_group, width=width)
                           for c, r in zip(f.projection.out_channels, f.head_resolutions())]) for f in self.features])

    def trainable_parameters(self):
        return self.heads.parameters()

    def feature_maps(self, k: int, x: torch.Tensor, resize_by_matmul: bool = False) -> list[torch.Tensor]:
        """Backbone ``k``'s frozen feature maps of images ``x`` (backbone and random projections), one per head."""
        return self.features[k](x, resize_by_matmul=resize_by_matmul)

    def heads_logits(self, k: int, maps: list[torch.Tensor], labels: torch.Tensor | None) -> torch.Tensor:
        """Backbone ``k``'s logits [B, N_k] from its feature maps."""
        return torch.cat([head(m, labels) for head, m in zip(self.heads[k], maps)], dim=1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None) -> list[torch.Tensor]:
        """Logits per backbone."""
        return [self.heads_logits(k, self.feature_maps(k, x), labels) for k in range(len(self.heads))]


def _class_embedding(source: torch.Tensor | str | None) -> torch.Tensor | None:
    """The conditional heads' initial class embedding: a tensor, a path to the authors' pickle, or 'random' (None)."""
    if isinstance(source, torch.Tensor):
        return source
    if source == "random":
        return None
    if source is None:
        raise ValueError("a conditional projected discriminator starts its heads from the authors' pretrained class "
                         "embedding: pass class_embedding=PATH to in_embeddings/tf_efficientnet_lite0.pkl (Zyriix/GDD "
                         "repository), or class_embedding='random' for N(0, 1) rows")
    return read_class_embedding(source)


class SmallDiscriminator(nn.Module):
    """From-scratch discriminator for the mini scale (no pretrained part): a conv trunk on the image itself with
    patch heads at two scales; conditional through the same class projection as the paper's heads.

    No BatchNorm, so that multi-process training equals single-process training exactly. Without BatchNorm a
    spectrally normalised trunk is too weak to separate real from generated digits (its logits stay near 0), so
    spectral norm is off by default and R1 regularises D, as in StyleGAN2.
    """

    def __init__(self, img_channels: int, label_dim: int = 0, channels: int = 64,
                 cmap_dim: int = 64, spectral: bool = False):
        super().__init__()
        self.stem = nn.Sequential(_maybe_sn(nn.Conv2d(img_channels, channels, 3, padding=1), spectral), nn.LeakyReLU(0.2))
        self.down1 = DownBlock(channels, channels * 2, norm=False, spectral=spectral)        # R/2
        self.down2 = DownBlock(channels * 2, channels * 4, norm=False, spectral=spectral)    # R/4
        out = cmap_dim if label_dim else 1
        self.head1 = _maybe_sn(nn.Conv2d(channels * 2, out, 3, padding=1, bias=False), spectral)
        self.head2 = _maybe_sn(nn.Conv2d(channels * 4, out, 3, padding=1, bias=False), spectral)
        self.cond1 = ClassProjection(label_dim, 64, cmap_dim) if label_dim else None
        self.cond2 = ClassProjection(label_dim, 64, cmap_dim) if label_dim else None

    def trainable_parameters(self):
        return self.parameters()

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None) -> list[torch.Tensor]:
        """Logits (one tensor)."""
        h1 = self.down1(self.stem(x))
        h2 = self.down2(h1)
        out1, out2 = self.head1(h1), self.head2(h2)
        if self.cond1 is not None:
            out1, out2 = self.cond1(out1, labels), self.cond2(out2, labels)
        return [torch.cat([out1.flatten(1), out2.flatten(1)], dim=1)]


def build_discriminator(kind: str, img_channels: int, label_dim: int, **kwargs) -> nn.Module:
    """'small' (from scratch) or 'projected' (the paper's: frozen pretrained backbones, trained heads) discriminator.
    Called as ``D(images [B, img_channels, R, R] in [-1, 1], labels [B, label_dim] or None)``: a list of logit tensors
    [B, K], one per backbone (projected) or one (small)."""
    if kind == "small":
        return SmallDiscriminator(img_channels, label_dim, **kwargs)
    if kind == "projected":
        return ProjectedDiscriminator(label_dim=label_dim, **kwargs)
    raise ValueError(f"unknown discriminator {kind!r}; expected 'small' or 'projected'")
