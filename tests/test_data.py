"""Datasets: EDM folder/zip format, the CIFAR-10 converter, digits, and the errors for bad input."""

import io
import json
import pickle
import tarfile

import numpy as np
import pytest
from PIL import Image

from paperlib.data import DatasetError, ImageFolderDataset, convert_cifar10, digits_dataset, open_dataset, write_image_zip


def fake_cifar_archive(path, per_batch=4, seed=0, edit=lambda batch: batch):
    rng = np.random.default_rng(seed)
    batches = {}
    with tarfile.open(path, "w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
            labels = rng.integers(0, 10, size=per_batch).tolist()
            batch = edit({b"batch_label": name.encode(), b"labels": labels, b"data": data})
            blob = pickle.dumps(batch, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
            batches[name] = (data, labels)
    return batches


def test_cifar10_converter_on_a_synthetic_archive(tmp_path):
    batches = fake_cifar_archive(tmp_path / "cifar-10-python.tar.gz")
    out = convert_cifar10(tmp_path / "cifar-10-python.tar.gz", tmp_path / "cifar10-32x32.zip")
    ds = ImageFolderDataset(out)
    assert len(ds) == 20 and ds.resolution == 32 and ds.num_channels == 3 and ds.label_dim <= 10
    data = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)]).reshape(-1, 3, 32, 32)
    labels = sum((batches[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    assert ds.files[0] == "00000/img00000000.png"
    for i in range(20):
        assert np.array_equal(ds.raw_image(i), data[i])
        assert int(ds.labels[i]) == labels[i]
    image, onehot = ds[3]
    assert image.shape == (3, 32, 32) and image.min() >= -1 and image.max() <= 1
    assert onehot.shape == (ds.label_dim,) and onehot.sum() == 1 and onehot.argmax() == labels[3]
    test = ImageFolderDataset(convert_cifar10(tmp_path / "cifar-10-python.tar.gz", tmp_path / "test.zip", split="test"))
    assert np.array_equal(test.raw_image(0), batches["test_batch"][0][0].reshape(3, 32, 32))


def test_cifar10_converter_bad_archives(tmp_path):
    with pytest.raises(DatasetError, match="file not found"):
        convert_cifar10(tmp_path / "missing.tar.gz", tmp_path / "out.zip")
    (tmp_path / "junk.tar.gz").write_bytes(b"not an archive")
    with pytest.raises(DatasetError, match="junk.tar.gz"):
        convert_cifar10(tmp_path / "junk.tar.gz", tmp_path / "out.zip")
    for edit, why in ((lambda b: {**b, b"data": b[b"data"].tolist()}, "its data is list; expected a uint8 array"),
                      (lambda b: {**b, b"labels": [10] * 4}, "its labels are not a list of 4 classes 0..9"),
                      (lambda b: [b], "its data is NoneType")):
        fake_cifar_archive(tmp_path / "odd.tar.gz", edit=edit)
        with pytest.raises(DatasetError, match=f"odd.tar.gz:cifar-10-batches-py/data_batch_1: {why}"):
            convert_cifar10(tmp_path / "odd.tar.gz", tmp_path / "out.zip")
    assert not (tmp_path / "out.zip").exists()


def test_digits_dataset():
    train, test, full = digits_dataset("train"), digits_dataset("test"), digits_dataset("all")
    assert (len(train), len(test), len(full)) == (1437, 360, 1797)
    assert train.images.shape == (1437, 1, 8, 8) and train.images.dtype == np.uint8
    assert np.bincount(test.labels).min() >= 35  # stratified: every class in the held-out split
    image, label = train[0]
    assert image.shape == (1, 8, 8) and -1 <= image.min() and image.max() <= 1 and label.shape == (10,)
    assert train.images.min() == 0 and train.images.max() == 255  # digits use the full range
    # the split is fixed: the same images each time, and train and test are disjoint
    assert np.array_equal(digits_dataset("train").images, train.images)
    as_rows = lambda d: {row.tobytes() for row in d.images}
    assert len(as_rows(train) & as_rows(test)) < 5  # (a few digits are pixel-identical duplicates in sklearn's set)
    big = digits_dataset("train", resolution=16)
    assert big.images.shape == (1437, 1, 16, 16) and np.array_equal(big.labels, train.labels)
    assert digits_dataset("train", conditional=False).labels is None
    assert open_dataset("digits-16:test").images.shape == (360, 1, 16, 16)


def make_folder(tmp_path, n=3, size=8, mode="RGB", labels=True):
    root = tmp_path / "ds"
    (root / "00000").mkdir(parents=True)
    names = []
    for i in range(n):
        name = f"00000/img{i:08d}.png"
        Image.new(mode, (size, size), color=(i * 40, 0, 0) if mode == "RGB" else i * 40).save(root / name)
        names.append(name)
    if labels:
        (root / "dataset.json").write_text(json.dumps({"labels": [[n, i % 2] for i, n in enumerate(names)]}))
    return root


def test_folder_dataset_and_zip_agree(tmp_path):
    root = make_folder(tmp_path)
    folder = ImageFolderDataset(root)
    images = np.stack([folder.raw_image(i).transpose(1, 2, 0) for i in range(len(folder))])
    zipped = ImageFolderDataset(write_image_zip(tmp_path / "ds.zip", images, folder.labels))
    assert folder.label_dim == zipped.label_dim == 2
    for i in range(3):
        assert np.array_equal(folder.raw_image(i), zipped.raw_image(i))
    assert folder.raw_image(2)[0, 0, 0] == 80


def test_non_image_file_in_dataset_folder(tmp_path):
    root = make_folder(tmp_path)
    (root / "00000" / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match="notes.txt' is not an image"):
        ImageFolderDataset(root)


def test_corrupted_image_names_the_file(tmp_path):
    root = make_folder(tmp_path)
    (root / "00000" / "img00000001.png").write_bytes(b"\x89PNG garbage")
    ds = ImageFolderDataset(root)
    with pytest.raises(DatasetError, match="img00000001.png: not a readable image"):
        ds[1]


def test_wrong_resolution_channels_and_missing_path(tmp_path):
    root = make_folder(tmp_path)
    with pytest.raises(DatasetError, match="images are 8x8; expected 32x32"):
        ImageFolderDataset(root, resolution=32)
    with pytest.raises(DatasetError, match="3 channels; expected 1"):
        ImageFolderDataset(root, channels=1)
    with pytest.raises(DatasetError, match="dataset not found"):
        ImageFolderDataset(tmp_path / "nothing")


def test_dataset_must_fit_the_network(tmp_path, tiny_net):
    ds = ImageFolderDataset(make_folder(tmp_path, size=16))
    with pytest.raises(DatasetError, match="network expects 3x8x8"):
        ds.check_compatible(tiny_net())
    unlabelled = ImageFolderDataset(make_folder(tmp_path / "u", labels=False))
    with pytest.raises(DatasetError, match="class-conditional"):
        unlabelled.check_compatible(tiny_net(label_dim=10))
    with pytest.raises(DatasetError, match="outside the network's classes 0..0"):
        ImageFolderDataset(make_folder(tmp_path / "l")).check_compatible(tiny_net(label_dim=1))
    ImageFolderDataset(make_folder(tmp_path / "ok")).check_compatible(tiny_net(label_dim=10))


def test_bad_labels(tmp_path):
    root = make_folder(tmp_path)
    (root / "dataset.json").write_text(json.dumps({"labels": [["00000/img00000000.png", 1]]}))
    with pytest.raises(DatasetError, match="no label for"):
        ImageFolderDataset(root)
    names = [f"00000/img{i:08d}.png" for i in range(3)]
    (root / "dataset.json").write_text(json.dumps({"labels": [[n, -1] for n in names]}))
    with pytest.raises(DatasetError, match="outside the classes 0..99999"):
        ImageFolderDataset(root)
    (root / "dataset.json").write_text("{oops")
    with pytest.raises(DatasetError, match="not valid JSON"):
        ImageFolderDataset(root)
