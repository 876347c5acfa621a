"""`hfvram.record.record` behaves as `dataclasses.dataclass` does: the same repr, equality, hash and errors."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from dataclasses import field

import pytest

import hfvram
from hfvram.record import record


def twins(body: dict, **kw):
    """The same class body made by `dataclass` and by `record`."""
    made = []
    for deco in (dataclasses.dataclass, record):
        ns = dict(body)
        cls = type("Point", (), ns)
        made.append(deco(**kw)(cls) if kw else deco(cls))
    return made


BODY = {"__annotations__": {"x": "int", "y": "list", "tag": "str", "note": "str"},
        "tag": field(default="t", compare=False), "note": field(default="n", repr=False)}


@pytest.mark.parametrize("kw", [{}, {"frozen": True}, {"frozen": True, "slots": True}, {"slots": True}])
def test_same_repr_eq_hash_as_dataclass(kw):
    dc, rc = twins(BODY, **kw)
    a_dc, a_rc = dc(1, [2], "a", "b"), rc(1, [2], "a", "b")
    assert repr(a_rc) == repr(a_dc) == "Point(x=1, y=[2], tag='a')"
    # equality ignores compare=False fields, needs the same class, and is NotImplemented otherwise
    assert rc(1, [2], "a") == rc(1, [2], "other")
    assert rc(1, [2]) != rc(1, [3])
    assert a_rc.__eq__(a_dc) is NotImplemented and a_dc.__eq__(a_rc) is NotImplemented
    assert a_rc != (1, [2])
    assert dataclasses.is_dataclass(rc) and [f.name for f in dataclasses.fields(rc)] == ["x", "y", "tag", "note"]
    assert dataclasses.replace(a_rc, x=5).x == 5 and dataclasses.asdict(a_rc)["y"] == [2]
    if kw.get("frozen"):
        h_dc, h_rc = dc(1, (2,), "a"), rc(1, (2,), "b")
        assert hash(h_rc) == hash(h_dc) == hash((1, (2,), "n"))  # note: compared, so hashed
        with pytest.raises(dataclasses.FrozenInstanceError):
            a_rc.x = 3
    else:
        with pytest.raises(TypeError, match="unhashable"):
            hash(a_rc)
        with pytest.raises(TypeError, match="unhashable"):
            hash(a_dc)


def test_one_field_and_no_field_records_compare_as_tuples():
    one = record(frozen=True)(type("One", (), {"__annotations__": {"v": "float"}}))
    none = record(frozen=True)(type("Empty", (), {}))
    nan = float("nan")
    assert one(nan) == one(nan)  # the same object: tuple comparison tests identity first, as dataclass's does
    assert one(float("nan")) != one(float("nan"))
    assert hash(one(2.0)) == hash((2.0,))
    assert none() == none() and hash(none()) == hash(()) and repr(none()) == "Empty()"


def test_subclass_and_own_methods():
    @record(frozen=True)
    class Base:
        a: int

        def __repr__(self):
            return "mine"

    @record(frozen=True)
    class Child(Base):
        b: int = 0

    assert repr(Base(1)) == "mine"
    assert repr(Child(1, 2)).endswith(".<locals>.Child(a=1, b=2)")  # its own repr, as dataclass writes one
    assert Child(1, 2) == Child(1, 2) and Child(1, 2) != Child(1, 3) and Base(1) != Child(1)
    assert hash(Child(1, 2)) == hash((1, 2))


def test_recursive_repr():
    @record
    class Node:
        nxt: object = None

    n = Node()
    n.nxt = n
    assert repr(n).endswith("Node(nxt=...)")


def test_every_record_in_hfvram_is_a_dataclass_with_shared_methods():
    seen = 0
    for info in pkgutil.walk_packages(hfvram.__path__, "hfvram."):
        mod = importlib.import_module(info.name)
        for obj in vars(mod).values():
            if isinstance(obj, type) and obj.__module__ == mod.__name__ and dataclasses.is_dataclass(obj):
                assert "__record_key__" in obj.__dict__, f"{obj.__qualname__} in {mod.__name__}: use @record"
                seen += 1
    assert seen >= 60


def test_compiled_methods_are_kept_and_reused_as_dataclass_compiles_them(tmp_path, monkeypatch):
    """A record's `__init__`, `__setattr__` and `__delattr__` are compiled once, written to the file, and taken from it
    by the next run (a fresh `_Kept` over the same file): the same code `dataclass` compiles, no compile."""
    from hfvram import record as rec

    path = str(tmp_path / "records.marshal")
    body = {"__annotations__": {"x": "int", "y": "list", "z": "int"}, "y": field(default_factory=list), "z": 3,
            "__post_init__": lambda self: object.__setattr__(self, "z", self.z * 2)}
    first = rec._Kept(path)
    monkeypatch.setattr(rec, "_kept", first)
    made = record(frozen=True)(type("P", (), dict(body)))
    assert first.compiled == 3 and len(first.codes) == 3  # __init__, then __setattr__ and __delattr__
    assert first.save() and (tmp_path / "records.marshal").stat().st_size > 0

    again = rec._Kept(path)
    monkeypatch.setattr(rec, "_kept", again)
    kept = record(frozen=True)(type("P", (), dict(body)))
    plain = dataclasses.dataclass(frozen=True, repr=False, eq=False)(type("P", (), dict(body)))
    assert again.compiled == 0 and again.used == set(first.codes)
    for name in ("__init__", "__setattr__", "__delattr__"):
        code, want = getattr(kept, name).__code__, getattr(plain, name).__code__
        assert (code.co_code, code.co_consts, code.co_varnames) == (want.co_code, want.co_consts, want.co_varnames)
    p = kept(1)
    assert (p.x, p.y, p.z) == (1, [], 6) and p == kept(1) and repr(p) == repr(made(1)) == "P(x=1, y=[], z=6)"
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'x'"):
        p.x = 2
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'x'"):
        kept()

    # a file that does not load is ignored (compiled again), and one that cannot be written fails softly
    (tmp_path / "records.marshal").write_bytes(b"\x00not marshal")
    damaged = rec._Kept(path)
    assert damaged.codes == {}
    monkeypatch.setattr(rec, "_kept", damaged)
    record(frozen=True)(type("P", (), dict(body)))
    assert damaged.compiled == 3
    assert rec._Kept(str(tmp_path / "records.marshal" / "under-a-file")).save() is False


def test_only_records_go_through_the_kept_code():
    from hfvram import record as rec

    before = (rec._kept.compiled, len(rec._kept.codes)) if rec._kept else (0, 0)
    dataclasses.dataclass(type("Q", (), {"__annotations__": {"a": "int"}}))
    assert ((rec._kept.compiled, len(rec._kept.codes)) if rec._kept else (0, 0)) == before
