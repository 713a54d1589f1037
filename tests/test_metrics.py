"""Metrics: FID against closed forms and clean-fid itself, KID, precision/recall, memorisation, extractors."""

import numpy as np
import pytest
import torch
from PIL import Image

from paperlib.data import digits_dataset
from paperlib.metrics import (
    DIGITS_FEATNET,
    DigitsExtractor,
    DigitsFeatureNet,
    InceptionExtractor,
    MetricError,
    Stats,
    build_extractor,
    digits_reference,
    evaluate_features,
    extract_features,
    feature_stats,
    fid_from_stats,
    kid,
    memorisation_ratio,
    precision_recall,
    real_data_floor,
)


@pytest.fixture(scope="module")
def extractor():
    return DigitsExtractor()


@pytest.fixture(scope="module")
def reference(extractor):
    return digits_reference(extractor)


def test_fid_of_a_sample_against_itself_is_zero_and_fid_is_symmetric():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(500, 8)), rng.normal(0.3, 1.2, size=(500, 8))
    sa, sb = feature_stats(a), feature_stats(b)
    assert abs(fid_from_stats(sa, sa)) < 1e-6
    assert fid_from_stats(sa, sb) == pytest.approx(fid_from_stats(sb, sa), rel=1e-6)


def test_fid_equals_the_closed_form_for_known_gaussians():
    d = 6
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))  # shared eigenvectors: the matrix square root is known exactly
    la, lb = rng.uniform(0.5, 2, d), rng.uniform(0.1, 3, d)
    sa, sb = q @ np.diag(la) @ q.T, q @ np.diag(lb) @ q.T
    mu_a, mu_b = rng.normal(size=d), rng.normal(size=d)
    closed = np.sum((mu_a - mu_b) ** 2) + np.sum(la + lb - 2 * np.sqrt(la * lb))
    assert fid_from_stats(Stats(mu_a, sa), Stats(mu_b, sb)) == pytest.approx(closed, rel=1e-6)


def test_statistics_agree_with_clean_fid_compute_fid(tmp_path, extractor):
    from cleanfid import fid as cleanfid_fid

    train, test = digits_dataset("train"), digits_dataset("test")
    for folder, images in (("a", train.images[:300]), ("b", test.images[:300])):
        (tmp_path / folder).mkdir()
        for i, img in enumerate(images):
            Image.fromarray(img[0]).convert("RGB").save(tmp_path / folder / f"{i:04d}.png")
    theirs = cleanfid_fid.compute_fid(str(tmp_path / "a"), str(tmp_path / "b"), mode="clean", num_workers=0,
                                      batch_size=100, device=torch.device("cpu"), custom_feat_extractor=extractor,
                                      custom_fn_resize=lambda x: x, verbose=False, use_dataparallel=False)
    ours = fid_from_stats(feature_stats(extract_features(extractor, train.images[:300])),
                          feature_stats(extract_features(extractor, test.images[:300])))
    assert ours == pytest.approx(theirs, rel=1e-5)


def test_digits_feature_net_is_accurate_on_held_out_digits():
    from safetensors.torch import load_file
    net = DigitsFeatureNet()
    net.load_state_dict(load_file(str(DIGITS_FEATNET)))
    test = digits_dataset("test")
    with torch.no_grad():
        accuracy = (net.eval()(torch.tensor(test.images, dtype=torch.float32) / 127.5 - 1).argmax(1).numpy() == test.labels).mean()
    assert accuracy >= 0.97


def test_real_data_floor_and_metric_behaviour(reference):
    floor = real_data_floor(reference)
    held = floor["held_out"]
    assert held["fid"] > 0 and held["precision"] > 0.8 and held["recall"] > 0.8
    assert floor["train_resample"]["memorisation"] < 0.3  # resampled training images are copies: distance ~0
    noise = np.random.default_rng(0).normal(size=(400, 64)) * reference.train.std() + reference.train.mean()
    bad = evaluate_features(noise, reference)
    assert bad["fid"] > 10 * held["fid"] and bad["kid"] > held["kid"]


def test_precision_recall_on_point_clouds():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(400, 2))
    assert precision_recall(real, rng.normal(size=(400, 2)))[0] > 0.9
    far = rng.normal(size=(400, 2)) + 10
    assert precision_recall(real, far) == (0.0, 0.0)
    collapsed = np.zeros((400, 2)) + rng.normal(size=(400, 2)) * 0.01
    precision, recall = precision_recall(real, collapsed)
    assert precision == 1.0 and recall < 0.2  # mode collapse: precise but no recall


def test_nearest_neighbour_metrics_in_blocks_equal_the_whole_matrix_and_stay_bounded():
    """Blocks of 7 distances (one row) give the numbers of one block holding every distance (to float64 rounding: a
    row's distances come from a matrix-vector product, a block's from a matrix product); and 50,000
    reference images (the paper's count) against 60,000 generated ones stay far below the 24 GB a full distance matrix
    would need (measured: the peak traced allocation is the blocks', not the matrix's)."""
    import tracemalloc

    from paperlib.metrics import MAX_DISTANCES, nearest_distances

    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(60, 4)), rng.normal(size=(50, 4)) * 1.3
    everything = 10 ** 6
    assert precision_recall(real, fake, max_distances=7) == precision_recall(real, fake, max_distances=everything)
    (distance, index), (whole_distance, whole_index) = (nearest_distances(fake, real, max_distances=7),
                                                        nearest_distances(fake, real, everything))
    np.testing.assert_allclose(distance, whole_distance, rtol=1e-12)
    np.testing.assert_array_equal(index, whole_index)
    big_real, big_fake = rng.normal(size=(50_000, 2)).astype(np.float32), rng.normal(size=(60_000, 2)).astype(np.float32)
    tracemalloc.start()
    nearest_distances(big_fake[:2_000], big_real)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 3 * 4 * MAX_DISTANCES  # a block's distances and its mask, not 2,000 x 50,000 at once (400 MB)


def test_memorisation_ratio_detects_copies():
    rng = np.random.default_rng(0)
    train, held = rng.normal(size=(500, 4)), rng.normal(size=(200, 4))
    assert memorisation_ratio(train[:200] + 1e-3, train, held) < 0.05
    assert memorisation_ratio(rng.normal(size=(200, 4)), train, held) == pytest.approx(1.0, abs=0.15)


def test_kid_is_near_zero_for_the_same_distribution():
    rng = np.random.default_rng(0)
    a, b, c = rng.normal(size=(300, 16)), rng.normal(size=(300, 16)), rng.normal(1, 1, size=(300, 16))
    assert abs(kid(a, b)) < 0.01 < kid(a, c)


def test_inception_path_end_to_end_with_a_torchscript_stand_in(tmp_path):
    class StandIn(torch.nn.Module):  # same call interface as inception-2015-12-05.pt: forward(x, return_features)
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Conv2d(3, 2048, 1))  # pool first: small

        def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
            x = torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
            return self.layers((x - 128) / 128).flatten(1)

    torch.manual_seed(0)
    torch.jit.script(StandIn()).save(str(tmp_path / "inception-2015-12-05.pt"))
    ext = build_extractor("inception", str(tmp_path / "inception-2015-12-05.pt"))
    feats = extract_features(ext, np.random.default_rng(0).integers(0, 256, size=(5, 3, 32, 32), dtype=np.uint8))
    assert feats.shape == (5, 2048) and np.isfinite(feats).all()


def test_bad_inputs(tmp_path, extractor):
    with pytest.raises(MetricError, match="Inception weights not found.*/tmp"):
        InceptionExtractor(tmp_path / "inception-2015-12-05.pt")
    with pytest.raises(MetricError, match="by the name inception-2015-12-05.pt"):
        (tmp_path / "my-inception.pt").write_bytes(b"x")
        InceptionExtractor(tmp_path / "my-inception.pt")
    rng = np.random.default_rng(0)
    with pytest.raises(MetricError, match="64-d statistics against 2048-d reference"):
        fid_from_stats(feature_stats(rng.normal(size=(100, 64))), Stats(np.zeros(2048), np.eye(2048)))
    with pytest.raises(MetricError, match="50 samples cannot give a full-rank covariance of 64-d features"):
        feature_stats(rng.normal(size=(50, 64)))
    with pytest.raises(MetricError, match="reference statistics not found"):
        Stats.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "bad.npz", m=np.zeros(3))
    with pytest.raises(MetricError, match="mu and sigma"):
        Stats.load(tmp_path / "bad.npz")
    with pytest.raises(MetricError, match="featnet"):
        DigitsExtractor(tmp_path / "none.safetensors")
    Stats(np.zeros(3), np.eye(3), 10).save(tmp_path / "ok.npz")
    assert Stats.load(tmp_path / "ok.npz").count == 10


def test_grids(tmp_path, extractor):
    from paperlib.plots.grids import nearest_neighbour_figure, save_grid, tile

    train = digits_dataset("train").images
    assert tile(train[:10], nrow=4).shape == (24, 32, 1)
    assert save_grid(train[:16], tmp_path / "g.png", nrow=8).stat().st_size > 0
    feats = extract_features(extractor, train[:50])
    assert save_grid(train[:16], tmp_path / "c.png", nrow=8, cell_labels=[str(i % 10) for i in range(16)]).exists()
    copies = {"copies": (train[:8], feats[:8]), "others": (train[40:48], feats[40:48] + 1.0)}
    nearest_neighbour_figure(copies, train[:30], feats[:30], feats[30:], tmp_path / "nn.png", "test", count=8)
    assert Image.open(tmp_path / "nn.png").size[0] >= 600


def test_fid_command_on_a_tiny_generator(tmp_path, capsys):
    import json

    from paperlib.__main__ import main
    from paperlib.precond import GDDPrecond
    from paperlib.presets import SMOKE_ARCH
    from paperlib.store.checkpoints import save_network

    torch.manual_seed(0)
    save_network(GDDPrecond(img_resolution=8, img_channels=1, **SMOKE_ARCH), tmp_path / "g")
    assert main(["fid", "--ckpt", str(tmp_path / "g"), "--ref", "digits-8:train", "--num", "100", "--features",
                 "digits", "--device", "cpu", "--out", str(tmp_path / "fid.json")]) == 0
    result = json.loads((tmp_path / "fid.json").read_text())
    assert result["num"] == 100 and result["fid"] > 0 and {"kid", "precision", "recall", "fid_test", "memorisation"} <= set(result)
    ref = feature_stats(extract_features(DigitsExtractor(), digits_dataset("train").images))
    ref.save(tmp_path / "ref.npz")
    assert main(["fid", "--ckpt", str(tmp_path / "g"), "--ref", str(tmp_path / "ref.npz"), "--num", "100",
                 "--features", "digits", "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["fid"] == pytest.approx(result["fid"], rel=1e-6)


def test_fid_matches_clean_fid_without_its_sqrtm_call():
    """paperlib computes clean-fid's Fréchet distance itself (clean-fid's sqrtm(..., disp=False) fails on SciPy >=
    1.18); where clean-fid still runs, the two agree."""
    from paperlib.metrics import Stats, fid_from_stats

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 16)), rng.normal(size=(300, 16)) * 1.2 + 0.3
    sa, sb = (Stats(x.mean(0), np.cov(x, rowvar=False), len(x)) for x in (a, b))
    ours = fid_from_stats(sa, sb)
    try:
        from cleanfid.fid import frechet_distance

        theirs = frechet_distance(sa.mu, sa.sigma, sb.mu, sb.sigma)
    except TypeError:  # SciPy without sqrtm's disp argument
        theirs = None
    assert ours > 0 and fid_from_stats(sa, sa) == pytest.approx(0, abs=1e-6)
    if theirs is not None:
        assert ours == pytest.approx(theirs, rel=1e-9)
