"""GDD-I layer freezing, expressed by module role.

GDD's rule (``--freeze=1`` in the authors' ``training/training_loop.py``) is a substring test on parameter names; in
the EDM architectures it is equivalent to: inside every UNetBlock (encoder/decoder blocks, the resampling blocks and
the decoder's bottleneck ``in0``/``in1``), freeze the children named by the level's roles. Everything outside
UNetBlocks (mapping network, stem conv, NCSN++ ``aux_*`` convs, output convs) and every GroupNorm and ``affine``
layer always trains.

Frozen parameters get ``requires_grad=False``: they stay out of the optimizer and autograd computes no weight
gradient for them.
"""

from __future__ import annotations

from torch import nn

from paperlib.nets.layers import UNetBlock

FREEZE_ROLES = {
    0: (),
    1: ("conv0", "conv1", "proj"),            # the paper's GDD-I: block convolutions and attention output projections
    2: ("conv0", "conv1", "proj", "qkv"),
    3: ("conv0", "conv1", "proj", "qkv", "skip"),
}


# The freeze ablation (``paperlib.ablation``): named policies from nothing frozen to everything but the
# normalisation and embedding layers, each freezing a superset of the one before. Values: (roles inside every
# UNetBlock, whether the convolutions outside UNetBlocks are frozen too: 'aux' = NCSN++'s aux_* convolutions,
# 'all' = every convolution and linear layer outside the noise/label embedding).
FREEZE_POLICIES = {
    "none": ((), ""),                                                       # GDD
    "conv1": (("conv1",), ""),
    "conv0+conv1": (("conv0", "conv1"), ""),
    "gddi": (FREEZE_ROLES[1], ""),                                          # the paper's GDD-I
    "gddi+skip+aux": (FREEZE_ROLES[1] + ("skip",), "aux"),
    "all-but-norm-embedding": (FREEZE_ROLES[3], "all"),
}
_EMBEDDING_PREFIXES = ("map_",)  # SongUNet's map_noise/map_label/map_augment/map_layer0/1, DhariwalUNet's map_*


def frozen_parameter_names(net: nn.Module, level: int | str) -> list[str]:
    """Names (state-dict order) of the parameters frozen at ``level``: GDD-I's level 0-3 (the authors'
    ``--freeze``), or a policy name of :data:`FREEZE_POLICIES`."""
    if isinstance(level, str) and level in FREEZE_POLICIES:
        roles, outside = FREEZE_POLICIES[level]
    elif level in FREEZE_ROLES:
        roles, outside = FREEZE_ROLES[level], ""
    else:
        raise ValueError(f"freeze level must be one of {sorted(FREEZE_ROLES)} or a policy in {list(FREEZE_POLICIES)}, "
                         f"got {level!r}")
    frozen = set()
    blocks = [(name, block) for name, block in net.named_modules() if isinstance(block, UNetBlock)]
    for block_name, block in blocks:
        for role in roles:
            child = getattr(block, role, None)
            if child is not None:
                frozen.update(f"{block_name}.{role}.{p}" for p, _ in child.named_parameters())
    if outside:
        for name, module in net.named_modules():
            if any(name.startswith(b + ".") or name == b for b, _ in blocks) or len(list(module.children())):
                continue
            leaf = name.rsplit(".", 1)[-1]
            if "GroupNorm" in type(module).__name__ or leaf.startswith(_EMBEDDING_PREFIXES):
                continue  # normalisation and embeddings always train
            if outside == "all" or "aux_" in leaf:
                frozen.update(f"{name}.{p}" for p, _ in module.named_parameters(recurse=False))
    return [name for name, _ in net.named_parameters() if name in frozen]


def apply_freezing(net: nn.Module, level: int | str) -> dict:
    """Freeze ``net`` in place at ``level`` (see :func:`frozen_parameter_names`); returns counts: tensors/params
    frozen and the frozen fraction."""
    names = set(frozen_parameter_names(net, level))
    frozen_params = total = frozen_tensors = 0
    for name, p in net.named_parameters():
        total += p.numel()
        if name in names:
            p.requires_grad_(False)
            frozen_params += p.numel()
            frozen_tensors += 1
    return dict(level=level, frozen_tensors=frozen_tensors, frozen_params=frozen_params, total_params=total,
                frozen_fraction=frozen_params / max(total, 1))
