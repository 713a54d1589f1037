"""Where paperlib's shipped files are: the digits feature net, the mini discriminator's two backbones and the two
mini teachers, all made by paperlib itself (``python -m paperlib featnet``, ``backbones``,
``scripts/train_mini_teachers.sh``) and carried in the wheel."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
ASSETS = PACKAGE / "assets"
ROOT = PACKAGE.parent  # the checkout, when paperlib runs from one (results and figures are written there)
# The mini teachers (8x8 digits, NCSN++ of 1.78M parameters), unconditional and class-conditional.
MINI_TEACHERS = {False: str(ASSETS / "teachers" / "digits-uncond.safetensors"),
                 True: str(ASSETS / "teachers" / "digits-cond.safetensors")}
