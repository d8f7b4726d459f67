"""The fast validator leaves objects exactly as schematics' ``validate()`` does (no Redis).

Generated models (field kinds, field options, model-level validators, overridden
``validate``, serializables) and generated object states (constructor input, then
assignments of any value, deletions, a first ``validate()``, lazy construction) are
built twice; one copy goes through ``compile_validator``'s check, the other through
``obj.validate()``. When the check says it handled the object, schematics accepted it
too and both copies hold the same state, value types, identities and aliasing; when it
says it did not, the object is untouched.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import math
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import currently_in_test_context, event, given
from hypothesis import strategies as st
from schematics import models, types
from schematics.exceptions import BaseError, DataError, ValidationError
from schematics.types import compound
from schematics.types.serializable import serializable
from schematics.undefined import Undefined

from redis_schematics.validation import compile_validator

# -- values ----------------------------------------------------------------------------------

TIMEZONES = st.one_of(
    st.just(dt.timezone.utc),
    st.just(types.DateTimeType.UTC),
    st.integers(-14 * 60, 14 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m))),
)
NAIVE = st.datetimes()
AWARE = st.datetimes(timezones=TIMEZONES)


class Text(str):
    """A str subclass: schematics keeps it as it is, the fast path refuses it."""


class Number(int):
    """An int subclass."""


class Stamp(dt.datetime):
    """A datetime subclass."""


NATIVES: dict[str, st.SearchStrategy[Any]] = {
    "string": st.text(max_size=6),
    "int": st.integers(min_value=-(2**70), max_value=2**70),
    "float": st.floats(),  # nan and infinities too
    "bool": st.booleans(),
    "datetime": st.one_of(NAIVE, AWARE),
    "date": st.dates(),
    "uuid": st.uuids(),
}

#: values of a wrong or convertible type for some field kind
ODD = st.one_of(
    st.sampled_from(["", "1", "0", "true", "False", "abc", "2024-01-02", "2024-01-02T03:04:05Z", "1.5"]),
    st.sampled_from([0, 1, 2, -1, 1.0, 0.0, 2.5, True, False, Decimal("1.5"), b"x", b"\xff"]),
    st.sampled_from([Text("t"), Number(3), Stamp(2024, 1, 2), Undefined, (1, 2), {"k": 1}, {1: "a"}, set()]),
    st.datetimes().map(lambda d: d.date()),
    st.lists(st.one_of(st.integers(), st.text(max_size=2), st.none(), st.booleans()), max_size=3),
    st.dictionaries(
        st.one_of(st.text(max_size=2), st.integers()), st.one_of(st.text(max_size=2), st.none()), max_size=2
    ),
    st.uuids().map(str),
)

ANY_NATIVE = st.one_of(*NATIVES.values())


@st.composite
def scalar_kind(draw: st.DrawFn) -> tuple[str, Callable[..., Any], st.SearchStrategy[Any]]:
    kind = draw(st.sampled_from(sorted(NATIVES)))
    cls = {
        "string": types.StringType,
        "int": types.IntType,
        "float": types.FloatType,
        "bool": types.BooleanType,
        "datetime": types.DateTimeType,
        "date": types.DateType,
        "uuid": types.UUIDType,
    }[kind]
    return kind, cls, NATIVES[kind]


# -- models ----------------------------------------------------------------------------------


def reject_some(value: Any) -> None:
    """A user validator: refuses values whose repr has a '1' in it."""
    if "1" in repr(value):
        msg = "no ones"
        raise ValidationError(msg)


def scalar_options(
    draw: st.DrawFn, kind: str, natives: st.SearchStrategy[Any], plain: bool
) -> dict[str, Any]:
    """Options of a scalar field: none or neutral ones (``plain``: only those), sometimes
    one that validation looks at."""
    options: dict[str, Any] = {}
    if draw(st.integers(0, 2)) == 0:
        options["required"] = True
    if draw(st.integers(0, 3)) == 0:
        options["default"] = draw(natives)
    if draw(st.integers(0, 5)) == 0:
        options["serialized_name"] = "s_" + draw(st.sampled_from("abc"))
    if draw(st.integers(0, 5)) == 0:
        options["metadata"] = {"label": "x"}
    special = draw(st.sampled_from([4, 5, 6, 8]) if plain else st.integers(0, 7))
    if special == 0:
        options["choices"] = draw(st.lists(natives, max_size=3))
    elif special == 1:
        options["validators"] = [reject_some]
    elif special == 2 and kind == "string":
        options[draw(st.sampled_from(["min_length", "max_length"]))] = draw(st.integers(0, 3))
    elif special == 7 and kind == "string":
        options["regex"] = "a"
    elif special == 3 and kind in ("int", "float"):
        options[draw(st.sampled_from(["min_value", "max_value"]))] = draw(st.integers(-5, 5))
    elif special == 3 and kind == "datetime":
        options["tzd"] = draw(st.sampled_from(["require", "utc", "reject", "allow"]))
        options["convert_tz"] = draw(st.booleans())
        options["drop_tzinfo"] = draw(st.booleans())
    elif special == 4 and kind == "datetime":
        options["formats"] = ["%Y-%m-%d %H:%M"]  # not looked at for datetime values
    elif special == 4 and kind == "int":
        options["strict"] = True
    elif special == 5:
        options["deserialize_from"] = draw(st.sampled_from(["f0", "f1", "zz"]))
    elif special == 6:
        options["serialize_when_none"] = draw(st.booleans())
    return options


@st.composite
def field_spec(draw: st.DrawFn, plain: bool) -> tuple[Callable[[], Any], st.SearchStrategy[Any]]:
    """A factory for one field (fresh instance per model) and a strategy of natives for it;
    ``plain``: only field kinds and options the fast path may handle."""
    shapes = ["scalar"] * 6 + ["list", "dict", "nested"] + ([] if plain else ["other"] * 2)
    shape = draw(st.sampled_from(shapes))
    kind, cls, natives = draw(scalar_kind())
    options = scalar_options(draw, kind, natives, plain)
    if shape == "scalar":
        return (lambda: cls(**options)), natives
    inner_options = {"required": True} if draw(st.integers(0, 3)) == 0 else {}
    if not plain and draw(st.integers(0, 3)) == 0:
        inner_options["choices"] = draw(st.lists(natives, max_size=2))
    items = st.one_of(natives, st.none()) if draw(st.booleans()) else natives
    outer = {k: v for k, v in options.items() if k in ("required", "serialized_name", "metadata")}
    if shape == "list":
        if not plain and draw(st.integers(0, 3)) == 0:
            outer["min_size"] = 1
        return (lambda: compound.ListType(cls(**inner_options), **outer)), st.lists(items, max_size=3)
    if shape == "dict":
        return (
            lambda: compound.DictType(cls(**inner_options), **outer),
            st.dictionaries(st.text(max_size=2), items, max_size=3),
        )
    if shape == "nested":
        return (
            lambda: compound.ListType(compound.ListType(cls(**inner_options)), **outer),
            st.lists(st.one_of(st.lists(items, max_size=2), st.none()), max_size=3),
        )
    other = draw(st.sampled_from(["email", "decimal", "utc", "md5", "model", "dict_int_keys"]))
    if other == "email":
        return (lambda: types.EmailType(**outer)), st.sampled_from(["a@b.cd", "bad"])
    if other == "decimal":
        return (lambda: types.DecimalType(**outer)), st.decimals(allow_nan=False, places=2)
    if other == "utc":
        return (lambda: types.UTCDateTimeType(**outer)), NAIVE
    if other == "md5":
        return (lambda: types.MD5Type(**outer)), st.just("0" * 32)
    if other == "model":
        inner_model = type(models.Model)("Inner", (models.Model,), {"a": types.IntType()})
        return (lambda: compound.ModelType(inner_model, **outer)), st.builds(dict, a=st.integers(0, 3))
    return (lambda: compound.DictType(types.IntType(), coerce_key=int, **outer)), st.dictionaries(
        st.integers(0, 3), st.integers(), max_size=2
    )


def build_model(factories: list[Callable[[], Any]], extras: set[str]) -> type:
    attrs: dict[str, Any] = {f"f{i}": make() for i, make in enumerate(factories)}
    if "validate_f0" in extras:

        def validate_f0(self: Any, data: Any, value: Any) -> None:
            if value is not None and "1" in repr(value):
                msg = "no ones in f0"
                raise ValidationError(msg)

        attrs["validate_f0"] = validate_f0
    if "override" in extras:

        def validate(self: Any, *args: Any, **kwargs: Any) -> None:
            models.Model.validate(self, *args, **kwargs)
            self._data.converted["f0"] = "overridden"

        attrs["validate"] = validate
    if "computed" in extras:
        attrs["computed"] = serializable(lambda self: 1)
    if "settable" in extras:

        def get(self: Any) -> Any:
            return self.__dict__.get("_settable")

        def put(self: Any, value: Any) -> None:
            self.__dict__["_settable"] = value

        attrs["settable"] = serializable(get).setter(put)
    return type(models.Model)("Generated", (models.Model,), attrs)


# -- object states ---------------------------------------------------------------------------


@st.composite
def case(draw: st.DrawFn) -> tuple[type, Callable[[], Any]]:
    """A model and a recipe building one of its objects (the same state on each call)."""
    # at most one unusual thing per model (a field kind or option the fast path refuses
    # or must look at, or a model-level feature), so that the rest can take the fast path
    unusual = draw(st.sampled_from(["none", "none", "field", "field", "model"]))
    count = draw(st.integers(1, 5))
    odd_one = draw(st.integers(0, count - 1)) if unusual == "field" else -1
    specs = [draw(field_spec(plain=i != odd_one)) for i in range(count)]
    extras: set[str] = set()
    if unusual == "model":
        extras = {draw(st.sampled_from(["validate_f0", "override", "computed", "settable"]))}
    model = build_model([make for make, _ in specs], extras)
    names = [f"f{i}" for i in range(len(specs))]
    values_of = {name: natives for name, (_, natives) in zip(names, specs, strict=True)}

    ctor = {
        name: None if draw(st.integers(0, 4)) == 0 else draw(values_of[name])
        for name in names
        if draw(st.integers(0, 9))
    }
    mode = draw(st.sampled_from(["new"] * 4 + ["init_false", "validated", "lazy", "trusted"]))
    ops: list[tuple[str, str, Any]] = []
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.sampled_from([*names, "computed"] if "computed" in extras else names))
        what = draw(st.sampled_from(["set", "set", "set_odd", "del", "set_none"]))
        if what == "set":
            ops.append(("set", name, draw(values_of.get(name, ANY_NATIVE))))
        elif what == "set_odd":
            ops.append(("set", name, draw(st.one_of(ODD, ANY_NATIVE))))
        elif what == "set_none":
            ops.append(("set", name, None))
        else:
            ops.append(("del", name, None))
    if draw(st.integers(0, 9)) == 0:
        ops.append(("junk", "zz", draw(ANY_NATIVE)))

    def make() -> Any:
        raw = copy.deepcopy(ctor)
        try:
            if mode == "lazy":
                obj = model(raw, lazy=True)
            elif mode == "trusted":
                obj = model(trusted_data=raw)
            elif mode == "init_false":
                obj = model(raw, init=False)
            else:
                obj = model(raw)
        except Exception:  # DataError, or what schematics lets through (UUID(True): AttributeError)
            return None
        if mode == "validated":
            with contextlib.suppress(Exception):
                obj.validate()
        for op, name, value in copy.deepcopy(ops):
            try:
                if op == "set":
                    if name == "computed":
                        obj._data.converted[name] = value  # no setter: straight into the data
                    else:
                        setattr(obj, name, value)
                elif op == "del":
                    delattr(obj, name)
                else:
                    obj._data.converted[name] = value
            except (AttributeError, KeyError, BaseError):
                pass  # no such field here, or refused when set (ModelType.pre_setattr)
        return obj

    return model, make


# -- comparisons -----------------------------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    """Equal values of the same types (nan equal to nan), containers item by item, in order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, dt.datetime):
        return a == b and type(a.tzinfo) is type(b.tzinfo) and a.utcoffset() == b.utcoffset()
    return bool(a is b or a == b)


def shape(value: Any, before: Any) -> Any:
    """Which parts of ``value`` are the very objects of ``before`` (aliasing / mutability)."""
    if isinstance(value, list) and isinstance(before, list) and len(value) == len(before):
        return (value is before, [shape(x, y) for x, y in zip(value, before, strict=True)])
    if isinstance(value, dict) and isinstance(before, dict) and list(value) == list(before):
        return (value is before, [shape(value[k], before[k]) for k in value])
    return value is before


def chain_values(obj: Any) -> dict[str, Any]:
    """What each field holds, looked up as schematics does (unsafe, converted, valid)."""
    return {name: obj._data.get(name, Undefined) for name in obj._schema.fields}


def snapshot(obj: Any) -> Any:
    data = obj._data
    maps = [(m, list(m.items())) for m in data.maps]
    return (
        data._unsafe,
        data._converted,
        data._valid,
        maps,
        [list(m.items()) for m in (data._unsafe, data._converted, data._valid)],
        dict(vars(obj)),
    )


def unchanged(before: Any, obj: Any) -> bool:
    after = snapshot(obj)
    identities = all(x is y for x, y in zip(before[:3], after[:3], strict=True))
    maps = len(before[3]) == len(after[3]) and all(
        m is n
        and same(items, items_after)
        and all(v is w for (_, v), (_, w) in zip(items, items_after, strict=True))
        for (m, items), (n, items_after) in zip(before[3], after[3], strict=True)
    )
    contents = all(same(x, y) for x, y in zip(before[4], after[4], strict=True))
    return identities and maps and contents and before[5].keys() == after[5].keys()


def state(obj: Any) -> list[Any]:
    data = obj._data
    return [list(data.unsafe.items()), list(data.converted.items()), list(data.valid.items())]


def outcome(call: Callable[[], Any]) -> Any:
    try:
        return ("ok", call())
    except Exception as exc:
        return ("error", type(exc).__name__, str(exc))


def assert_same_objects(fast: Any, slow: Any) -> None:
    assert same(state(fast), state(slow))
    for obj in (fast, slow):
        data = obj._data
        assert data.maps[0] is data.unsafe
        assert data.maps[1] is data.converted
        assert data.maps[2] is data.valid
    # an export can fail (a None item in a list of UUIDs): then both fail alike
    assert same(outcome(fast.to_primitive), outcome(slow.to_primitive))
    assert same(outcome(fast.to_native), outcome(slow.to_native))
    for name in fast._schema.fields:
        assert same(getattr(fast, name, Undefined), getattr(slow, name, Undefined))


# -- the proof -------------------------------------------------------------------------------


@given(case())
def test_fast_check_equals_validate(generated: tuple[type, Callable[[], Any]]) -> None:
    prove(*generated)


def label(text: str) -> None:
    if currently_in_test_context():
        event(text)


def prove(model: type, make: Callable[[], Any]) -> None:
    """Two objects from ``make()``: the fast check on one, ``validate()`` on the other."""
    check = compile_validator(model)
    fast, slow = make(), make()
    assert (fast is None) is (slow is None)
    if fast is None:
        label("constructor refused the input")
        return
    if check is None:
        label("model refused")
        return
    before_fast = snapshot(fast)
    held_fast, held_slow = chain_values(fast), chain_values(slow)
    old_fast, old_slow = fast._data.converted, slow._data.converted
    in_valid = any(name not in old_fast for name, value in held_fast.items() if value is not Undefined)

    handled = check(fast)
    try:
        slow.validate()
        slow_error: Exception | None = None
    except Exception as exc:  # DataError, or whatever schematics lets through
        slow_error = exc

    if not handled:
        label("object refused" + (" (schematics rejected it too)" if slow_error else ""))
        assert unchanged(before_fast, fast)
        return
    label("fast path")
    if any(value is Undefined for value in held_fast.values()):
        label("fast path, with a field holding no value")
    if in_valid:
        label("fast path, with values in _data.valid")
    if any(isinstance(value, list | dict) for value in held_fast.values()):
        label("fast path, with a list or dict")
    assert slow_error is None, f"schematics rejected what the fast path accepted: {slow_error!r}"
    assert_same_objects(fast, slow)
    # the former converted dict, completed by _mutate, ends the same
    assert same(list(old_fast.items()), list(old_slow.items()))
    # the same values are shared with what the object held before (same aliasing), so
    # mutating what was held before affects both objects alike
    for name in model._schema.fields:
        now_fast, now_slow = fast._data.get(name, Undefined), slow._data.get(name, Undefined)
        assert shape(now_fast, held_fast[name]) == shape(now_slow, held_slow[name])
        if isinstance(held_fast[name], list | dict):
            for held in (held_fast[name], held_slow[name]):
                if isinstance(held, list):
                    held.append(12345)
                else:
                    held["mutated"] = 12345
            assert same(state(fast), state(slow))
    # and they keep behaving alike: validated again (values now in _data.valid), then
    # changed and validated again
    old_fast, old_slow = fast._data.converted, slow._data.converted
    assert check(fast)
    slow.validate()
    assert_same_objects(fast, slow)
    assert same(list(old_fast.items()), list(old_slow.items()))
    first = next(iter(model._schema.fields))
    setattr(fast, first, None)
    setattr(slow, first, None)
    before_fast = snapshot(fast)
    if check(fast):
        slow.validate()
        assert_same_objects(fast, slow)
    else:
        assert unchanged(before_fast, fast)


# -- plain cases -----------------------------------------------------------------------------


class Common(models.Model):
    name = types.StringType(required=True)
    count = types.IntType()
    price = types.FloatType()
    vegan = types.BooleanType()
    best_before = types.DateTimeType()
    made = types.DateType()
    code = types.UUIDType()
    tags = compound.ListType(types.StringType())
    extra = compound.DictType(types.IntType())


def common_values() -> dict[str, Any]:
    return {
        "name": "vanilla",
        "count": 3,
        "price": 2.5,
        "vegan": True,
        "best_before": dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        "made": dt.date(2024, 5, 6),
        "code": uuid.uuid4(),
        "tags": ["a", "b"],
        "extra": {"x": 1},
    }


def test_common_model_takes_the_fast_path() -> None:
    check = compile_validator(Common)
    assert check is not None
    values = common_values()
    fast, slow = Common(values), Common(values)
    assert check(fast)
    slow.validate()
    assert_same_objects(fast, slow)
    assert fast._data.valid["tags"] is not values["tags"]  # a new list, as schematics makes
    assert check(fast)  # an object already validated (values in _data.valid) too
    fast.count = 4
    assert check(fast)
    assert fast.count == 4
    assert fast._data.converted == {}


def test_missing_fields_and_none() -> None:
    check = compile_validator(Common)
    assert check is not None
    obj = Common({"name": "x"})  # the others hold None
    assert check(obj)
    partial = Common({"name": "x"}, init=False)  # the others hold nothing at all
    assert check(partial)
    assert dict(partial._data.valid) == {"name": "x"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("name", None),  # required
        ("count", "3"),  # converted by schematics
        ("count", True),  # a bool is not an int here
        ("price", 2),  # an int in a FloatType becomes a float
        ("made", dt.datetime(2024, 1, 1)),  # a datetime in a DateType becomes a date
        ("tags", ("a",)),  # a tuple becomes a list
        ("tags", ["a", 1]),
        ("extra", {1: 1}),
        ("name", Text("x")),
    ],
)
def test_values_to_convert_or_reject_go_to_schematics(name: str, value: Any) -> None:
    check = compile_validator(Common)
    assert check is not None
    obj = Common(common_values())
    setattr(obj, name, value)
    before = snapshot(obj)
    assert not check(obj)
    assert unchanged(before, obj)


def test_required_none_is_refused_and_schematics_rejects_it() -> None:
    check = compile_validator(Common)
    assert check is not None
    obj = Common(common_values())
    obj.name = None
    assert not check(obj)
    with pytest.raises(DataError):
        obj.validate()


def test_choices_validators_and_overrides_refuse_the_model() -> None:
    class Choices(models.Model):
        a = types.StringType(choices=["x"])

    class FieldValidator(models.Model):
        a = types.StringType(validators=[reject_some])

    class ModelValidator(models.Model):
        a = types.StringType()

        def validate_a(self, data: Any, value: Any) -> None:
            if value == "bad":
                msg = "bad"
                raise ValidationError(msg)

    class Overridden(models.Model):
        a = types.StringType()

        def validate(self, *args: Any, **kwargs: Any) -> None:
            super().validate(*args, **kwargs)

    class Ranged(models.Model):
        a = types.IntType(min_value=0)

    class Settable(models.Model):
        a = types.StringType()

        @serializable
        def b(self) -> Any:
            return 1

        @b.setter
        def b(self, value: Any) -> None:
            pass

    for model in (Choices, FieldValidator, ModelValidator, Overridden, Ranged, Settable):
        assert compile_validator(model) is None, model
    with pytest.raises(DataError):
        Choices({"a": "y"}).validate()
    with pytest.raises(DataError):
        ModelValidator({"a": "bad"}).validate()


def test_subclass_instances_and_lazy_data_go_to_schematics() -> None:
    check = compile_validator(Common)
    assert check is not None
    sub = type(models.Model)("Sub", (Common,), {})
    assert not check(sub(common_values()))
    lazy = Common(common_values(), lazy=True)
    assert not check(lazy)


def test_field_added_later_goes_to_schematics() -> None:
    model = type(models.Model)("Grows", (models.Model,), {"a": types.IntType()})
    check = compile_validator(model)
    assert check is not None
    assert check(model({"a": 1}))
    model._append_field("b", types.IntType(required=True))
    obj = model({"a": 1})
    assert not check(obj)
    with pytest.raises(DataError):
        obj.validate()


def test_serializables_refuse_the_model() -> None:
    """validate() calls the getter of a read-only serializable (Model() gives it a value,
    None) and keeps what it returns in _data.valid: not reproduced, schematics decides."""

    class Computed(models.Model):
        a = types.IntType()

        @serializable
        def double(self) -> Any:
            return None if self.a is None else self.a * 2

    assert compile_validator(Computed) is None
    obj = Computed({"a": 2})
    obj.validate()
    assert obj._data.valid["double"] == 4


@pytest.mark.parametrize("tzd", ["allow", "utc", "require", "reject"])
@pytest.mark.parametrize("convert_tz", [False, True])
@pytest.mark.parametrize("drop_tzinfo", [False, True])
@pytest.mark.parametrize("formats", [None, "%Y-%m-%d %H:%M"])
@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2024, 1, 2, 3, 4, 5),
        dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=types.DateTimeType.UTC),
    ],
)
def test_datetime_options(tzd: str, convert_tz: bool, drop_tzinfo: bool, formats: Any, value: Any) -> None:
    """Every time zone policy, with naive and aware values assigned after construction:
    only the default one (formats do not matter for datetime values) takes the fast path."""
    options = {"tzd": tzd, "convert_tz": convert_tz, "drop_tzinfo": drop_tzinfo, "formats": formats}
    model = type(models.Model)("When", (models.Model,), {"at": types.DateTimeType(**options)})
    default = tzd == "allow" and not convert_tz and not drop_tzinfo
    assert (compile_validator(model) is not None) is default

    def make() -> Any:
        obj = model()
        obj.at = copy.deepcopy(value)
        return obj

    prove(model, make)
