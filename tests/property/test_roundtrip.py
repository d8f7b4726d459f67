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
    texts,
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


dates = st.dates(min_value=dt.date(1000, 1, 1))
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
    "d": st.one_of(st.sampled_from([dt.date(2020, 2, 29), dt.date(1970, 1, 1)]), dates),
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
