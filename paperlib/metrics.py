"""Sample-quality metrics with clean-fid as the engine: FID, KID, precision/recall, the memorisation ratio.

A feature extractor is any callable mapping images [B, C, H, W] as floats in [0, 255] to features [B, D] (clean-fid's
convention). Two are provided:
- mini scale: :class:`DigitsFeatureNet`, a small CNN classifier of the digits training split that paperlib trains
  and ships (``paperlib/assets/digits_featnet.safetensors``; ``python -m paperlib featnet`` regenerates it);
- paper scale: the TF-ported Inception-v3 ``inception-2015-12-05.pt`` that clean-fid's ``legacy_tensorflow`` mode
  uses (resize inside the network, 2048-d pool features), from a path the user gives.
Statistics are float64 means and unbiased covariances; FID is clean-fid's ``frechet_distance``.
"""

from __future__ import annotations

import hashlib
import math
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from torch import nn
from tqdm import tqdm

from paperlib.assets import ASSETS
from paperlib.store.files import file_sha256

DIGITS_FEATNET = ASSETS / "digits_featnet.safetensors"
INCEPTION_FILENAME = "inception-2015-12-05.pt"


class MetricError(ValueError):
    """Bad input to a metric (feature sizes, sample counts, missing weights); the message says what was expected."""


# ----------------------------------------------------------------------------------------------------------
# Feature extractors.

class DigitsFeatureNet(nn.Module):
    """Small CNN for 8x8 digits: [B, 1, 8, 8] in [-1, 1] -> logits [B, 10]; ``features`` gives the 64-d
    penultimate (pre-activation) layer used for FID. Larger inputs are area-downsampled to 8x8 first."""

    feature_dim = 64

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.fc1 = nn.Linear(128 * 2 * 2, self.feature_dim)
        self.fc2 = nn.Linear(self.feature_dim, 10)
        self.dropout = nn.Dropout(0.3)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != 8:
            x = F.interpolate(x, size=(8, 8), mode="area")
        return self.fc1(self.conv(x).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout(F.relu(self.features(x))))


def train_digits_featnet(epochs: int = 40, seed: int = 0, out: str | os.PathLike = DIGITS_FEATNET) -> dict:
    """Train the digits feature net on the digits training split; returns held-out (test split) accuracy."""
    from safetensors.torch import save_file

    from paperlib.digits_backbones import fit_digits_classifier

    torch.manual_seed(seed)
    net = DigitsFeatureNet()
    accuracy = fit_digits_classifier(net, net, epochs, seed, desc="digits feature net")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(out),
              metadata={"test_accuracy": f"{accuracy:.4f}", "epochs": str(epochs), "seed": str(seed)})
    return dict(test_accuracy=accuracy, path=str(out))


class DigitsExtractor:
    """clean-fid-style extractor around the shipped :class:`DigitsFeatureNet`: [B, C, H, W] in [0, 255] -> [B, 64]."""

    def __init__(self, path: str | os.PathLike = DIGITS_FEATNET, device: torch.device | str = "cpu"):
        from safetensors.torch import load_file

        if not Path(path).is_file():
            raise MetricError(f"{path}: digits feature net not found; regenerate it with `python -m paperlib featnet`")
        self.net = DigitsFeatureNet()
        try:
            self.net.load_state_dict(load_file(str(path)))
        except (SafetensorError, RuntimeError, OSError) as exc:  # empty, not safetensors, or another network's weights
            why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise MetricError(f"{path}: not the weights of paperlib's digits feature net ({why}); regenerate them with "
                              f"`python -m paperlib featnet`") from None
        self.net.eval().to(device)
        self.device = device
        self.name = "digits-featnet"
        self.sha256 = file_sha256(path)  # the feature network's identity, in every record it scores

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, torch.float32)
        if x.shape[1] == 3:
            x = x.mean(dim=1, keepdim=True)  # clean-fid hands over RGB; digits are grey
        return self.net.features(x / 127.5 - 1)


class InceptionExtractor:
    """The paper's metric network through clean-fid: TF-ported Inception-v3 in ``legacy_tensorflow`` mode
    (uint8-valued images at native resolution, resized inside the network), 2048-d pool features."""

    def __init__(self, path: str | os.PathLike, device: torch.device | str = "cpu"):
        from cleanfid.inception_torchscript import InceptionV3W

        path = Path(path)
        folder = path if path.is_dir() else path.parent
        if path.is_file() and path.name != INCEPTION_FILENAME:
            raise MetricError(f"{path}: clean-fid loads the Inception weights by the name {INCEPTION_FILENAME}; rename the file")
        if not (folder / INCEPTION_FILENAME).is_file():
            raise MetricError(f"{folder / INCEPTION_FILENAME}: Inception weights not found. Download "
                              f"{INCEPTION_FILENAME} (StyleGAN2-ADA's metric network) on a machine with internet access "
                              f"and pass its path; clean-fid itself looks for it in /tmp")
        try:
            self.model = InceptionV3W(str(folder), download=False, resize_inside=True).to(device).eval()
        except (RuntimeError, ValueError, OSError) as exc:  # not a TorchScript archive, or a truncated one
            why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise MetricError(f"{folder / INCEPTION_FILENAME}: not a readable Inception TorchScript file ({why})") from None
        self.device = device
        self.name = "inception-legacy_tensorflow"

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, torch.float32)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.model(x)


def build_extractor(kind: str, path: str | None = None, device: torch.device | str = "cpu") -> Callable:
    """'digits' (shipped feature net, or ``path``) or 'inception' (``path`` to inception-2015-12-05.pt)."""
    if kind == "digits":
        return DigitsExtractor(path or DIGITS_FEATNET, device)
    if kind == "inception":
        if not path:
            raise MetricError(f"the Inception extractor needs the path of {INCEPTION_FILENAME}")
        return InceptionExtractor(path, device)
    raise MetricError(f"unknown feature extractor {kind!r}; expected 'digits' or 'inception'")


# ----------------------------------------------------------------------------------------------------------
# Statistics and distances.

@torch.no_grad()
def extract_features(extractor: Callable, images: np.ndarray | torch.Tensor, batch: int = 500) -> np.ndarray:
    """uint8 images [N, C, H, W] (or [N, H, W, C] numpy with C in 1, 3) -> float64 features [N, D]."""
    images = torch.as_tensor(np.asarray(images))
    if images.ndim == 4 and images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
        images = images.permute(0, 3, 1, 2)
    out = [extractor(images[i:i + batch].to(torch.float32)).double().cpu() for i in range(0, len(images), batch)]
    return torch.cat(out).numpy()


@dataclass
class Stats:
    """Gaussian statistics of features: ``mu`` [D], ``sigma`` [D, D] (float64), from ``count`` samples."""

    mu: np.ndarray
    sigma: np.ndarray
    count: int = 0

    def save(self, path: str | os.PathLike) -> None:
        np.savez(path, mu=self.mu, sigma=self.sigma, count=self.count)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Stats":
        """Read an .npz of ``mu`` [D], ``sigma`` [D, D] and optionally ``count`` (a whole number), as EDM's fid-refs
        and :meth:`save` write them. Each array's size is read from its header and checked before it is inflated
        or allocated; pickled objects and non-finite statistics are refused. Raises MetricError naming the file."""
        if not Path(path).is_file():
            raise MetricError(f"{path}: reference statistics not found (expected an .npz with mu and sigma)")
        try:
            arrays = read_npz(path, required=("mu", "sigma"), optional=("count",))
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            if isinstance(exc, MetricError):
                raise
            raise MetricError(f"{path}: not readable reference statistics (.npz of plain arrays mu, sigma): {exc}") from None
        mu, sigma, count = arrays["mu"], arrays["sigma"], arrays.get("count", np.array(0))
        if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
            raise MetricError(f"{path}: mu has shape {list(mu.shape)} and sigma {list(sigma.shape)}; "
                              f"expected [D] and [D, D]")
        if count.shape != () or count.dtype.kind not in "iu":
            raise MetricError(f"{path}: count is a {count.dtype} array of shape {list(count.shape)}; expected one "
                              f"whole number")
        if mu.dtype.kind not in "iuf" or sigma.dtype.kind not in "iuf":
            raise MetricError(f"{path}: mu and sigma are {mu.dtype} and {sigma.dtype}; expected real numbers")
        if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
            raise MetricError(f"{path}: mu or sigma holds NaN or infinite values; these statistics cannot give a FID")
        return cls(mu.astype(np.float64), sigma.astype(np.float64), int(count))


MAX_NPZ_ARRAY_BYTES = 2 ** 30  # one statistics array: sigma of Inception's 2048-d features is 32 MiB


NPY_MAX_HEADER = 2 ** 16  # bytes of an .npy header paperlib reads (numpy writes a few hundred)


def read_npz(path: str | os.PathLike, required: Sequence[str], optional: Sequence[str] = (),
             max_bytes: int | None = None) -> dict[str, np.ndarray]:
    """The named arrays of an .npz, each refused (MetricError naming the file) when its member or its header claims
    more than ``max_bytes`` (default :data:`MAX_NPZ_ARRAY_BYTES`), when it holds Python objects, or when it is
    missing (``required``); nothing is inflated or allocated before those checks."""
    max_bytes = MAX_NPZ_ARRAY_BYTES if max_bytes is None else max_bytes
    out = {}
    with zipfile.ZipFile(path) as zf:
        members = {name[:-4]: name for name in zf.namelist() if name.endswith(".npy")}
        missing = [name for name in required if name not in members]
        if missing:
            raise MetricError(f"{path}: an .npz with arrays {' and '.join(required)} was expected, found {sorted(members)}")
        for name in [*required, *(n for n in optional if n in members)]:
            info = zf.getinfo(members[name])
            if info.file_size - NPY_MAX_HEADER > max_bytes:  # what the member inflates to, from the zip's directory
                raise MetricError(f"{path}: {name} inflates to {info.file_size:,} bytes, above the limit of "
                                  f"{max_bytes:,} for one array of statistics; refused before reading it")
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version not in ((1, 0), (2, 0)):
                    raise MetricError(f"{path}: {name} is in .npy format version {version}; expected 1.0 or 2.0")
                size_field = f.read(2 if version == (1, 0) else 4)  # numpy reads as long a header as this claims
                header_length = int.from_bytes(size_field, "little") if len(size_field) in (2, 4) else -1
            if not 0 < header_length <= NPY_MAX_HEADER:
                raise MetricError(f"{path}: {name}'s .npy header claims {header_length:,} bytes; at most "
                                  f"{NPY_MAX_HEADER:,} are read")
            with zf.open(info) as f:
                reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                np.lib.format.read_magic(f)
                shape, _, dtype = reader(f)
                stored = info.file_size - f.tell()  # the member's bytes after the header
            if dtype.hasobject:
                raise MetricError(f"{path}: {name} holds Python objects (a pickle); plain number arrays are expected")
            claimed = math.prod(shape) * dtype.itemsize
            if claimed > max_bytes:
                raise MetricError(f"{path}: {name} claims {claimed:,} bytes, above the limit of {max_bytes:,} for one "
                                  f"array of statistics; refused before reading it")
            if stored < claimed:
                raise MetricError(f"{path}: {name} claims {claimed:,} bytes but its member holds {stored:,}")
            with zf.open(info) as f:
                out[name] = np.lib.format.read_array(f, allow_pickle=False)
    return out


def feature_stats(features: np.ndarray) -> Stats:
    """Mean and unbiased covariance of features [N, D]; needs N > D for a usable covariance."""
    n, d = features.shape
    if n <= d:
        raise MetricError(f"{n} samples cannot give a full-rank covariance of {d}-d features; use more than {d} samples")
    return Stats(features.mean(axis=0), np.cov(features, rowvar=False), n)


def fid_from_stats(a: Stats, b: Stats) -> float:
    """Fréchet distance ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)), computed as clean-fid's
    ``frechet_distance`` (the same steps and fallbacks), whose ``sqrtm(..., disp=False)`` call fails on SciPy >= 1.18."""
    from scipy import linalg

    if a.mu.shape != b.mu.shape or a.sigma.shape != b.sigma.shape:
        raise MetricError(f"feature sizes differ: {a.mu.shape[0]}-d statistics against {b.mu.shape[0]}-d reference "
                          f"statistics (were they computed with another feature extractor?)")
    mu1, mu2 = np.atleast_1d(a.mu), np.atleast_1d(b.mu)
    s1, s2 = np.atleast_2d(a.sigma), np.atleast_2d(b.sigma)
    diff = mu1 - mu2
    covmean = linalg.sqrtm(s1.dot(s2))
    if not np.isfinite(covmean).all():  # near-singular product: offset the diagonals, as clean-fid does
        offset = np.eye(s1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((s1 + offset).dot(s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise MetricError(f"FID: imaginary component {np.max(np.abs(covmean.imag))} in the covariance square root")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def kid(features_a: np.ndarray, features_b: np.ndarray, num_subsets: int = 100, max_subset_size: int = 1000) -> float:
    """Kernel Inception Distance (cubic polynomial kernel, unbiased MMD^2 over subsets) via clean-fid."""
    from cleanfid.fid import kernel_distance

    if features_a.shape[1] != features_b.shape[1]:
        raise MetricError(f"feature sizes differ: {features_a.shape[1]} vs {features_b.shape[1]}")
    np.random.seed(0)  # clean-fid draws its subsets from numpy's global generator
    return float(kernel_distance(features_a, features_b, num_subsets=num_subsets, max_subset_size=max_subset_size))


# Distances held at once by the nearest-neighbour metrics: 2**24 (128 MiB of float64 features' distances, and a
# 16 MiB mask), whatever the number of images, so that memory is linear in it (50,000 reference images: 335 rows a block).
MAX_DISTANCES = 2 ** 24


def _distance_blocks(queries: np.ndarray, bank: np.ndarray, max_distances: int = MAX_DISTANCES):
    """Euclidean distances from ``queries`` [N, D] to ``bank`` [M, D], a block of query rows at a time: yields
    (first row, distances [rows, M]) with rows * M at most ``max_distances`` (one row at least)."""
    rows = max(1, max_distances // max(len(bank), 1))
    bank_t = torch.as_tensor(bank)
    for start in range(0, len(queries), rows):
        yield start, torch.cdist(torch.as_tensor(queries[start:start + rows]), bank_t).numpy()


def _kth_neighbour_radii(x: np.ndarray, k: int, max_distances: int = MAX_DISTANCES) -> np.ndarray:
    """Distance from each row of ``x`` [N, D] to its k-th nearest other row (column 0 of a sorted row is itself)."""
    radii = np.empty(len(x))
    for start, d in _distance_blocks(x, x, max_distances):
        radii[start:start + len(d)] = np.partition(d, k, axis=1)[:, k]
    return radii


def _share_inside(queries: np.ndarray, bank: np.ndarray, radii: np.ndarray, max_distances: int) -> float:
    """The share of ``queries`` within ``radii`` [M] of some row of ``bank`` [M, D]."""
    inside = np.zeros(len(queries), dtype=bool)
    for start, d in _distance_blocks(queries, bank, max_distances):
        inside[start:start + len(d)] = (d <= radii[None, :]).any(axis=1)
    return float(inside.mean())


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3,
                     max_distances: int = MAX_DISTANCES) -> tuple[float, float]:
    """k-NN manifold precision and recall (Kynkäänniemi et al. 2019) of features real [N, D] and fake [M, D]: the
    fraction of fake samples inside the real manifold (union of balls reaching each real sample's k-th neighbour),
    and of real samples inside the fake one. Distances are computed in blocks of at most ``max_distances``."""
    real_r, fake_r = _kth_neighbour_radii(real, k, max_distances), _kth_neighbour_radii(fake, k, max_distances)
    return (_share_inside(fake, real, real_r, max_distances), _share_inside(real, fake, fake_r, max_distances))


def nearest_distances(queries: np.ndarray, bank: np.ndarray,
                      max_distances: int = MAX_DISTANCES) -> tuple[np.ndarray, np.ndarray]:
    """Distance from each query [N, D] to its nearest bank entry [M, D], and that entry's index: ([N], [N]); in
    blocks of at most ``max_distances`` distances."""
    distance, index = np.empty(len(queries), dtype=np.float64), np.empty(len(queries), dtype=np.int64)
    for start, d in _distance_blocks(queries, bank, max_distances):
        distance[start:start + len(d)], index[start:start + len(d)] = d.min(axis=1), d.argmin(axis=1)
    return distance, index


def near_copy_share(generated: np.ndarray, train: np.ndarray, held_out: np.ndarray, percentile: float = 5.0) -> float:
    """The share of generated samples nearer to their nearest training sample than ``percentile`` % of held-out
    real samples are to theirs: about ``percentile`` / 100 for a model that generalises like fresh data, near 1 for
    one that copies; unlike a mean distance, it sees a minority of copies."""
    threshold = np.percentile(nearest_distances(held_out, train)[0], percentile)
    return float((nearest_distances(generated, train)[0] < threshold).mean())


def memorisation_ratio(generated: np.ndarray, train: np.ndarray, held_out: np.ndarray) -> float:
    """Mean distance from generated samples to their nearest training sample, divided by the same for held-out
    real samples. About 1 for a model that generalises like fresh data; well below 1 means copying."""
    return float(nearest_distances(generated, train)[0].mean() / nearest_distances(held_out, train)[0].mean())


# ----------------------------------------------------------------------------------------------------------
# Generating and evaluating.

def generate_uint8(net, seeds: Sequence[int], num_steps: int | None = None, batch: int = 250,
                   device: torch.device | str = "cpu", progress: bool = True, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """Sample one image per seed (see :func:`paperlib.diffusion.generate`): uint8 [N, C, H, W] and labels [N]."""
    from paperlib.diffusion import generate

    images, labels = [], []
    seeds = list(seeds)
    for start in tqdm(range(0, len(seeds), batch), desc="generate", unit="batch", disable=not progress):
        out = generate(net, seeds[start:start + batch], num_steps=num_steps, device=device, **kwargs)
        images.append((out.images * 127.5 + 128).clip(0, 255).to(torch.uint8).cpu().numpy())
        labels.append(out.labels.numpy())
    return np.concatenate(images), np.concatenate(labels)


@dataclass
class Reference:
    """Real-data features for one evaluation: the training split (and optionally a held-out split)."""

    train: np.ndarray
    held_out: np.ndarray | None = None

    @property
    def train_stats(self) -> Stats:
        return feature_stats(self.train)

    @property
    def held_out_stats(self) -> Stats | None:
        return feature_stats(self.held_out) if self.held_out is not None else None


def digits_reference(extractor: Callable, resolution: int = 8) -> Reference:
    """Features of the digits training split and of the held-out test split."""
    from paperlib.data import digits_dataset

    return Reference(extract_features(extractor, digits_dataset("train", resolution).images),
                     extract_features(extractor, digits_dataset("test", resolution).images))


def dataset_reference(spec: str, extractor: Callable) -> Reference:
    """Reference features of a dataset: 'digits-R[:train]' gives the training split plus the held-out test split;
    any other spec (EDM folder/zip) gives all its images."""
    from paperlib.data import open_dataset

    name, _, split = str(spec).partition(":")
    if name.startswith("digits") and split in ("", "train"):
        return digits_reference(extractor, int(name.split("-")[1]) if "-" in name else 8)
    return Reference(extract_features(extractor, open_dataset(spec).all_images()))


def evaluate_features(features: np.ndarray, ref: Reference, k: int = 3) -> dict:
    """Every metric of generated features against a reference: FID (vs training and held-out statistics), KID,
    precision, recall, the memorisation ratio and the near-copy share (when a held-out split is given)."""
    stats = feature_stats(features)
    out = dict(fid=fid_from_stats(stats, ref.train_stats), kid=kid(features, ref.train), num=len(features))
    out["precision"], out["recall"] = precision_recall(ref.train, features, k)
    if ref.held_out is not None:
        out["fid_test"] = fid_from_stats(stats, ref.held_out_stats)
        out["memorisation"] = memorisation_ratio(features, ref.train, ref.held_out)
        out["copy_share"] = near_copy_share(features, ref.train, ref.held_out)
    return out


def real_data_floor(ref: Reference, seed: int = 0) -> dict:
    """How low the metrics honestly go: the held-out split against the training statistics, and a same-size
    subsample (without replacement) of the training split against them (its memorisation ratio is 0: it is copies)."""
    if ref.held_out is None:
        raise MetricError("the real-data floor needs a held-out split")
    rng = np.random.default_rng(seed)
    resample = ref.train[rng.choice(len(ref.train), size=len(ref.held_out), replace=False)]
    held = evaluate_features(ref.held_out, Reference(ref.train, None))
    held["memorisation"] = 1.0
    same = evaluate_features(resample, ref)
    return dict(held_out=held, train_resample=same)


def evaluate_network(net, extractor: Callable, ref: Reference, num: int = 1000, num_steps: int | None = None,
                     seed_offset: int = 0, device: torch.device | str = "cpu", progress: bool = True) -> dict:
    """Generate ``num`` samples (seeds seed_offset ...) and evaluate them; adds ``nfe``."""
    from paperlib.diffusion import nfe_of
    from paperlib.precond import GDDPrecond

    images, _ = generate_uint8(net, range(seed_offset, seed_offset + num), num_steps=num_steps, device=device,
                               progress=progress)
    out = evaluate_features(extract_features(extractor, images), ref)
    out["nfe"] = 1 if isinstance(net, GDDPrecond) else nfe_of(18 if num_steps is None else num_steps)
    out["samples_sha256"] = samples_digest(images)
    if getattr(extractor, "sha256", None):
        out["features_sha256"] = extractor.sha256
    return out


def samples_digest(images: np.ndarray) -> str:
    """Hex SHA-256 of uint8 samples [N, C, H, W] (their shape, then their bytes in C order): what an evaluation
    scored, so that a rerun can show it scored the same images."""
    if images.dtype != np.uint8 or images.ndim != 4:
        raise MetricError(f"samples to digest must be uint8 [N, C, H, W], got {images.dtype} {list(images.shape)}")
    digest = hashlib.sha256(repr(tuple(images.shape)).encode())
    digest.update(np.ascontiguousarray(images).tobytes())
    return digest.hexdigest()
