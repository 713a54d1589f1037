"""paperlib: a reproducible artifact of "Diffusion Models Are Innate One-Step Generators" (GDD / GDD-I).

Modules, from the bottom up: ``io`` (atomic writes, figures, shipped assets, device choice), ``safe_pickle``,
``nets`` (EDM architectures), ``precond`` (denoisers and the one-step generator), ``checkpoints`` (safe EDM/GDD
pickles, paperlib's format), ``data``, ``diffusion`` (sampler, EDM loss), ``discriminators``, ``losses``,
``freezing``, ``rundir`` (a run's folder: lock, log, resume, states), ``train``, ``presets``, ``metrics``, ``grids``,
``experiments``, ``analysis`` and ``activation_plots`` (layers against noise level), ``curves``, ``tables``,
``reported``, ``report``; ``python -m paperlib`` is the command line.
"""

__version__ = "0.1.0"
