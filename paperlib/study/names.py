"""The names of the mini-scale studies and what each one does: what ``python -m paperlib run --help`` lists, kept
apart from :mod:`paperlib.study.registry` so that the command line starts without importing the study."""

STUDY_HELP = {
    "rates": "the protocol's rate sweeps: every table method on one grid of rates, 2 pilot seeds, choosing GDD's "
             "and GDD-I's common rate and each method's own",
    "evidence": "the protocol's tables at 144 kimg, at the rates the sweeps chose, seeds by power, with every "
                "claim's verdict (needs the rates study)",
    "freeze-rates": "the protocol's freeze-ablation pilots (digits): every freezing policy on the grid of rates, "
                    "2 pilot seeds, choosing each policy's best rate",
    "freeze-evidence": "the protocol's freeze ablation (digits, 48 kimg, 3 seeds per policy at its best rate, "
                       "'none' and 'gddi' also at 1e-3) and its two verdicts (needs freeze-rates)",
    "confirm": "Amendment 2's confirmation study: GDD and GDD-I at the common rate on fresh seeds, 144 kimg, and "
               "its family's verdicts (recall, near-copy share), always on both datasets (needs the rates study)",
    "layers": "the layer-activation study on each dataset's teacher and the GDD and GDD-I networks of the mini "
              "presets (seed 1, trained where this checkout lacks them)",
}
