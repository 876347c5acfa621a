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

What `dataclass` still compiles (`__init__`, and a frozen record's `__setattr__` and `__delattr__`) is compiled once
and kept, as Python keeps a module's bytecode: the code objects, keyed by their exact source text, in
`hfvram/__pycache__/records.<cache tag>.<magic>.marshal` (the interpreter's bytecode version in the name), loaded on
the first record of a run. `dataclass` builds the same text for the same class, so a kept code object is the one it
would compile; a text not kept is compiled as before. The ~84 compiles of a single-model run took ~27 ms of its
imports on the 2-core machine (`cProfile`: `exec` inside `dataclasses`); loading them takes ~1 ms. The file is written
at exit by a run that compiled something new, unless Python is told not to write bytecode (PYTHONDONTWRITEBYTECODE,
`-B`); `python -m hfvram.record` writes it for every record of the package (`make` does, as pip compiles a wheel's
modules when it installs them). A file that does not load is ignored and written again.
"""

from __future__ import annotations

import dataclasses
import marshal
import os
import sys
import threading
from operator import attrgetter
from reprlib import recursive_repr
from types import CodeType

__all__ = ["record"]


def record(cls=None, /, *, frozen: bool = False, slots: bool = False):
    """`@record` / `@record(frozen=True, slots=True)`: `@dataclass` with the same arguments, defined faster."""
    if cls is None:
        return lambda c: _make(c, frozen, slots)
    return _make(cls, frozen, slots)


def _make(cls, frozen: bool, slots: bool):
    own = cls.__dict__
    keep_repr, keep_eq, keep_hash = "__repr__" in own, "__eq__" in own, "__hash__" in own
    _making.on = True  # dataclass's compiles go through _kept_exec
    try:
        cls = dataclasses.dataclass(cls, repr=False, eq=False, frozen=frozen, slots=slots)
    finally:
        _making.on = False
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


# -- the compiled methods, kept between runs ---------------------------------------------------------------------------

def _code_file() -> str:
    try:
        from importlib.util import MAGIC_NUMBER
    except ImportError:  # pragma: no cover - every CPython has it
        return ""
    tag = sys.implementation.cache_tag or "python"
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__",
                        f"records.{tag}.{MAGIC_NUMBER.hex()}.marshal")


class _Kept:
    """The code objects of this run: those loaded from the file, and whether any was compiled anew."""

    def __init__(self, path: str):
        self.path = path
        self.codes: dict = {}
        self.used: set = set()
        self.compiled = 0
        self.lock = threading.Lock()
        if path:
            try:
                with open(path, "rb") as fh:
                    codes = marshal.loads(fh.read())
                if isinstance(codes, dict):
                    self.codes = {k: v for k, v in codes.items() if type(k) is str and type(v) is CodeType}
            except (OSError, EOFError, ValueError, TypeError):
                pass  # none yet, or damaged: compiled again and written anew

    def code(self, source: str):
        with self.lock:
            code = self.codes.get(source)
            if code is None:
                code = self.codes[source] = compile(source, "<string>", "exec", dont_inherit=True)
                if not self.compiled and not sys.dont_write_bytecode:
                    import atexit

                    atexit.register(self.save)
                self.compiled += 1
            self.used.add(source)
            return code

    def save(self) -> bool:
        """Write the file (atomically); False when it cannot be written. Keeps what was loaded too (other commands
        define other records), unless that grew past MAX_KEPT: then only this run's."""
        with self.lock:
            codes = self.codes if len(self.codes) <= MAX_KEPT else {k: self.codes[k] for k in self.used}
            data = marshal.dumps(codes)
        if not self.path:
            return False
        tmp = f"{self.path}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, self.path)
            return True
        except OSError:  # a read-only install: compiled every run, as before
            try:
                os.unlink(tmp)
            except OSError:
                pass
            return False


# The package's records need ~120 code objects (119 written by `python -m hfvram.record`); 2,000 leaves room for
# the texts of several releases of Python's dataclasses and of hfvram before the file is trimmed to one run's.
MAX_KEPT = 2000
_making = threading.local()
_kept: _Kept | None = None


def _kept_exec(source, globals=None, locals=None, /, **kwargs):
    """`exec` as `dataclasses` calls it: a record's source text runs the kept code object compiled from it."""
    global _kept
    if type(source) is str and getattr(_making, "on", False):
        if _kept is None:
            _kept = _Kept(_code_file())
        source = _kept.code(source)
    return exec(source, globals, locals, **kwargs)


dataclasses.exec = _kept_exec  # a name in dataclasses' globals shadows the builtin for its own calls


def compile_all() -> str:
    """Import every module of the package and write the file, whatever PYTHONDONTWRITEBYTECODE says: what
    `python -m hfvram.record` does (after an install, as pip compiles a wheel's modules)."""
    import importlib
    import pkgutil

    import hfvram

    for mod in pkgutil.walk_packages(hfvram.__path__, "hfvram."):
        if mod.name != "hfvram.__main__":
            importlib.import_module(mod.name)
    kept = _kept if _kept is not None else _Kept(_code_file())
    if not kept.save():
        raise SystemExit(f"hfvram.record: cannot write {kept.path}")
    return kept.path


if __name__ == "__main__":  # run as a script, this file is not the hfvram.record the package's records use
    from hfvram import record as _record

    print(f"{_record.compile_all()}: {len(_record._kept.codes)} compiled methods of records")
