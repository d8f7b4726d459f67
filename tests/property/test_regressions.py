"""Failures the property tests found, kept as plain tests (one per bug).

Each test says what hypothesis found and why it failed. An open bug is marked
``xfail(strict=True)`` with the reason, so that its fix shows up as "XPASS" and the
marker gets removed; every bug below is fixed now.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from schematics import types

from redis_schematics import RangeIndex, UniqueIndex
from redis_schematics.exceptions import InvalidModel, QueryError, UniqueViolation
from tests.property.machine import LAYOUTS, LayoutCase


@pytest.fixture(params=LAYOUTS, ids=lambda case: case.name)
def case(request: pytest.FixtureRequest) -> LayoutCase:
    case: LayoutCase = request.param
    return case


def _model(
    case: LayoutCase, client: Any, expire: int | None = None, indexes: tuple[Any, ...] = (), **fields: Any
) -> Any:
    attrs = {
        "__redis_client__": client,
        "__prefix__": "Reg",
        "__expire__": expire,
        "__indexes__": (RangeIndex("n"), UniqueIndex("code"), *indexes),
        "n": types.IntType(),
        "code": types.StringType(),
        **fields,
    }
    return type(case.base)("Reg", (case.base,), attrs)


def test_set_many_refuses_two_new_objects_with_one_unique_value(case: LayoutCase, backend: Any) -> None:
    """LayoutsAgree found: ``set_many([a(code=""), b(code="")])`` stored both, leaving a
    duplicate unique value (``check_indexes``: "duplicate unique value").

    Cause: apply_write.lua checks each unique claim against what is stored before any
    operation of the write runs, so two claims in one call never see each other. Fixed
    in the library by refusing shared claims in Python before the script call.
    """
    model = _model(case, backend)
    with pytest.raises(UniqueViolation):
        model.set_many([model({"pk": "a", "code": ""}), model({"pk": "b", "code": ""})])
    assert model.all() == []
    assert model.check_indexes() == []
    # the same pk twice is one object (last wins): no clash with itself
    model.set_many([model({"pk": "a", "code": "X"}), model({"pk": "a", "code": "X", "n": 1})])
    assert [(o.pk, o.n) for o in model.filter(code="X")] == [("a", 1)]
    assert model.check_indexes() == []


# Was an open bug, fixed by Store.orphan_entries (purge finds entries without the payload).
def test_purge_after_payload_ttl_leaves_no_index_entry(case: LayoutCase, backend: Any) -> None:
    """ExpiringLayoutsAgree (with ``PAYLOAD_TTL_FIRES``) found: once an object's deadline
    and its payload TTL have both passed, ``purge_expired()`` removes the member but
    leaves every index entry, and the orphan unique claim refuses the value to every
    later object ("already belongs to Reg 'old'", an object that does not exist).

    Cause: ``Store.purge_expired`` builds the clean-up from ``stored_entries(pk,
    payload)``, which is empty when the payload is gone. The Simple layout gets there
    whenever nothing purges within 2 x ``__expire__`` while other writes keep the members
    and index keys alive.
    """
    model = _model(case, backend, expire=3600)
    model({"pk": "old", "n": 1, "code": "X"}).set()
    backend.zadd("Reg#members", {"old": 1}, xx=True)  # its deadline passed...
    case.drop_payload(backend, "Reg", "old")  # ...and so did the payload's TTL
    assert model.purge_expired() == 1
    problems = model.check_indexes()
    model({"pk": "new", "code": "X"}).set()  # raised UniqueViolation (a ghost owner)
    assert problems == []
    assert [o.pk for o in model.filter(code="X")] == ["new"]


# Was an open bug: such objects are now refused with InvalidModel before anything is written.
@pytest.mark.parametrize(
    ("field", "value"),
    [("when", dt.datetime(999, 12, 31, 23, 59)), ("day", dt.date(5, 1, 1))],
)
def test_old_years_round_trip_or_are_refused(case: LayoutCase, backend: Any, field: str, value: Any) -> None:
    """test_roundtrip found: ``set()`` stores ``datetime(999, 12, 31, 23, 59)`` as
    ``"999-12-31T23:59:00.000000"``; ``match_for_pk`` then raises CorruptPayload, and every
    scan of the model fails on that object.

    Cause: schematics 2.1.1 formats with ``strftime("%Y...")``, which does not pad years
    below 1000 on glibc, and its parser wants four digits. SPEC §6: bad input gets a clear
    error and writes nothing — here valid input is written and lost. Either fix (write
    a padded year, or refuse the object with InvalidModel) passes this test.
    """
    model = _model(case, backend, when=types.DateTimeType(), day=types.DateType())
    try:
        model({"pk": "old", field: value}).set()
    except InvalidModel:
        assert model.all() == []
        return
    assert getattr(model.match_for_pk("old"), field) == value
    assert [o.pk for o in model.all()] == ["old"]


# Was an open bug: now InvalidModel on write and InvalidFilterValue in filters.
def test_datetime_beyond_utc_range_gets_a_clear_error(case: LayoutCase, backend: Any) -> None:
    """Found while sizing the datetime strategy: ``9999-12-31T23:00-08:00`` is a valid
    aware datetime whose UTC conversion overflows. On an indexed field ``set()`` raises a
    bare OverflowError; on an unindexed field it is stored, and from then on every scan
    query comparing or ordering by that field raises OverflowError; a filter with that
    value raises OverflowError instead of InvalidFilterValue.
    """
    edge = dt.datetime(9999, 12, 31, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
    model = _model(
        case, backend, indexes=(RangeIndex("when"),), when=types.DateTimeType(), other=types.DateTimeType()
    )
    for name in ("when", "other"):  # indexed, then not
        with pytest.raises(QueryError):
            model.filter(**{name: edge})
        with pytest.raises(InvalidModel):
            model({"pk": "e", name: edge}).set()
        assert model.all() == []


@pytest.mark.parametrize("swap", [False, True], ids=["hand-over", "swap"])
def test_set_many_can_hand_a_unique_value_over(case: LayoutCase, backend: Any, swap: bool) -> None:
    """Found by modelling ``set_many`` as one atomic write (only a duplicate *after* the
    write is a violation): moving code "X" from "a" to "c" in one ``set_many``, or
    swapping the codes of "a" and "b", raised UniqueViolation although no two objects
    share a value afterwards.

    Cause: each "uniq" guard in apply_write.lua accepted only an absent claim or the
    claimant itself, not an owner that gives the value up in the same call. Fixed in
    the library while this suite was written (the test passes on the current tree).
    """
    model = _model(case, backend)
    model.set_many([model({"pk": "a", "code": "X"}), model({"pk": "b", "code": "Y"})])
    if swap:
        batch = [model({"pk": "a", "code": "Y"}), model({"pk": "b", "code": "X"})]
        expected = [("a", "Y"), ("b", "X")]
    else:
        batch = [model({"pk": "a", "code": "Z"}), model({"pk": "c", "code": "X"})]
        expected = [("a", "Z"), ("b", "Y"), ("c", "X")]
    model.set_many(batch)
    assert [(o.pk, o.code) for o in model.all()] == expected
    assert model.check_indexes() == []
