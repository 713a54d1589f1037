"""paperlib: a reproducible artifact of "Diffusion Models Are Innate One-Step Generators" (GDD / GDD-I).

Modules, from the bottom up: ``nets`` (EDM architectures), ``precond`` (denoisers and the one-step generator),
``checkpoints`` (safe EDM/GDD pickles, paperlib's format), ``data``, ``diffusion`` (sampler, EDM loss),
``discriminators``, ``losses``, ``freezing``, ``train``, ``presets``, ``metrics``, ``grids``, ``experiments``,
``tables``; ``python -m paperlib`` is the command line.
"""

__version__ = "0.1.0"
