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


def frozen_parameter_names(net: nn.Module, level: int) -> list[str]:
    """Names (state-dict order) of the parameters GDD-I freezes at ``level`` (0-3)."""
    if level not in FREEZE_ROLES:
        raise ValueError(f"freeze level must be one of {sorted(FREEZE_ROLES)}, got {level}")
    roles = FREEZE_ROLES[level]
    frozen = set()
    for block_name, block in net.named_modules():
        if isinstance(block, UNetBlock):
            for role in roles:
                child = getattr(block, role, None)
                if child is not None:
                    frozen.update(f"{block_name}.{role}.{p}" for p, _ in child.named_parameters())
    return [name for name, _ in net.named_parameters() if name in frozen]


def apply_freezing(net: nn.Module, level: int) -> dict:
    """Freeze ``net`` in place at ``level``; returns counts: tensors/params frozen and the frozen fraction."""
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
