"""The paper's reported numbers (arXiv 2405.20750; EDM, arXiv 2206.00364), put beside paperlib's own.

All FIDs are Inception FIDs with 50,000 samples against EDM's reference statistics. The mini datasets have no
reported numbers of their own; their tables show the paper's numbers for the CIFAR-10 setting they stand in for
(the same kind of model, unconditional or class-conditional, 35-NFE teacher), labelled as such.
"""

from __future__ import annotations

# dataset -> row kind -> (FID, source). Row kinds: "teacher" (EDM at its usual NFE), "gdd", "gddi".
REPORTED: dict[str, dict] = {
    "cifar10": dict(name="CIFAR-10 32x32 uncond", teacher_nfe=35,
                    teacher=(1.97, "EDM, 35 NFE"), gdd=(None, "not published in text we hold"),
                    gddi=(1.54, "abstract (authors' README: 1.56)"), kimg=5000),
    "cifar10-cond": dict(name="CIFAR-10 32x32 cond", teacher_nfe=35,
                         teacher=(1.79, "EDM, 35 NFE"), gdd=(None, "not published in text we hold"),
                         gddi=(1.44, "quoted in arXiv 2502.15681, Table 2"), kimg=5000),
    "afhqv2-64": dict(name="AFHQv2 64x64", teacher_nfe=79,
                      teacher=(1.96, "EDM, 79 NFE"), gdd=(1.23, "abstract"),
                      gddi=(1.31, "weak source (authors' README: 1.24)"), kimg=7000),
    "ffhq-64": dict(name="FFHQ 64x64", teacher_nfe=79,
                    teacher=(2.39, "EDM, 79 NFE"), gdd=(None, "not published in text we hold"),
                    gddi=(0.85, "abstract (authors' README: 0.83)"), kimg=9000),
    "imagenet-64": dict(name="ImageNet 64x64 cond", teacher_nfe=79,
                        teacher=(2.64, "EDM (authors' README)"), gdd=(1.42, "abstract; recall 0.59"),
                        gddi=(1.16, "abstract; recall 0.60"), kimg=6000),
}

# The mini datasets stand in for these paper settings.
ANALOGUE = {"digits": "cifar10", "digits-cond": "cifar10-cond"}

# Figure 1A (ImageNet 64x64): (method, training images in millions, FID), read by eye from the published image.
FIGURE_1A = [("PD", 1300, 15.4), ("BOOT", 300, 16.3), ("CD", 120, 6.2), ("DMD", 120, 2.6), ("SiD (1e5 K)", 100, 2.4),
             ("SiD (1e6 K)", 1000, 1.5), ("CTM", 65, 1.9), ("GDD", 5, 1.4), ("GDD-I", 5, 1.16)]


def reported_for(dataset: str, row_kind: str, nfe: int | None = None) -> tuple[float | None, str]:
    """The reported FID for a row of ``dataset``'s table and a label saying where it comes from.

    ``row_kind`` is 'teacher' (only at the paper's usual NFE), 'gdd' or 'gddi'; other rows have none.
    """
    paper = ANALOGUE.get(dataset, dataset)
    entry = REPORTED.get(paper)
    if entry is None or row_kind not in ("teacher", "gdd", "gddi"):
        return None, ""
    if row_kind == "teacher" and nfe != entry["teacher_nfe"]:
        return None, ""
    value, source = entry[row_kind]
    where = entry["name"] + (" (stand-in)" if paper != dataset else "")
    return value, f"{where}: {source}"

# What the paper reports for each of the protocol's claims (the claims table's "the paper" column).
CLAIM_FIGURES = {
    "one-step": "CIFAR-10: GDD-I 1.54 in one step",
    "gddi-teacher": "CIFAR-10: GDD-I 1.54, EDM 1.97 at 35 NFE",
    "gdd-teacher": "AFHQv2 64: GDD 1.23, EDM 1.96 at 79 NFE",
    "freezing": "ImageNet 64: GDD-I 1.16, GDD 1.42",
    "gan-vs-instance": "Figure 1A (ImageNet 64, by eye): GDD-I ~1.16 from ~5M images; PD ~15.4, CD ~6.2",
    "projected-d": "not tested (the paper's discriminator is the projected one)",
    "gddi-copies": "not measured",
    "gdd-copies": "not measured",
    "stabilises": "not measured",
    "better-at-best": "ImageNet 64: GDD-I 1.16, GDD 1.42 (each at the authors' rate)",
}
