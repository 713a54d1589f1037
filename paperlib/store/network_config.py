"""Bounds on a network config read from a file (a paperlib network's JSON config, an EDM/GDD pickle's init kwargs),
checked before anything is expanded or built.

A pickle can share one list at two places of its kwargs, and a chain of such pairs doubles the paths at every level:
the config is walked once per distinct object, and its expanded size (what turning it into plain values would make)
is counted from the sizes of the parts, so a 600-byte file cannot ask for gigabytes. Every number that shapes the
network (levels, blocks per level, channels, resolution) is bounded before the network is built, even on the meta
device, where a loop over 10**9 blocks would still run; no number is NaN, and those of the preconditioning are finite
(but an infinite ``sigma_max``, EDM's default), as sampling with a NaN ``eps`` gives black images without an error.
"""

from __future__ import annotations

import math
from typing import Any

MAX_NODES = 1_000          # values in an expanded config: EDM's largest has about 40
MAX_DEPTH = 8              # nesting: EDM's configs have 2 levels
MAX_TEXT = 4096            # characters of a string value (names such as 'SongUNet', or a weights file's path)
MAX_INT = 2 ** 31          # any other whole number, in magnitude
# Whole numbers that set the network's size, and their ranges; EDM's released networks lie well inside them.
SIZE_RANGES = dict(img_resolution=(1, 4096), img_channels=(1, 64), label_dim=(0, 100_000), augment_dim=(0, 64),
                   model_channels=(1, 4096), channel_mult_emb=(1, 64), channel_mult_noise=(1, 64),
                   num_blocks=(0, 64), M=(1, 1_000_000))
# Lists of whole numbers: (most entries, range of each).
LIST_RANGES = dict(channel_mult=(16, (1, 64)), attn_resolutions=(16, (1, 4096)), resample_filter=(16, (0, 64)))
# Real numbers: their lowest allowed value; all are finite but sigma_max, whose default in EDM is infinity.
FLOAT_LOWEST = dict(sigma_min=0.0, sigma_max=0.0, sigma_data=0.0, eps=0.0, dropout=0.0, label_dropout=0.0,
                    beta_d=0.0, beta_min=0.0, epsilon_t=0.0)
MAY_BE_INFINITE = ("sigma_max",)


class ConfigError(ValueError):
    """A network config is larger, deeper or other than any network paperlib builds; the message names the key."""


def check_network_config(kwargs: Any, source: str) -> None:
    """Refuse (ConfigError naming ``source`` and the key) init kwargs that expand to more than :data:`MAX_NODES`
    values or nest deeper than :data:`MAX_DEPTH`, hold anything but None, bools, numbers, strings, lists and
    str-keyed dicts, a non-finite or out-of-range number, a string longer than :data:`MAX_TEXT`, or a size
    (:data:`SIZE_RANGES`, :data:`LIST_RANGES`) outside its range. Work is linear in the number of distinct objects."""
    if not isinstance(kwargs, dict):
        raise ConfigError(f"{source}: the network's init kwargs are {type(kwargs).__name__}, not a dict")
    _expanded_size(kwargs, source)
    for key, value in kwargs.items():
        if key in SIZE_RANGES:
            _check_int(value, SIZE_RANGES[key], f"{source}: {key}")
        elif key in LIST_RANGES:
            most, each = LIST_RANGES[key]
            if not isinstance(value, (list, tuple)) or len(value) > most:
                raise ConfigError(f"{source}: {key} is {_what(value)}; expected a list of at most {most} whole numbers")
            for i, entry in enumerate(value):
                _check_int(entry, each, f"{source}: {key}[{i}]")
        elif key in FLOAT_LOWEST and value is not None:
            number = _number(value)
            finite = number is not None and (math.isfinite(number) or (key in MAY_BE_INFINITE and number == math.inf))
            if isinstance(value, bool) or not finite or number < FLOAT_LOWEST[key]:
                raise ConfigError(f"{source}: {key} is {_what(value)}; expected a finite number of at least "
                                  f"{FLOAT_LOWEST[key]:g}")


def check_structure(value: Any, source: str) -> None:
    """Refuse (ConfigError naming ``source``) a structure read from a file or an argument that expands to more than
    :data:`MAX_NODES` values, nests deeper than :data:`MAX_DEPTH` or holds a leaf a config cannot (see
    :func:`check_network_config`); linear in the number of distinct objects."""
    _expanded_size(value, source, "its value")


def _number(value: Any) -> float | int | None:
    """A plain or numpy number's value (a pickle may hold numpy scalars), else None."""
    if isinstance(value, (int, float)):
        return value
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        plain = item()
        return plain if isinstance(plain, (int, float)) else None
    return None


def _what(value: Any) -> str:
    text = repr(value) if isinstance(value, (int, float, str)) and len(repr(value)) <= 40 else type(value).__name__
    return text


def _check_int(value: Any, bounds: tuple[int, int], where: str) -> None:
    number = _number(value)
    if isinstance(value, bool) or not isinstance(number, int) or not bounds[0] <= number <= bounds[1]:
        raise ConfigError(f"{where} is {_what(value)}; expected a whole number in [{bounds[0]}, {bounds[1]}]")


def _expanded_size(config: Any, source: str, root: str = "init kwargs") -> int:
    """The number of values ``config`` expands to, each distinct object visited once (shared ones counted per
    place, from their memoised size), refused above :data:`MAX_NODES` or :data:`MAX_DEPTH`."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Any, where: str, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise ConfigError(f"{source}: {where} nests deeper than {MAX_DEPTH} levels")
        if isinstance(node, (dict, list, tuple)):
            if id(node) in sizes:
                return sizes[id(node)]
            if id(node) in active:
                raise ConfigError(f"{source}: {where} refers to itself")
            active.add(id(node))
            items = node.items() if isinstance(node, dict) else enumerate(node)
            total = 1
            for key, child in items:
                if isinstance(node, dict) and not isinstance(key, str):
                    raise ConfigError(f"{source}: {where} has a key of type {type(key).__name__}; expected names")
                total += size(child, f"{where}.{key}" if isinstance(node, dict) else f"{where}[{key}]", depth + 1)
                if total > MAX_NODES:
                    raise ConfigError(f"{source}: {root} expands to more than {MAX_NODES:,} values (at {where})")
            active.discard(id(node))
            sizes[id(node)] = total
            return total
        _check_leaf(node, where, source)
        return 1

    return size(config, root, 0)


def _check_leaf(value: Any, where: str, source: str) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise ConfigError(f"{source}: {where} is a string of {len(value):,} characters; expected at most {MAX_TEXT}")
        return
    number = _number(value)
    if number is None:
        raise ConfigError(f"{source}: {where} is {type(value).__name__}; a network config holds numbers, strings, "
                          f"lists and dicts")
    if isinstance(number, int) and abs(number) > MAX_INT:
        raise ConfigError(f"{source}: {where} is a whole number of {number.bit_length():,} bits; expected at most "
                          f"{MAX_INT:,} in magnitude")
    if isinstance(number, float) and math.isnan(number):
        raise ConfigError(f"{source}: {where} is nan; expected a number")
