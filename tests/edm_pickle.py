"""Test helper: writes EDM/GDD-format network pickles from a paperlib network, following
shared/spec/edm-pickle-format.md (persistent objects, legacy storage blobs, numpy scalars in kwargs).

Pickling needs the reconstruct function to be importable as ``torch_utils.persistence._reconstruct_persistent_obj``;
a stand-in module is registered only while dumping, so nothing of EDM is ever installed or imported.
"""

from __future__ import annotations

import pickle
import sys
import types
from collections import OrderedDict
from contextlib import contextmanager

import numpy as np
import torch

MODULE_SRC = "# stand-in for training/networks.py; paperlib never executes it\nraise SystemExit('executed!')\n"


def _reconstruct_persistent_obj(meta):  # never called: only its name is written
    raise AssertionError("test pickles are never loaded with the real reconstructor")


_reconstruct_persistent_obj.__module__ = "torch_utils.persistence"


@contextmanager
def _fake_torch_utils():
    pkg, mod = types.ModuleType("torch_utils"), types.ModuleType("torch_utils.persistence")
    mod._reconstruct_persistent_obj = _reconstruct_persistent_obj
    pkg.persistence = mod
    saved = {k: sys.modules.get(k) for k in ("torch_utils", "torch_utils.persistence")}
    sys.modules.update({"torch_utils": pkg, "torch_utils.persistence": mod})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


class Persistent:
    """Pickles as torch_utils.persistence's record: (reconstruct, (meta,))."""

    def __init__(self, class_name: str, state: dict):
        self.class_name, self.state = class_name, state

    def __reduce__(self):
        meta = dict(type="class", version=6, module_src=MODULE_SRC, class_name=self.class_name, state=self.state)
        return _reconstruct_persistent_obj, (meta,)


def plain_module(cls: type, state: dict):
    """An instance of a plain torch.nn class (e.g. ModuleDict) whose __dict__ is ``state``: it pickles as
    NEWOBJ of that class followed by BUILD with the dict, as torch.nn modules do."""
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    return obj


HOOK_DICTS = ("_backward_hooks", "_backward_pre_hooks", "_forward_hooks", "_forward_hooks_with_kwargs",
              "_forward_hooks_always_called", "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs",
              "_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks")


def _module_record(module: torch.nn.Module, ordered: bool, init_kwargs: dict | None):
    mapping = OrderedDict if ordered else dict
    params = mapping((k, None if v is None else torch.nn.Parameter(v.detach().clone(), requires_grad=False))
                     for k, v in module._parameters.items())
    buffers = mapping((k, None if v is None else v.detach().clone()) for k, v in module._buffers.items())
    children = mapping((k, _module_record(v, ordered, None)) for k, v in module._modules.items())
    state = dict(training=False, _parameters=params, _buffers=buffers, _non_persistent_buffers_set=set(),
                 _modules=children, _is_full_backward_hook=None, **{h: OrderedDict() for h in HOOK_DICTS})
    if isinstance(module, torch.nn.ModuleDict):
        return plain_module(torch.nn.ModuleDict, state)
    state.update(_init_args=(), _init_kwargs=init_kwargs if init_kwargs is not None else {})
    if type(module).__name__ == "UNetBlock":  # EDM's blocks carry numpy scalars in their kwargs
        state["_init_kwargs"] = dict(skip_scale=np.float64(module.skip_scale), init_attn=dict(init_weight=np.float64(np.sqrt(0.2))))
    return Persistent(type(module).__name__, state)


def edm_network_record(net, ordered: bool = False, numpy_kwargs: bool = True):
    """The persistent record of a paperlib network as EDM would pickle it."""
    kwargs = dict(net.init_kwargs)
    if numpy_kwargs and "dropout" in kwargs:
        kwargs["dropout"] = np.float64(kwargs["dropout"])
    record = _module_record(net, ordered, kwargs)
    record.state["_modules"]["model"].state["_init_kwargs"] = dict(net.model_kwargs, in_channels=net.img_channels)
    return record


def write_edm_pickle(net, path, kind: str = "edm", ordered: bool = False, numpy1: bool = False, extra: dict | None = None,
                     raw=None):
    """Write ``net`` as an EDM snapshot (kind='edm': ema, loss_fn, augment_pipe, dataset_kwargs) or a GDD
    snapshot (kind='gdd': ``raw`` (default ``net``) as net, ``net`` as ema, ...). numpy1=True spells numpy scalars
    the numpy 1.x way."""
    record = edm_network_record(net, ordered)
    data = dict(ema=record, augment_pipe=None,
                dataset_kwargs=dict(class_name="training.dataset.ImageFolderDataset", path="/data/x.zip",
                                    use_labels=bool(net.label_dim), xflip=False, cache=True,
                                    resolution=net.img_resolution, max_size=None))
    if kind == "edm":
        data["loss_fn"] = Persistent("EDMLoss", dict(P_mean=-1.2, P_std=1.2, sigma_data=0.5))
    else:
        data = dict(net=edm_network_record(raw, ordered) if raw is not None else record, **data)
    data.update(extra or {})
    with _fake_torch_utils():
        blob = pickle.dumps(data, protocol=2 if numpy1 else 4)
    if numpy1:  # protocol 2 spells globals as text lines, so the numpy 1.x module name can be written directly
        blob = blob.replace(b"cnumpy._core.multiarray\nscalar\n", b"cnumpy.core.multiarray\nscalar\n")
        assert b"numpy.core.multiarray" in blob
    with open(path, "wb") as f:
        f.write(blob)
    return path
