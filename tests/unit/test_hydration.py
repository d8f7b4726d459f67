"""The fast load path builds objects indistinguishable from schematics' own (no Redis)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from schematics import models, types
from schematics.exceptions import DataError
from schematics.types import compound

from redis_schematics.hydration import Unstorable, compile_loader, loader_for, storable_for
from redis_schematics.serializers import dumps, loads

#: zones whose old offsets have seconds (local mean time) or odd minutes
HISTORIC_ZONES = [
    ZoneInfo(name) for name in ("Africa/Monrovia", "Europe/Paris", "Asia/Kolkata", "America/New_York")
]

FIELD_KINDS: dict[str, tuple[Any, st.SearchStrategy[Any]]] = {
    "string": (types.StringType, st.text()),
    "email": (types.EmailType, st.sampled_from(["a@b.cd", "x.y@z.org"])),
    "int": (types.IntType, st.integers(min_value=-(2**70), max_value=2**70)),
    "float": (types.FloatType, st.floats(allow_nan=False, allow_infinity=False)),
    "bool": (types.BooleanType, st.booleans()),
    "uuid": (types.UUIDType, st.uuids()),
    "decimal": (types.DecimalType, st.decimals(allow_nan=False, allow_infinity=False, places=4)),
    # schematics writes years < 1000 without zero padding: storable_for pads them
    "date": (types.DateType, st.dates()),
    "datetime": (
        types.DateTimeType,
        st.datetimes(
            # any offset: one with seconds is refused by storable_for (see model_and_raw)
            timezones=st.one_of(
                st.none(),
                st.just(dt.timezone.utc),
                st.integers(-14 * 60, 14 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m))),
                st.sampled_from(HISTORIC_ZONES),
                st.integers(-86399, 86399).map(lambda s: dt.timezone(dt.timedelta(seconds=s))),
            ),
            allow_imaginary=False,
        ),
    ),
    "ints": (lambda: compound.ListType(types.IntType()), st.lists(st.integers(), max_size=4)),
    "strmap": (
        lambda: compound.DictType(types.StringType()),
        st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
    ),
}


def build_model(kinds: list[str], defaults: dict[str, Any] | None = None) -> type:
    attrs: dict[str, Any] = {}
    for i, kind in enumerate(kinds):
        name = f"f{i}"
        options = {"default": defaults[name]} if defaults and name in defaults else {}
        make = FIELD_KINDS[kind][0]
        attrs[name] = make(**options) if options and isinstance(make, type) else make()
        if options and not isinstance(make, type):
            attrs[name] = make()
            attrs[name]._default = options["default"]
    return type(models.Model)("Generated", (models.Model,), attrs)


@st.composite
def model_and_raw(draw: st.DrawFn) -> tuple[type, dict[str, Any]]:
    """A generated model (some fields with a default value, or a callable default), and
    what the library stores for one of its objects, with any keys missing (old data, or
    a partial read)."""
    kinds = draw(st.lists(st.sampled_from(sorted(FIELD_KINDS)), min_size=1, max_size=6))
    defaults: dict[str, Any] = {}
    for i, kind in enumerate(kinds):
        if draw(st.integers(0, 2)) == 0:
            value = draw(FIELD_KINDS[kind][1])
            defaults[f"f{i}"] = (lambda v=value: v) if draw(st.booleans()) else value
    model = build_model(kinds, defaults)
    values = {}
    for i, kind in enumerate(kinds):
        values[f"f{i}"] = draw(st.one_of(st.none(), FIELD_KINDS[kind][1]))
    obj = model(values)
    while True:  # what the library stores and reads back (refused values left out)
        try:
            raw = loads(dumps(storable_for(model)(obj.to_primitive())))
            break
        except Unstorable as exc:
            setattr(obj, exc.path[0], None)
    for key in draw(st.lists(st.sampled_from(sorted(raw)), unique=True)) if raw else []:
        raw.pop(key)
    return model, raw


def state(obj: Any) -> dict[str, tuple[type, Any]]:
    return {k: (type(v), v) for k, v in obj._data.converted.items()}


@given(model_and_raw())
def test_fast_load_equals_schematics(case: tuple[type, dict[str, Any]]) -> None:
    model, raw = case
    fast = loader_for(model)(dict(raw))
    slow = model(dict(raw), strict=False)
    compiled = compile_loader(model)
    if compiled is not None:  # decimals, e-mails: schematics' own path, always
        compiled(dict(raw))  # the fast path itself builds it (no fall back), missing keys too
    assert type(fast) is model
    assert state(fast) == state(slow)
    assert dict(fast._data.valid) == dict(slow._data.valid)
    assert fast.to_primitive() == slow.to_primitive()
    assert fast.to_native() == slow.to_native()
    for name in model.fields:
        a, b = getattr(fast, name), getattr(slow, name)
        assert type(a) is type(b)
        assert a == b
        if isinstance(a, dt.datetime) and a.tzinfo is not None:
            assert type(a.tzinfo) is type(b.tzinfo)


@given(model_and_raw())
def test_fast_load_validates_and_mutates_like_schematics(case: tuple[type, dict[str, Any]]) -> None:
    model, raw = case
    fast = loader_for(model)(dict(raw))
    slow = model(dict(raw), strict=False)
    fast.validate()
    slow.validate()
    assert fast.to_primitive() == slow.to_primitive()
    name = next(iter(model.fields))
    setattr(fast, name, None)
    setattr(slow, name, None)
    assert fast.to_primitive() == slow.to_primitive()


def test_common_model_takes_the_fast_path() -> None:
    model = build_model(["string", "int", "float", "bool", "uuid", "date", "datetime", "ints", "strmap"])
    assert compile_loader(model) is not None


def test_unknown_field_type_uses_schematics() -> None:
    class Custom(types.StringType):
        def to_native(self, value: Any, context: Any = None) -> Any:
            return f"custom:{value}"

    model = type(models.Model)("WithCustom", (models.Model,), {"c": Custom()})
    assert compile_loader(model) is None
    assert loader_for(model)({"c": "x"}).c == "custom:x"


def test_nested_model_field_uses_schematics() -> None:
    inner = type(models.Model)("Inner", (models.Model,), {"a": types.IntType()})
    outer = type(models.Model)("Outer", (models.Model,), {"m": compound.ModelType(inner)})
    assert compile_loader(outer) is None
    loaded = loader_for(outer)({"m": {"a": 1}})
    assert loaded.m.a == 1
    assert type(loaded.m) is inner


def test_missing_field_gets_its_default_like_schematics() -> None:
    model = type(models.Model)("Defaults", (models.Model,), {"a": types.IntType(default=7)})
    assert loader_for(model)({}).a == 7 == model({}, strict=False).a


def test_aware_datetime_keeps_schematics_tzinfo_class() -> None:
    model = build_model(["datetime"])
    aware = dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    raw = json.loads(json.dumps(model({"f0": aware}).to_primitive()))
    fast, slow = loader_for(model)(raw), model(raw, strict=False)
    assert type(fast.f0.tzinfo) is type(slow.f0.tzinfo)
    assert fast.f0 == slow.f0 == aware


@pytest.mark.parametrize("offset", [0, 90, -330])
def test_aware_datetime_takes_the_fast_path(offset: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """What DateTimeType writes for aware values is parsed without schematics' regex,
    into the same tzinfo objects (its UTC singleton, or an offset_timezone)."""
    model = build_model(["datetime"])
    aware = dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone(dt.timedelta(minutes=offset)))
    raw = json.loads(json.dumps(model({"f0": aware}).to_primitive()))
    slow = model(dict(raw), strict=False)
    compiled = compile_loader(model)
    assert compiled is not None

    def no_regex(self: Any, value: Any) -> Any:
        msg = "schematics parsed it"
        raise AssertionError(msg)

    monkeypatch.setattr(types.DateTimeType, "from_string", no_regex)
    fast = compiled(dict(raw))
    assert fast.f0 == slow.f0 == aware
    assert type(fast.f0.tzinfo) is type(slow.f0.tzinfo)
    assert fast.f0.utcoffset() == slow.f0.utcoffset()
    if offset == 0:
        assert fast.f0.tzinfo is types.DateTimeType.UTC is slow.f0.tzinfo


@pytest.mark.parametrize(
    ("kind", "bad"),
    [("int", "abc"), ("datetime", "2026-13-01T00:00:00.000000"), ("uuid", "zz"), ("date", "2026-02-30")],
)
def test_invalid_stored_value_raises_like_schematics(kind: str, bad: str) -> None:
    model = build_model([kind])
    with pytest.raises(DataError):
        model({"f0": bad}, strict=False)
    with pytest.raises(DataError):
        loader_for(model)({"f0": bad})


def test_decimal_and_uuid_types_are_exact() -> None:
    model = build_model(["decimal", "uuid"])
    u = uuid.uuid4()
    raw = json.loads(json.dumps(model({"f0": Decimal("1.2500"), "f1": u}).to_primitive()))
    obj = loader_for(model)(raw)
    assert obj.f0 == Decimal("1.2500")
    assert type(obj.f0) is Decimal
    assert obj.f1 == u


@given(model_and_raw())
def test_fast_dump_equals_to_primitive(case: tuple[type, dict[str, Any]]) -> None:
    from redis_schematics.hydration import dumper_for

    model, raw = case
    obj = model(dict(raw), strict=False)
    dump = dumper_for(model)
    assert dumps(dump(obj)) == dumps(obj.to_primitive())  # same bytes stored
    obj.validate()
    assert dumps(dump(obj)) == dumps(obj.to_primitive())
    name = next(iter(model.fields))
    setattr(obj, name, None)
    assert dumps(dump(obj)) == dumps(obj.to_primitive())


def test_fast_dump_honours_model_options() -> None:
    from redis_schematics.hydration import compile_dumper

    class Quiet(models.Model):
        a = types.IntType()

        class Options:
            serialize_when_none = False

    assert compile_dumper(Quiet) is None
    assert compile_dumper(build_model(["string", "int", "datetime", "ints"])) is not None


class _Inner(models.Model):
    day = types.DateType()
    when = types.DateTimeType()


class _Nested(models.Model):
    day = types.DateType()
    when = types.DateTimeType()
    days = compound.ListType(types.DateType())
    whens = compound.DictType(types.DateTimeType())
    inner = compound.ModelType(_Inner)
    inners = compound.ListType(compound.ModelType(_Inner))
    cost = types.DecimalType()
    costs = compound.ListType(types.DecimalType())


EARLY = dt.datetime(5, 6, 7, 8, 9, 10, 11)
ONE_SECOND = dt.timezone(dt.timedelta(seconds=1))
M7US = dt.timezone(dt.timedelta(microseconds=-7))
EARLY_AWARE = dt.datetime(999, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=-3, minutes=-30)))


def test_storable_pads_years_below_1000_everywhere_and_they_load_back() -> None:
    """schematics writes ``5-06-07...`` (strftime does not pad) and cannot parse it; the
    stored form has four digits, which it reads as the same value."""
    obj = _Nested(
        {
            "day": dt.date(1, 1, 1),
            "when": EARLY,
            "days": [dt.date(99, 12, 31), dt.date(2020, 1, 1)],
            "whens": {"a": EARLY_AWARE},
            "inner": {"day": dt.date(10, 1, 1), "when": EARLY},
            "inners": [{"when": EARLY_AWARE}],
            "cost": Decimal("-Infinity"),
        }
    )
    primitive = obj.to_primitive()
    assert primitive["day"] != "0001-01-01"  # the bug: schematics' own text
    stored = storable_for(_Nested)(loads(dumps(primitive)))
    assert stored["day"] == "0001-01-01"
    assert stored["when"] == "0005-06-07T08:09:10.000011"
    assert stored["days"] == ["0099-12-31", "2020-01-01"]
    assert stored["whens"] == {"a": "0999-01-02T00:00:00.000000-0330"}
    assert stored["inner"] == {"day": "0010-01-01", "when": "0005-06-07T08:09:10.000011"}
    back = loader_for(_Nested)(loads(dumps(stored)))
    assert back.to_primitive() == primitive
    assert back.day == dt.date(1, 1, 1)
    assert back.whens["a"] == EARLY_AWARE
    assert back.inners[0].when == EARLY_AWARE
    assert back.cost == Decimal("-Infinity")


@pytest.mark.parametrize(
    ("data", "where", "shown"),
    [
        ({"when": dt.datetime(1960, 6, 1, tzinfo=ZoneInfo("Africa/Monrovia"))}, "when", "-00:44:30"),
        ({"whens": {"k": dt.datetime(2020, 1, 1, tzinfo=ONE_SECOND)}}, "whens['k']", "+00:00:01"),
        ({"inners": [{}, {"when": dt.datetime(2020, 1, 1, tzinfo=M7US)}]}, "inners[1].when", "-00:00:00"),
        ({"cost": Decimal("sNaN")}, "cost", "signaling NaN"),
        ({"costs": [Decimal(1), Decimal("-NaN")]}, "costs[1]", "NaN Decimal"),
    ],
)  # fmt: skip
def test_storable_refuses_what_cannot_be_read_back_and_says_where(
    data: dict[str, Any], where: str, shown: str
) -> None:
    with pytest.raises(Unstorable) as err:
        storable_for(_Nested)(_Nested(data).to_primitive())
    assert err.value.where == where
    assert shown in str(err.value)
    assert err.value.allowed


@pytest.mark.parametrize("offset", [dt.timedelta(seconds=30), dt.timedelta(hours=5, microseconds=123)])
def test_an_offset_with_seconds_is_what_schematics_cannot_read(offset: dt.timedelta) -> None:
    """Why it is refused rather than stored: schematics writes it and fails on it."""
    value = dt.datetime(2020, 1, 1, tzinfo=dt.timezone(offset))
    text = types.DateTimeType().to_primitive(value)
    with pytest.raises(DataError):
        _Inner({"when": text})
    with pytest.raises(DataError):
        loader_for(_Inner)({"when": text})
