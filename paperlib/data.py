"""Image datasets: EDM's dataset format (zip or folder of PNGs with ``dataset.json`` labels), a converter from
the CIFAR-10 python archive to that format, and scikit-learn's digits at 8x8 or 16x16 with a fixed split.

Every dataset yields ``(image, label)`` with image [C, R, R] float32 in [-1, 1] and label [label_dim] float32
one-hot ([0] for unlabelled data), and exposes ``resolution``, ``num_channels``, ``label_dim``.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from paperlib.store.files import atomic_write_bytes
from paperlib.store.safe_pickle import RestrictedUnpickler, UnsafePickleError

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct as np_reconstruct
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct as np_reconstruct

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".ppm", ".tif", ".tiff"}
IMAGE_MODES = {"L": 1, "RGB": 3}  # 8-bit grey and RGB, as EDM's dataset tool writes them: channels per mode
MAX_IMAGE_PIXELS = 4096 * 4096    # per image, checked from the header before decoding (PIL's own limit is 89M)
MAX_MEMBER_BYTES = 256 * 2 ** 20  # per file read from a dataset zip, checked from its directory before inflating
DIGITS_TEST_SIZE = 360   # 1,797 digits -> 1,437 train / 360 test (20%, stratified by class)
DIGITS_SPLIT_SEED = 0



MAX_CLASSES = 100_000  # a label at or above this is refused: each class is a one-hot column of every batch


class DatasetError(ValueError):
    """A dataset is missing, malformed or does not match what it is used with; the message names the file."""


def uint8_to_float(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 [..., C, H, W] in [0, 255] -> float32 in [-1, 1] (EDM's scaling x / 127.5 - 1)."""
    return torch.tensor(images, dtype=torch.float32) / 127.5 - 1


class ImageDataset(torch.utils.data.Dataset):
    """Base: uint8 images [N, C, R, R] (in memory or decoded on demand) and integer labels [N] (or none)."""

    resolution: int
    num_channels: int
    label_dim: int
    labels: np.ndarray | None

    def raw_image(self, index: int) -> np.ndarray:
        """uint8 [C, R, R]."""
        raise NotImplementedError

    def all_images(self) -> np.ndarray:
        """Every image as uint8 [N, C, R, R]."""
        return np.stack([self.raw_image(i) for i in range(len(self))])

    def onehot(self, index: int) -> torch.Tensor:
        if self.labels is None:
            return torch.zeros(0)
        out = torch.zeros(self.label_dim)
        out[int(self.labels[index])] = 1
        return out

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return uint8_to_float(self.raw_image(index)), self.onehot(index)

    def check_compatible(self, net) -> None:
        """Raise DatasetError unless images and labels fit ``net`` (resolution, channels, classes)."""
        name = getattr(self, "name", type(self).__name__)
        if (self.resolution, self.num_channels) != (net.img_resolution, net.img_channels):
            raise DatasetError(f"{name}: images are {self.num_channels}x{self.resolution}x{self.resolution}; the network "
                               f"expects {net.img_channels}x{net.img_resolution}x{net.img_resolution}")
        if net.label_dim and self.labels is None:
            raise DatasetError(f"{name}: the network is class-conditional ({net.label_dim} classes) but the dataset has "
                               f"no labels (dataset.json with 'labels')")
        if net.label_dim and self.label_dim > net.label_dim:
            raise DatasetError(f"{name}: dataset labels reach {self.label_dim - 1}, outside the network's classes "
                               f"0..{net.label_dim - 1}")


class InMemoryDataset(ImageDataset):
    """Images held as a uint8 array [N, C, R, R] with optional int labels [N]."""

    def __init__(self, images: np.ndarray, labels: np.ndarray | None, name: str, label_dim: int | None = None):
        self.images = np.ascontiguousarray(images, dtype=np.uint8)
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.name = name
        self.num_channels, self.resolution = self.images.shape[1], self.images.shape[2]
        self.label_dim = 0 if self.labels is None else int(label_dim or self.labels.max() + 1)

    def __len__(self) -> int:
        return len(self.images)

    def raw_image(self, index: int) -> np.ndarray:
        return self.images[index]

    def all_images(self) -> np.ndarray:
        return self.images


class ImageFolderDataset(ImageDataset):
    """EDM's dataset format: a folder or ``.zip`` of images (sorted by path) and optional ``dataset.json``
    ``{"labels": [["00000/img00000000.png", 6], ...]}``. Images are decoded on demand.

    ``resolution``/``channels``, if given, are checked against the first image. Any file that is neither an
    image nor ``dataset.json`` is an error (hidden files excepted), as is an image that does not decode.
    """

    def __init__(self, path: str | os.PathLike, resolution: int | None = None, channels: int | None = None,
                 use_labels: bool = True):
        self.path = Path(path)
        self.name = str(self.path)
        if not self.path.exists():
            raise DatasetError(f"{self.path}: dataset not found (expected a folder or .zip of PNG images in EDM's format)")
        self._zip = None
        if self.path.is_dir():
            files = [p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()]
        elif zipfile.is_zipfile(self.path):
            files = [n for n in self._open_zip().namelist() if not n.endswith("/")]
        else:
            raise DatasetError(f"{self.path}: not a folder or a zip file (expected EDM's dataset format)")
        visible = [f for f in files if not any(part.startswith(".") for part in f.split("/"))]
        others = [f for f in visible if Path(f).suffix.lower() not in IMAGE_EXTENSIONS and f != "dataset.json"]
        if others:
            raise DatasetError(f"{self.path}: {others[0]!r} is not an image; a dataset holds only images "
                               f"({', '.join(sorted(IMAGE_EXTENSIONS))}) and dataset.json")
        self.files = sorted(f for f in visible if Path(f).suffix.lower() in IMAGE_EXTENSIONS)
        if not self.files:
            raise DatasetError(f"{self.path}: no images found")
        first = self.raw_image(0)
        self.num_channels, self.resolution = first.shape[0], first.shape[1]
        if first.shape[1] != first.shape[2]:
            raise DatasetError(f"{self.path}/{self.files[0]}: image is {first.shape[2]}x{first.shape[1]}; expected square images")
        if resolution is not None and resolution != self.resolution:
            raise DatasetError(f"{self.path}: images are {self.resolution}x{self.resolution}; expected {resolution}x{resolution}")
        if channels is not None and channels != self.num_channels:
            raise DatasetError(f"{self.path}: images have {self.num_channels} channels; expected {channels}")
        self.labels = self._read_labels() if use_labels else None
        self.label_dim = 0 if self.labels is None else int(self.labels.max() + 1)

    def _open_zip(self) -> zipfile.ZipFile:
        if self._zip is None:
            self._zip = zipfile.ZipFile(self.path)
        return self._zip

    def _read_bytes(self, fname: str) -> bytes:
        """A member's bytes; one that claims more than :data:`MAX_MEMBER_BYTES` is refused before it is read."""
        if self.path.is_dir():
            size = (self.path / fname).stat().st_size
        else:
            size = self._open_zip().getinfo(fname).file_size
        if size > MAX_MEMBER_BYTES:
            raise DatasetError(f"{self.path}/{fname}: {size:,} bytes (uncompressed), above the limit of "
                               f"{MAX_MEMBER_BYTES:,} for one file of a dataset; refused before reading it")
        if self.path.is_dir():
            return (self.path / fname).read_bytes()
        try:
            return self._open_zip().read(fname)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # e.g. a member inflating past its claimed size
            raise DatasetError(f"{self.path}/{fname}: not readable from the zip: {exc}") from None

    def __getstate__(self) -> dict:  # zip handles do not survive pickling into DataLoader workers
        return dict(self.__dict__, _zip=None)

    def _read_labels(self) -> np.ndarray | None:
        has_json = (self.path / "dataset.json").is_file() if self.path.is_dir() else "dataset.json" in self._open_zip().namelist()
        if not has_json:
            return None
        try:
            meta = json.loads(self._read_bytes("dataset.json"))
        except (ValueError, RecursionError, UnicodeDecodeError) as exc:  # ValueError: bad JSON, or an int too long
            raise DatasetError(f"{self.path}/dataset.json: not valid JSON: {str(exc)[:200]}") from None
        entries = meta.get("labels") if isinstance(meta, dict) else None
        if entries is None:
            return None
        if not isinstance(entries, list):
            raise DatasetError(f"{self.path}/dataset.json: 'labels' is a {type(entries).__name__}; expected a list of "
                               f"[file name, integer class] or null")
        table = {}
        for entry in entries:
            if not (isinstance(entry, (list, tuple)) and len(entry) == 2 and isinstance(entry[1], int)
                    and not isinstance(entry[1], bool)):
                raise DatasetError(f"{self.path}/dataset.json: label entry {str(entry)[:200]} is not [file name, "
                                   f"integer class]")
            if not 0 <= entry[1] < MAX_CLASSES:
                raise DatasetError(f"{self.path}/dataset.json: label {str(entry[1])[:40]} of {str(entry[0])[:200]!r} is "
                                   f"outside the classes 0..{MAX_CLASSES - 1}")
            table[str(entry[0]).replace("\\", "/")] = entry[1]
        missing = [f for f in self.files if f not in table]
        if missing:
            raise DatasetError(f"{self.path}/dataset.json: no label for {missing[0]!r}")
        return np.array([table[f] for f in self.files], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.files)

    def raw_image(self, index: int) -> np.ndarray:
        fname = self.files[index]
        try:
            with Image.open(io.BytesIO(self._read_bytes(fname))) as img:
                # Size and mode from the header, before decoding: a small file can claim a huge image, and a
                # 16-bit, 1-bit or palette image would give wrong pixel values without a word.
                if img.width * img.height > MAX_IMAGE_PIXELS:
                    raise DatasetError(f"{self.path}/{fname}: refused, the image is {img.width}x{img.height} pixels, "
                                       f"above the limit of {MAX_IMAGE_PIXELS:,} pixels; decoded only below it")
                if img.mode not in IMAGE_MODES:
                    raise DatasetError(f"{self.path}/{fname}: image mode {img.mode!r} is not supported; paperlib reads "
                                       f"8-bit grey ('L') and RGB images, as EDM's dataset tool writes them (convert "
                                       f"with PIL: Image.open(f).convert('RGB'))")
                img.load()
                array = np.asarray(img)
        except Image.DecompressionBombError as exc:
            raise DatasetError(f"{self.path}/{fname}: refused, the image is too large to decode safely ({exc})") from None
        except (OSError, SyntaxError, ValueError) as exc:
            if isinstance(exc, DatasetError):
                raise
            raise DatasetError(f"{self.path}/{fname}: not a readable image: {exc}") from None
        array = array[:, :, None] if array.ndim == 2 else array
        array = array.transpose(2, 0, 1)
        if hasattr(self, "resolution") and array.shape != (self.num_channels, self.resolution, self.resolution):
            raise DatasetError(f"{self.path}/{fname}: image is {list(array.shape)} (C, H, W); the dataset's first image "
                               f"is {[self.num_channels, self.resolution, self.resolution]}")
        return array


def write_image_zip(path: str | os.PathLike, images: np.ndarray, labels: np.ndarray | None) -> Path:
    """Write uint8 images [N, H, W, C] (and int labels [N]) as an EDM dataset zip, atomically."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        names = []
        for idx, img in enumerate(images):
            name = f"{idx:08d}"[:5] + f"/img{idx:08d}.png"
            png = io.BytesIO()
            Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img).save(png, format="png", compress_level=0, optimize=False)
            zf.writestr(name, png.getvalue())
            names.append(name)
        meta = {"labels": None if labels is None else [[n, int(l)] for n, l in zip(names, labels)]}
        zf.writestr("dataset.json", json.dumps(meta))
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


class _CifarBatchUnpickler(RestrictedUnpickler):
    """CIFAR-10 batches hold only dicts, lists, bytes and numpy arrays; nothing else is allowed."""

    allowed = {("numpy.core.multiarray", "_reconstruct"): np_reconstruct, ("numpy._core.multiarray", "_reconstruct"): np_reconstruct,
               ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    what = "CIFAR-10 batches"


def _cifar_batch(batch, where: str) -> tuple[np.ndarray, np.ndarray]:
    """A CIFAR-10 batch's images (uint8 [N, 3072]) and labels (int64 [N], each 0..9), refused (DatasetError naming
    ``where``) unless the batch is a dict holding exactly those."""
    data = batch.get(b"data") if isinstance(batch, dict) else None
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == 3072):
        found = f"{data.dtype} {list(data.shape)}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DatasetError(f"{where}: its data is {found}; expected a uint8 array [N, 3072] as CIFAR-10's batches hold")
    labels = batch.get(b"labels")
    if not (isinstance(labels, list) and len(labels) == len(data)
            and all(type(v) is int and 0 <= v <= 9 for v in labels)):
        raise DatasetError(f"{where}: its labels are not a list of {len(data):,} classes 0..9")
    return data, np.asarray(labels, dtype=np.int64)


def convert_cifar10(archive: str | os.PathLike, out_zip: str | os.PathLike, split: str = "train") -> Path:
    """Convert ``cifar-10-python.tar.gz`` into an EDM dataset zip (32x32 RGB PNGs, labels in dataset.json).

    split: 'train' (data_batch_1..5, 50,000 images) or 'test' (test_batch, 10,000 images).
    """
    archive = Path(archive)
    if not archive.is_file():
        raise DatasetError(f"{archive}: file not found (expected cifar-10-python.tar.gz)")
    members = [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)] if split == "train" else ["cifar-10-batches-py/test_batch"]
    images, labels = [], []
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in members:
                try:
                    f = tar.extractfile(member)
                except KeyError:
                    raise DatasetError(f"{archive}: missing {member}; is this the CIFAR-10 python archive?") from None
                batch = _CifarBatchUnpickler(f, source=f"{archive}:{member}", max_bytes=tar.getmember(member).size,
                                             encoding="bytes").load()
                data, batch_labels = _cifar_batch(batch, f"{archive}:{member}")
                images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
                labels.append(batch_labels)
    except (tarfile.TarError, EOFError, OSError, pickle.UnpicklingError, KeyError, UnsafePickleError) as exc:
        raise DatasetError(f"{archive}: not a readable CIFAR-10 python archive: {type(exc).__name__}: {exc}") from None
    return write_image_zip(out_zip, np.concatenate(images), np.concatenate(labels))


def digits_dataset(split: str = "train", resolution: int = 8, conditional: bool = True) -> InMemoryDataset:
    """scikit-learn's handwritten digits as 1-channel images, with a fixed stratified train/test split.

    split: 'train' (1,437 images), 'test' (360) or 'all' (1,797). resolution 8 (native) or 16 (bilinear x2,
    antialiased). Pixel values 0..16 are mapped to uint8 0..255 (so to [-1, 1] in ``__getitem__``).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if split not in ("train", "test", "all"):
        raise ValueError(f"digits split must be 'train', 'test' or 'all', got {split!r}")
    if resolution not in (8, 16):
        raise ValueError(f"digits resolution must be 8 or 16, got {resolution}")
    digits = load_digits()
    images = torch.as_tensor(digits.images, dtype=torch.float32)[:, None] / 16  # [N, 1, 8, 8] in [0, 1]
    if resolution == 16:
        images = torch.nn.functional.interpolate(images, size=16, mode="bilinear", align_corners=False, antialias=True)
    images = (images.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    labels = digits.target.astype(np.int64)
    index = np.arange(len(labels))
    if split != "all":
        train_idx, test_idx = train_test_split(index, test_size=DIGITS_TEST_SIZE, random_state=DIGITS_SPLIT_SEED,
                                               stratify=labels)
        index = np.sort(train_idx if split == "train" else test_idx)
    return InMemoryDataset(images[index], labels[index] if conditional else None,
                           name=f"digits-{resolution}x{resolution}-{split}", label_dim=10 if conditional else None)


def open_dataset(spec: str | os.PathLike, labels: bool = True) -> ImageDataset:
    """A dataset by name or path: 'digits[-8|-16][:train|test|all]' or an EDM folder/zip; ``labels=False`` drops them."""
    text = str(spec)
    if text.startswith("digits") and not Path(text).exists():
        name, _, split = text.partition(":")
        size = name.partition("-")[2] or "8"
        if name not in ("digits", "digits-8", "digits-16") or split not in ("", "train", "test", "all"):
            raise DatasetError(f"dataset {text!r}: expected digits[-8|-16][:train|test|all] or the path of a "
                               f"dataset in EDM's format")
        return digits_dataset(split or "train", int(size), conditional=labels)
    return ImageFolderDataset(spec, use_labels=labels)
