"""Round trips on every layout and client kind.

* ``set`` then ``match_for_pk`` (and ``match_for_pks``, ``filter(pk=...)``) gives back the
  same ``to_primitive()`` — compared as JSON text, so ``-0.0`` and key order count — for
  scalar, list, dict and nested model fields.
* A filter value given as a native or as a primitive text (ISO datetime, ``"42"``,
  ``"true"``, a UUID's hex...) selects the same objects, and those are the objects the
  oracle's own reading of SPEC §1 selects.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schematics import models, types
from schematics.types import compound

from redis_schematics import EqualityIndex, RangeIndex
from redis_schematics.exceptions import InvalidModel, InvalidPrimaryKey
from redis_schematics.serializers import normalize
from tests.dbstate import db_state
from tests.property.machine import LAYOUTS
from tests.property.oracle import comparable, holds
from tests.property.strategies import (
    OPERATORS,
    TIMEZONES,
    codes,
    datetimes,
    floats,
    ints,
    optional,
    pks,
    storable_text,
    texts,
    wild_dates,
    wild_datetimes,
    wild_decimals,
    wild_floats,
    wild_texts,
)

# hypothesis runs many examples in one test call; each example flushes the db itself
FIXTURE_OK = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


class Inner(models.Model):
    name = types.StringType()
    n = types.IntType()
    when = types.DateTimeType()
    tags = compound.ListType(types.StringType())


def _roundtrip_fields() -> dict[str, Any]:
    return {
        "s": types.StringType(),
        "i": types.IntType(),
        "f": types.FloatType(),
        "b": types.BooleanType(),
        "dt": types.DateTimeType(),
        "d": types.DateType(),
        "dec": types.DecimalType(),
        "u": types.UUIDType(),
        "ints": compound.ListType(types.IntType()),
        "tags": compound.ListType(types.StringType()),
        "attrs": compound.DictType(types.StringType()),
        "scores": compound.DictType(types.FloatType()),
        "inner": compound.ModelType(Inner),
        "inners": compound.ListType(compound.ModelType(Inner)),
    }


def _models(client: Any, fields: Any, indexes: Any = None, tag: str = "rt") -> list[type]:
    out = []
    for case in LAYOUTS:
        for indexed in (True, False) if indexes else (False,):
            attrs = {
                "__redis_client__": client,
                "__prefix__": f"{tag}.{case.name}.{'idx' if indexed else 'plain'}",
                "__indexes__": indexes if indexed else None,
                **fields(),
            }
            out.append(type(case.base)(f"{tag}{case.name}", (case.base,), attrs))
    return out


@pytest.fixture
def roundtrip_models(client: Any) -> list[type]:
    return _models(client, _roundtrip_fields)


dates = st.dates()  # years below 1000 are stored with four digits
decimals = st.one_of(
    st.sampled_from(["0", "-0", "1.0", "1.00", "1e3", "123456789012345678901234567890.000001", "-1.5"]).map(
        decimal.Decimal
    ),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
)
uuids = st.uuids()
small_texts = st.one_of(texts, st.text(max_size=8))
inner_values = st.fixed_dictionaries(
    {
        "name": optional(small_texts),
        "n": optional(ints),
        "when": optional(datetimes),
        "tags": optional(st.lists(small_texts, max_size=3)),
    }
)
object_data = st.fixed_dictionaries(
    {
        "pk": pks,
        "s": optional(small_texts),
        "i": optional(ints),
        "f": optional(floats),
        "b": optional(st.booleans()),
        "dt": optional(datetimes),
        "d": optional(dates),
        "dec": optional(decimals),
        "u": optional(uuids),
        "ints": optional(st.lists(ints, max_size=4)),
        "tags": optional(st.lists(small_texts, max_size=4)),
        "attrs": optional(st.dictionaries(small_texts, small_texts, max_size=3)),
        "scores": optional(st.dictionaries(small_texts, floats, max_size=3)),
        "inner": optional(inner_values),
        "inners": optional(st.lists(inner_values, max_size=3)),
    }
)


def _json(primitive: Any) -> str:
    return json.dumps(primitive, sort_keys=True, ensure_ascii=False)


@FIXTURE_OK
@given(data=object_data)
def test_set_then_match_for_pk_gives_the_same_primitive(
    client: Any, roundtrip_models: list[type], data: dict[str, Any]
) -> None:
    client.flushdb()
    pk = data["pk"]
    for model in roundtrip_models:
        obj = model(data)
        expected = _json(obj.to_primitive())
        obj.set()
        assert _json(model.match_for_pk(pk).to_primitive()) == expected, model
        (again,) = model.match_for_pks([pk])
        assert _json(again.to_primitive()) == expected, model
        assert [_json(o.to_primitive()) for o in model.filter(pk=pk)] == [expected], model
        assert model.check_indexes() == []


# -- filters: natives and primitives ------------------------------------------------------
def _filter_fields() -> dict[str, Any]:
    return {
        "s": types.StringType(),
        "i": types.IntType(),
        "f": types.FloatType(),
        "b": types.BooleanType(),
        "dt": types.DateTimeType(),
        "d": types.DateType(),
        "dec": types.DecimalType(),
        "u": types.UUIDType(),
    }


FILTER_INDEXES = (
    EqualityIndex("s"),
    EqualityIndex("b"),
    EqualityIndex("u"),
    RangeIndex("i"),
    RangeIndex("f"),
    RangeIndex("dt"),
    RangeIndex("d"),
    RangeIndex("dec"),
)
UUID_POOL = [uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID("12345678-1234-5678-1234-567812345678")]
FILTER_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "s": codes,
    "i": ints,
    "f": floats,
    "b": st.booleans(),
    "dt": datetimes,
    # the oracle reads schematics' own to_primitive(), which cannot parse a year below 1000
    "d": st.one_of(
        st.sampled_from([dt.date(2020, 2, 29), dt.date(1970, 1, 1)]), st.dates(dt.date(1000, 1, 1))
    ),
    "dec": decimals,
    "u": st.one_of(st.sampled_from(UUID_POOL), uuids),
}


def primitive_forms(name: str, value: Any) -> list[Any]:
    """Ways a user may write ``value`` as text in a filter."""
    if isinstance(value, bool):
        return ["true" if value else "false", "True" if value else "False", int(value)]
    if isinstance(value, dt.datetime):
        forms = [value.isoformat(), types.DateTimeType().to_primitive(value)]
        if value.tzinfo is not None and value.utcoffset() == dt.timedelta(0):
            forms.append(value.replace(tzinfo=None).isoformat() + "Z")
        return forms
    if isinstance(value, dt.date):
        return [value.isoformat()]
    if isinstance(value, uuid.UUID):
        return [str(value), value.hex]
    if isinstance(value, float):
        return [repr(value)]
    return [str(value)]


@pytest.fixture
def filter_models(client: Any) -> list[type]:
    return _models(client, _filter_fields, FILTER_INDEXES, tag="fv")


@FIXTURE_OK
@given(
    rows=st.lists(
        st.fixed_dictionaries({n: optional(v) for n, v in FILTER_VALUES.items()}), min_size=1, max_size=6
    ),
    name=st.sampled_from(list(FILTER_VALUES)),
    op=st.sampled_from(OPERATORS),
    data=st.data(),
)
def test_filter_by_primitive_equals_filter_by_native(
    client: Any, filter_models: list[type], rows: list[dict[str, Any]], name: str, op: str, data: Any
) -> None:
    client.flushdb()
    stored = {str(n): row for n, row in enumerate(rows)}
    # values drawn from the stored rows hit; fresh ones probe the gaps
    pool = [r[name] for r in rows if r[name] is not None]
    values = st.one_of(st.sampled_from(pool), FILTER_VALUES[name]) if pool else FILTER_VALUES[name]
    if op in ("in", "exclude"):
        native: Any = data.draw(st.lists(values, min_size=1, max_size=3), label="values")
        forms = [[data.draw(st.sampled_from(primitive_forms(name, v))) for v in native]]
    else:
        native = data.draw(values, label="value")
        forms = primitive_forms(name, native)
    for model in filter_models:
        model.set_many([model({"pk": pk, **row}) for pk, row in stored.items()])
    field = filter_models[0].fields[name]
    many = op in ("in", "exclude")
    wanted = [comparable(field, v) for v in native] if many else comparable(field, native)
    prims = _primitives(filter_models[0], stored)
    expected = sorted(pk for pk, p in prims.items() if holds(op, comparable(field, p.get(name)), wanted))
    for model in filter_models:
        by_native = [o.pk for o in model.filter(**{f"{name}__{op}": native})]
        assert by_native == expected, (model, native)
        for form in forms:
            assert [o.pk for o in model.filter(**{f"{name}__{op}": form})] == expected, (model, form)
            assert model.count(**{f"{name}__{op}": form}) == len(expected), (model, form)


def _primitives(model: type, stored: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {pk: model({"pk": pk, **row}).to_primitive() for pk, row in stored.items()}


@pytest.mark.parametrize("tz", TIMEZONES, ids=str)
def test_one_instant_in_every_offset_is_one_value(client: Any, filter_models: list[type], tz: Any) -> None:
    """A datetime filter matches the same instant written in any offset (naive = UTC)."""
    instant = dt.datetime(2021, 6, 1, 12, 30, 0, 999999, tzinfo=dt.timezone.utc)
    written = instant.replace(tzinfo=None) if tz is None else instant.astimezone(tz)
    for model in filter_models:
        model({"pk": "p", "dt": written}).set()
        for probe in (instant, instant.astimezone(TIMEZONES[3]), "2021-06-01T18:00:00.999999+05:30"):
            assert [o.pk for o in model.filter(dt=probe)] == ["p"], (model, probe)
            assert [o.pk for o in model.filter(dt__in=[None, probe])] == ["p"], (model, probe)
            assert model.filter(dt__not=probe) == [], (model, probe)


# -- awkward values: stored and read back equal, or refused before anything is written -----
class WildInner(models.Model):
    name = types.StringType()
    when = types.DateTimeType()


def _wild_fields() -> dict[str, Any]:
    return {
        "s": types.StringType(),
        "tags": compound.ListType(types.StringType()),
        "attrs": compound.DictType(types.StringType()),
        "f": types.FloatType(),
        "dt": types.DateTimeType(),
        "d": types.DateType(),
        "dec": types.DecimalType(),
        "inner": compound.ModelType(WildInner),
    }


WILD_INDEXES = (
    EqualityIndex("s"),
    RangeIndex("f"),
    RangeIndex("dt"),
    RangeIndex("d"),
    RangeIndex("dec"),
)


@pytest.fixture
def wild_models(client: Any) -> list[type]:
    return _models(client, _wild_fields, WILD_INDEXES, tag="wild")


wild_data = st.fixed_dictionaries(
    {
        "pk": st.one_of(pks, st.sampled_from(["x\ud800", "\udc00"])),
        "s": optional(wild_texts),
        "tags": optional(st.lists(wild_texts, max_size=2)),
        "attrs": optional(st.dictionaries(wild_texts, wild_texts, max_size=2)),
        "f": optional(wild_floats),
        "dt": optional(wild_datetimes),
        "d": optional(wild_dates),
        "dec": optional(wild_decimals),
        "inner": optional(
            st.fixed_dictionaries({"name": optional(wild_texts), "when": optional(wild_datetimes)})
        ),
    }
)


def _odd_offset(value: Any) -> bool:
    offset = value.utcoffset() if isinstance(value, dt.datetime) else None
    return offset is not None and (offset.seconds % 60 != 0 or offset.microseconds != 0)


def _outside_utc(value: Any) -> bool:
    try:
        normalize(value)
    except OverflowError:
        return True
    return False


def _same_instant_and_offset(got: Any, wanted: Any) -> bool:
    """Equal as stored: same wall time and same UTC offset (``==`` between zones is False
    for a time in a DST gap or fold, by PEP 495, even for one instant)."""
    if wanted is None or got is None:
        return got is wanted
    return got.replace(tzinfo=None) == wanted.replace(tzinfo=None) and got.utcoffset() == wanted.utcoffset()


def refused_fields(data: dict[str, Any], indexed: bool) -> set[str]:
    """The oracle: the fields whose value set() must refuse (SPEC §6, docs/errors.md)."""
    texts = {
        "s": [data["s"]],
        "tags": data["tags"] or [],
        "attrs": [t for kv in (data["attrs"] or {}).items() for t in kv],
        "inner": [(data["inner"] or {}).get("name")],
    }
    bad = {
        name for name, values in texts.items() if any(v is not None and not storable_text(v) for v in values)
    }
    if data["dt"] is not None and (_odd_offset(data["dt"]) or _outside_utc(data["dt"])):
        bad.add("dt")
    if _odd_offset((data["inner"] or {}).get("when")):
        bad.add("inner")
    if data["dec"] is not None and data["dec"].is_nan():
        bad.add("dec")
    if indexed and data["f"] is not None and data["f"] != data["f"]:
        bad.add("f")  # NaN: a RangeIndex cannot order it
    return bad


@FIXTURE_OK
@given(data=wild_data)
def test_awkward_values_round_trip_or_are_refused_before_writing(
    client: Any, wild_models: list[type], data: dict[str, Any]
) -> None:
    """Odd offsets, historic zones, the calendar's ends, Decimal and float specials, and
    unicode edges (astral, NUL, combining; lone surrogates): each object is either stored
    and read back equal (and found by its indexes), or refused by set() with our error
    naming a culprit field (the oracle's), and nothing is written."""
    client.flushdb()
    pk = data["pk"]
    for model in wild_models:
        indexed = bool(model._engine().settings.indexes)
        bad = refused_fields(data, indexed)
        before = db_state(client)
        refused: Exception | None = None
        try:
            model(data).set()
        except (InvalidPrimaryKey, InvalidModel) as exc:
            refused = exc
        if isinstance(refused, InvalidPrimaryKey):
            assert not storable_text(pk), (model, refused)
        elif refused is not None:
            assert bad, (model, refused)
            assert any(name in str(refused) for name in bad), (model, bad, refused)
        if refused is not None:
            assert db_state(client) == before
            continue
        assert storable_text(pk)
        assert not bad, (model, bad)
        expected = _json(model(data).to_primitive())
        got = model.match_for_pk(pk)
        assert _json(got.to_primitive()) == expected, model
        assert _same_instant_and_offset(got.dt, data["dt"]), (model, got.dt)
        assert [o.pk for o in model.filter(pk=pk)] == [pk]
        if data["dt"] is not None:
            assert [o.pk for o in model.filter(dt=data["dt"], dt__gte=data["dt"])] == [pk], model
        if data["s"] is not None:
            assert [o.pk for o in model.filter(s__in=[data["s"]])] == [pk], model
        if data["dec"] is not None:
            assert model.count(dec__lte=data["dec"]) == 1, model
        assert model.check_indexes() == []
        assert model.delete_many([pk]) == 1
