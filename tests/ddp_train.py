"""Run under torchrun by test_train: train each run of the JSON list in argv[1] ({"run_dir", "preset", "overrides"}),
one after another in one process group, so that one launch (its start-up is most of its time) serves several
multi-process tests. The runs go through :func:`paperlib.training.train`, as ``python -m paperlib train`` does."""

import json
import sys

from paperlib.presets import preset_config
from paperlib.training import train

for run in json.loads(sys.argv[1]):
    train(preset_config(run["preset"], run_dir=run["run_dir"], **run["overrides"]), progress=False)
