"""A pickle reader that resolves only allow-listed globals: the base of every pickle paperlib reads.

A subclass lists the globals it accepts in ``allowed`` ((module, name) -> object to return). Anything else
raises :class:`UnsafePickleError` when the stream names it, before the stream can call it.

It is built on Python's pure-Python unpickler, whose memo is a dict, so a tiny file cannot make it allocate for a
huge memo index (the C unpickler grows an array to the index); and no object read from a file may claim more
bytes than the file holds.
"""

from __future__ import annotations

import _compat_pickle
import pickle
import struct
from typing import Any


class UnsafePickleError(ValueError):
    """A pickle names a global outside the allow-list; nothing from the file was executed."""


def codecs_encode(text: str, encoding: str = "latin1") -> bytes:
    """How protocol-2 pickles spell a bytes object: ``_codecs.encode(str, 'latin1')``; nothing else is allowed."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"_codecs.encode({type(text).__name__}, {encoding!r}) is not allowed")
    return text.encode(encoding)


class _BoundedReader:
    """A file whose reads never ask for more than is left of ``size`` bytes, so that a length read from the stream
    cannot make a read allocate more than the file holds."""

    def __init__(self, file, size: int):
        self.file, self.left = file, size

    def read(self, n: int = -1) -> bytes:
        data = self.file.read(self.left if n is None or n < 0 else min(n, self.left))
        self.left -= len(data)
        return data

    def readline(self) -> bytes:
        line = self.file.readline()
        self.left -= len(line)
        return line

    def readinto(self, buf) -> int:
        n = self.file.readinto(buf)
        self.left -= n
        return n


class RestrictedUnpickler(pickle._Unpickler):
    """Unpickler with an allow-list of globals; ``source`` (a file name) is quoted in every error; ``max_bytes``
    (the file's size) bounds every object the stream asks to allocate."""

    allowed: dict[tuple[str, str], Any] = {}
    what = "this kind of file"
    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, source: str = "<pickle>", max_bytes: int | None = None, **kwargs):
        super().__init__(file if max_bytes is None else _BoundedReader(file, max_bytes), **kwargs)
        self.source = source
        self.max_bytes = max_bytes

    def _load_bytearray8(self) -> None:
        (size,) = struct.unpack("<Q", self.read(8))
        if self.max_bytes is not None and size > self.max_bytes:
            raise UnsafePickleError(f"{self.source}: a bytearray of {size} bytes is claimed in a file of "
                                    f"{self.max_bytes} bytes; refused before allocating it")
        buf = bytearray(size)
        self.readinto(buf)
        self.append(buf)
    dispatch[pickle.BYTEARRAY8[0]] = _load_bytearray8

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

