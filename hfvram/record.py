"""`record`: a dataclass that is cheaper to define.

`dataclasses.dataclass` writes the source of `__init__`, `__repr__`, `__eq__` (and, when frozen, `__hash__`,
`__setattr__` and `__delattr__`) for every class and compiles each with `exec`. On Python 3.11 that costs 0.5-3.6 ms
a class (3.6 ms for the 45 fields of `estimate.base.Settings`), measured on the 2-core machine `make bench` runs
on; the ~40 classes a single-model run defines took 35 ms of its ~65 ms of hfvram imports, more than the run itself.
`record` still makes a real dataclass (`fields`, `replace`, `asdict`, `is_dataclass` work as before), but shares one
`__repr__`, `__eq__` and `__hash__` among all of them instead of compiling three per class, which took the import
of the modules a single-model run loads from a median of 79 to 63 ms there (20 runs interleaved with the tree
before, 2026-12-03). The shared ones give what the generated ones give: the same repr text, equality on the fields
with `compare=True` of objects of the same class (NotImplemented otherwise), a hash of those fields for frozen
records, and no hash for the others.
"""

from __future__ import annotations

import dataclasses
from operator import attrgetter
from reprlib import recursive_repr

__all__ = ["record"]


def record(cls=None, /, *, frozen: bool = False, slots: bool = False):
    """`@record` / `@record(frozen=True, slots=True)`: `@dataclass` with the same arguments, defined faster."""
    if cls is None:
        return lambda c: _make(c, frozen, slots)
    return _make(cls, frozen, slots)


def _make(cls, frozen: bool, slots: bool):
    own = cls.__dict__
    keep_repr, keep_eq, keep_hash = "__repr__" in own, "__eq__" in own, "__hash__" in own
    cls = dataclasses.dataclass(cls, repr=False, eq=False, frozen=frozen, slots=slots)
    fields = dataclasses.fields(cls)
    compared = tuple(f.name for f in fields if f.compare)
    hashed = tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash))
    cls.__record_repr__ = tuple(f.name for f in fields if f.repr)
    cls.__record_key__ = staticmethod(_getter(compared))
    cls.__record_hash_key__ = staticmethod(_getter(hashed))
    if not keep_repr:
        cls.__repr__ = _repr
    if not keep_eq:
        cls.__eq__ = _eq
        if not keep_hash:  # as dataclass(eq=True): frozen records hash their fields, mutable ones are unhashable
            cls.__hash__ = _hash if frozen else None
    return cls


def _getter(names: tuple[str, ...]):
    """A function giving the tuple of these attributes, as the generated methods compare and hash."""
    if not names:
        return lambda obj: ()
    if len(names) == 1:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    return attrgetter(*names)


@recursive_repr()
def _repr(self) -> str:
    parts = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__record_repr__)
    return f"{self.__class__.__qualname__}({parts})"


def _eq(self, other):
    if other.__class__ is self.__class__:
        key = self.__record_key__
        return key(self) == key(other)
    return NotImplemented


def _hash(self) -> int:
    return hash(self.__record_hash_key__(self))
