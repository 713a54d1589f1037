"""paperlib: a reproducible artifact of "Diffusion Models Are Innate One-Step Generators" (GDD / GDD-I).

The top level of the package is the method: networks (:mod:`paperlib.nets`), denoisers and the one-step generator
(:mod:`.precond`), the EDM sampler and loss (:mod:`.diffusion`), the GAN, R1 and instance losses (:mod:`.losses`),
GDD-I's freezing (:mod:`.freezing`), the discriminators (:mod:`.discriminators`), the training config, objectives
and loop (:mod:`.config`, :mod:`.objectives`, :mod:`.training`), data, metrics and presets. Beside it: files
(:mod:`paperlib.store`), the mini-scale study (:mod:`paperlib.study`), figures (:mod:`paperlib.plots`) and notebook
support (:mod:`paperlib.notebook`). ``python -m paperlib`` is the command line.

What a researcher scripts against is importable from here, loaded on first use (``import paperlib`` itself imports
nothing heavy)::

    net = paperlib.generator_from_teacher("edm-cifar10-32x32-uncond-ve.pkl")   # G(z) = D(80 z; 80)
    images = paperlib.generate(net, range(64)).images                            # [64, 3, 32, 32] in [-1, 1]
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    # networks, denoisers and the one-step generator
    "SongUNet": "nets", "DhariwalUNet": "nets", "EDMPrecond": "precond", "VEPrecond": "precond",
    "VPPrecond": "precond", "GDDPrecond": "precond", "build_network": "precond",
    # loading and saving networks (EDM/GDD pickles read without running their code; paperlib's format)
    "load_network": "store.checkpoints", "save_network": "store.checkpoints",
    "generator_from_teacher": "store.checkpoints",
    # sampling and the EDM loss
    "generate": "diffusion", "edm_sampler": "diffusion", "edm_schedule": "diffusion", "edm_loss": "diffusion",
    # GAN, R1 and instance losses; GDD-I's freezing; discriminators
    "generator_loss": "losses", "discriminator_loss": "losses", "r1_loss": "losses", "instance_loss": "losses",
    "apply_freezing": "freezing", "frozen_parameter_names": "freezing", "build_discriminator": "discriminators",
    # training
    "TrainConfig": "config", "train": "training", "preset_config": "presets",
    # data and metrics
    "open_dataset": "data", "build_extractor": "metrics", "extract_features": "metrics", "feature_stats": "metrics",
    "fid_from_stats": "metrics", "evaluate_network": "metrics",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'paperlib' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"paperlib.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for editors and type checkers: the same names, imported eagerly
    from paperlib.config import TrainConfig  # noqa: F401
    from paperlib.data import open_dataset  # noqa: F401
    from paperlib.diffusion import edm_loss, edm_sampler, edm_schedule, generate  # noqa: F401
    from paperlib.discriminators import build_discriminator  # noqa: F401
    from paperlib.freezing import apply_freezing, frozen_parameter_names  # noqa: F401
    from paperlib.losses import discriminator_loss, generator_loss, instance_loss, r1_loss  # noqa: F401
    from paperlib.metrics import build_extractor, evaluate_network, extract_features, feature_stats, fid_from_stats  # noqa: F401
    from paperlib.nets import DhariwalUNet, SongUNet  # noqa: F401
    from paperlib.precond import EDMPrecond, GDDPrecond, VEPrecond, VPPrecond, build_network  # noqa: F401
    from paperlib.presets import preset_config  # noqa: F401
    from paperlib.store.checkpoints import generator_from_teacher, load_network, save_network  # noqa: F401
    from paperlib.training import train  # noqa: F401
