"""What a concurrent writer can and cannot do to a write in flight (fakeredis and real).

The interleavings are forced, not hoped for: the other writer runs between the read a
method makes and the write it sends.
"""

from __future__ import annotations

from typing import Any

import pytest
from schematics import types

from redis_schematics import RangeIndex, UniqueIndex


def stock(base: type, client: Any) -> Any:
    return type(base)(
        "Stock",
        (base,),
        {
            "__redis_client__": client,
            "__indexes__": ("flavour", RangeIndex("amount"), UniqueIndex("code")),
            "id": types.StringType(),
            "flavour": types.StringType(),
            "amount": types.IntType(),
            "code": types.StringType(),
        },
    )


def test_delete_filter_rechecks_an_object_changed_after_it_was_read(
    layout: type, backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = stock(layout, backend)
    model.set_many(
        [model({"id": pk, "flavour": "vanilla", "amount": n, "code": pk}) for n, pk in enumerate("abc")]
    )
    writes = model._engine().writes
    delete_pks = writes.delete_pks

    def someone_writes_first(pks: Any, **kw: Any) -> Any:
        model({"id": "b", "flavour": "mint", "amount": 1, "code": "b"}).set()  # no longer matches
        model({"id": "c", "flavour": "vanilla", "amount": 99, "code": "c"}).set()  # still matches
        return delete_pks(pks, **kw)

    monkeypatch.setattr(writes, "delete_pks", someone_writes_first)
    assert model.delete_filter(flavour="vanilla") == 2
    monkeypatch.undo()
    assert [(o.id, o.flavour) for o in model.all()] == [("b", "mint")]
    assert model.check_indexes() == []


def test_update_reapplies_fn_to_a_state_changed_between_its_read_and_its_write(
    layout: type, backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guarded write refuses the stale state; fn runs again on the new one; the index
    entries of both older states are gone."""
    model = stock(layout, backend)
    model({"id": "a", "flavour": "vanilla", "amount": 1, "code": "old"}).set()
    engine = model._engine()
    read = engine.read
    calls = []

    def meddling_read(pks: Any, fields: Any = None) -> Any:
        result = yield from read(pks, fields)
        if not calls:  # between our read and our write, someone else writes "a"
            calls.append(1)
            other = stock(layout, backend)
            other({"id": "a", "flavour": "lemon", "amount": 7, "code": "theirs"}).set()
        return result

    monkeypatch.setattr(engine, "read", meddling_read)
    model.update("a", lambda o: setattr(o, "flavour", "mint"))
    monkeypatch.undo()
    stored = model.match_for_pk("a")
    assert (stored.flavour, stored.amount, stored.code) == ("mint", 7, "theirs")  # re-read, re-applied
    assert model.count(flavour="lemon") == 0
    assert model.count(code="old") == 0
    assert model.check_indexes() == []
