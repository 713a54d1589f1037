"""Safe reading of EDM/GDD pickles, paperlib's own format, conversion and atomic writes."""

import os
import pickle
import subprocess
import sys

import pytest
import torch
from conftest import TINY_ADM, randomize
from edm_pickle import write_edm_pickle

from paperlib.precond import GDDPrecond, build_network
from paperlib.store import checkpoints
from paperlib.store.checkpoints import (
    CheckpointError,
    UnsafePickleError,
    generator_from_teacher,
    load_network,
    read_network_pickle,
    save_network,
)


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]), k


@pytest.mark.parametrize("ordered", [False, True], ids=["dict", "OrderedDict"])
@pytest.mark.parametrize("numpy1", [False, True], ids=["numpy2-scalars", "numpy1-scalars"])
def test_edm_pickle_loads_bit_identically(tmp_path, tiny_net, ordered, numpy1):
    net = tiny_net(label_dim=10, augment_dim=9)
    path = write_edm_pickle(net, tmp_path / "edm-tiny.pkl", ordered=ordered, numpy1=numpy1)
    loaded = load_network(path)
    assert type(loaded).__name__ == "EDMPrecond" and loaded.init_kwargs == net.init_kwargs
    assert_same_weights(loaded, net)
    x, s, y = torch.randn(2, 3, 8, 8), torch.tensor([0.5, 20.0]), torch.eye(10)[:2]
    assert torch.equal(loaded(x, s, y), net(x, s, y))


def test_adm_and_vp_pickles_load(tmp_path, tiny_net):
    adm = randomize(build_network("EDMPrecond", **dict(TINY_ADM, label_dim=10))).eval()
    for net in (adm, tiny_net("VPPrecond"), tiny_net("VEPrecond")):
        precond = type(net).__name__
        loaded = load_network(write_edm_pickle(net, tmp_path / f"{precond}.pkl"))
        assert type(loaded) is type(net)
        assert_same_weights(loaded, net)


def test_gdd_snapshot_holds_net_and_ema(tmp_path, tiny_net):
    ema, raw = tiny_net("GDDPrecond", seed=1), tiny_net("GDDPrecond", seed=2)
    path = write_edm_pickle(ema, tmp_path / "network-snapshot-000100.pkl", kind="gdd", raw=raw)
    assert sorted(pickle_keys(path)) == ["augment_pipe", "dataset_kwargs", "ema", "net"]
    assert isinstance(load_network(path), GDDPrecond)
    assert_same_weights(load_network(path), ema)  # the EMA by default, as the authors' generate.py
    assert_same_weights(load_network(path, key="net"), raw)
    assert not torch.equal(next(ema.parameters()), next(raw.parameters()))  # the key really chooses


def pickle_keys(path):
    return list(checkpoints.safe_unpickle(path).keys())


def test_pickle_never_executes_module_source(tmp_path, tiny_net):
    path = write_edm_pickle(tiny_net(), tmp_path / "net.pkl")
    pickled = read_network_pickle(path)
    assert pickled.precond == "EDMPrecond"  # module_src raises SystemExit if executed; reaching here means it was not


DANGEROUS = {
    "os.system": lambda marker: b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.",
    "builtins.eval": lambda marker: b"cbuiltins\neval\n(S'open(" + repr(str(marker)).encode() + b", \"w\")'\ntR.",
    "posix.system": lambda marker: b"cposix\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.",
}


@pytest.mark.parametrize("name", sorted(DANGEROUS))
def test_dangerous_global_is_refused_without_side_effect(tmp_path, name):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(DANGEROUS[name](marker))
    with pytest.raises(UnsafePickleError, match=name.replace(".", r"\.")) as info:
        load_network(path)
    assert str(path) in str(info.value)
    assert not marker.exists()
    if name != "posix.system" or os.name == "posix":  # the payload really is live: plain pickle runs it
        subprocess.run([sys.executable, "-c", f"import pickle; pickle.load(open({str(path)!r}, 'rb'))"], check=True)
        assert marker.exists()


def test_dangerous_global_nested_inside_a_network_pickle_is_refused(tmp_path, tiny_net):
    class Evil:
        def __reduce__(self):
            return os.system, ("true",)
    path = write_edm_pickle(tiny_net(), tmp_path / "net.pkl", extra=dict(payload=Evil()))
    with pytest.raises(UnsafePickleError, match="system"):
        load_network(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="file not found") as info:
        load_network(tmp_path / "nope.pkl")
    assert "nope.pkl" in str(info.value)
    with pytest.raises(CheckpointError, match="file not found"):
        load_network(tmp_path / "nope.safetensors")


def test_pickle_that_is_not_a_network(tmp_path):
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps({"results": [1, 2, 3]}))
    with pytest.raises(CheckpointError, match="not a network pickle") as info:
        load_network(path)
    assert "data.pkl" in str(info.value)


def test_truncated_pickle(tmp_path, tiny_net):
    path = write_edm_pickle(tiny_net(), tmp_path / "net.pkl")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupted") as info:
        load_network(path)
    assert "net.pkl" in str(info.value)


def test_corrupted_storage_blob(tmp_path, tiny_net):
    path = write_edm_pickle(tiny_net(), tmp_path / "net.pkl")
    data = bytearray(path.read_bytes())
    at = data.index(b"FloatStorage")
    data[at:at + 12] = b"EvilxStorage"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="torch.EvilxStorage"):
        load_network(path)


def test_paperlib_format_round_trip(tmp_path, tiny_net):
    net = tiny_net("GDDPrecond", label_dim=10)
    path = save_network(net, tmp_path / "run", extra=dict(note="test"))
    assert path.name == "network.safetensors"
    loaded = load_network(tmp_path / "run")
    assert isinstance(loaded, GDDPrecond) and loaded.init_kwargs == net.init_kwargs
    assert_same_weights(loaded, net)


def test_truncated_or_foreign_safetensors(tmp_path, tiny_net):
    path = save_network(tiny_net(), tmp_path / "net.safetensors")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="truncated or corrupted") as info:
        load_network(path)
    assert "net.safetensors" in str(info.value)
    (tmp_path / "junk.safetensors").write_bytes(b"hello world, not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.safetensors"):
        load_network(tmp_path / "junk.safetensors")


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, tiny_net, monkeypatch):
    good = tiny_net(seed=1)
    path = save_network(good, tmp_path / "net.safetensors")
    before = path.read_bytes()

    def disk_full(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(checkpoints.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        save_network(tiny_net(seed=2), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["net.safetensors"]  # no temp file left behind


def test_generator_from_teacher_drops_map_augment(tmp_path, tiny_net):
    teacher = tiny_net(augment_dim=9, dropout=0.13)
    path = write_edm_pickle(teacher, tmp_path / "edm-teacher.pkl")
    gen = generator_from_teacher(path)
    assert isinstance(gen, GDDPrecond) and gen.model.map_augment is None and gen.model_kwargs["dropout"] == 0
    t_sd, g_sd = teacher.state_dict(), gen.state_dict()
    assert set(t_sd) - set(g_sd) == {"model.map_augment.weight"}
    assert all(torch.equal(g_sd[k], t_sd[k]) for k in g_sd)  # Fourier freqs and resample filters included
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(gen(x, 1.0), teacher(x, 1.0), atol=5e-3, rtol=0)  # differs only by the eps shift


def test_weights_that_do_not_fit_their_kwargs(tmp_path, tiny_net):
    net = tiny_net()
    path = write_edm_pickle(net, tmp_path / "net.pkl")
    data = bytearray(path.read_bytes())
    data = data.replace(b"model_channels", b"model_channelz", 1)
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="cannot rebuild"):
        load_network(path)
