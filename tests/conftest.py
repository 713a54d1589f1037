import contextlib
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))
# Up to two threads, what the weights pinned per kind of CPU were trained with; one under pytest-xdist (a process per
# core, OMP_NUM_THREADS=1 for every process the tests start), except where a test asks for the pinned count.
PINNED_THREADS = min(2, os.cpu_count() or 1)
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else PINNED_THREADS)


@contextlib.contextmanager
def torch_threads(count: int):
    """Run the block with ``count`` torch threads, then restore the count."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)

from paperlib.precond import build_network  # noqa: E402

TINY_SONG = dict(img_resolution=8, img_channels=3, model_type="SongUNet", model_channels=16, channel_mult=[1, 2],
                 num_blocks=1, attn_resolutions=[4], dropout=0.0, embedding_type="fourier", encoder_type="residual",
                 channel_mult_noise=2, resample_filter=[1, 3, 3, 1])
TINY_ADM = dict(img_resolution=8, img_channels=3, model_type="DhariwalUNet", model_channels=32, channel_mult=[1, 2],
                num_blocks=1, attn_resolutions=[4], dropout=0.0)


def randomize(net, seed=0):
    """Give every parameter non-trivial values (EDM zero-initialises output layers, which would hide bugs)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            fan = p[0].numel() if p.ndim > 1 else 1
            p.copy_(torch.randn(p.shape, generator=g) * (0.5 / fan ** 0.5))
    return net


@pytest.fixture
def tiny_net():
    def make(precond="EDMPrecond", seed=0, **overrides):
        torch.manual_seed(seed)
        return randomize(build_network(precond, **{**TINY_SONG, **overrides}), seed).eval()
    return make


@pytest.fixture(scope="session")
def smoke_teacher(tmp_path_factory):
    """A smoke-scale EDM teacher trained for real (a few seconds), shared by the tests that fine-tune one."""
    from paperlib.presets import preset_config
    from paperlib.training import train

    run_dir = tmp_path_factory.mktemp("teacher") / "run"
    with torch_threads(PINNED_THREADS):  # its weights are pinned per kind of CPU
        train(preset_config("smoke-teacher", run_dir=str(run_dir)), progress=False)
    return str(run_dir / "network.safetensors")


@pytest.fixture
def main_here(capsys):
    """``python -m paperlib ARGS`` run in this process (no interpreter start-up): returns (exit code, stderr). An
    exception main() does not turn into a one-line error propagates and fails the test, as a traceback would."""
    from paperlib.__main__ import main

    def run(*args):
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse's own errors
            code = exc.code
        return code, capsys.readouterr().err

    return run


