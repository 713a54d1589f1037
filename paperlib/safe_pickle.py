"""A pickle reader that resolves only allow-listed globals: the base of every pickle paperlib reads.

A subclass lists the globals it accepts in ``allowed`` ((module, name) -> object to return). Anything else
raises :class:`UnsafePickleError` when the stream names it, before the stream can call it.
"""

from __future__ import annotations

import _compat_pickle
import pickle
from typing import Any, Callable


class UnsafePickleError(ValueError):
    """A pickle names a global outside the allow-list; nothing from the file was executed."""


def codecs_encode(text: str, encoding: str = "latin1") -> bytes:
    """How protocol-2 pickles spell a bytes object: ``_codecs.encode(str, 'latin1')``; nothing else is allowed."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"_codecs.encode({type(text).__name__}, {encoding!r}) is not allowed")
    return text.encode(encoding)


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler with an allow-list of globals; ``source`` (a file name) is quoted in every error."""

    allowed: dict[tuple[str, str], Any] = {}
    what = "this kind of file"

    def __init__(self, file, source: str = "<pickle>", **kwargs):
        super().__init__(file, **kwargs)
        self.source = source

    def resolve(self, module: str, name: str) -> Any | None:
        """Hook for subclasses: an object for (module, name) beyond the static allow-list, or None."""
        return None

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 era names (__builtin__, copy_reg) as protocol-2 streams write them, e.g. torch-1.x or CIFAR-10.
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) == ("_codecs", "encode"):
            return codecs_encode
        if (module, name) in self.allowed:
            return self.allowed[(module, name)]
        found = self.resolve(module, name)
        if found is not None:
            return found
        raise UnsafePickleError(f"{self.source}: refusing to load global '{module}.{name}', which is not on "
                                f"paperlib's allow-list for {self.what}; nothing from the file was executed")


Allowed = dict[tuple[str, str], Callable]
