"""Model settings are checked when the class is created (no Redis)."""

from __future__ import annotations

from typing import Any

import pytest
from schematics import models, types

from redis_schematics import (
    EqualityIndex,
    HashRedisMixin,
    HashRedisModel,
    RangeIndex,
    SimpleRedisMixin,
    SimpleRedisModel,
    UniqueIndex,
)
from redis_schematics.exceptions import ConfigurationError, InvalidPrimaryKey


class NoRedis:
    def __getattr__(self, name: str) -> Any:
        msg = f"class creation must not touch Redis (used .{name})"
        raise AssertionError(msg)


def make(base: type = SimpleRedisModel, name: str = "Shop", **settings: Any) -> Any:
    attrs: dict[str, Any] = {
        "__redis_client__": NoRedis(),
        "flavour": types.StringType(),
        "amount": types.IntType(),
        "price": types.FloatType(),
        "cost": types.DecimalType(),
        "vegan": types.BooleanType(),
        "day": types.DateType(),
        "when": types.DateTimeType(),
        "stamp": types.TimestampType(),
        "ref": types.UUIDType(),
        "email": types.EmailType(),
        "tags": types.ListType(types.StringType()),
        "extra": types.DictType(types.StringType()),
    }
    attrs.update(settings)
    return type(base)(name, (base,), attrs)


def kinds(model: Any) -> list[tuple[str, str]]:
    return [(type(i).__name__, i.field) for i in model._engine().indexes]


# -- defaults -----------------------------------------------------------------------------------------


def test_default_index_kinds() -> None:
    model = make(
        __indexes__=("flavour", "amount", "price", "cost", "vegan", "day", "when", "stamp", "ref", "email")
    )
    assert kinds(model) == [
        ("EqualityIndex", "flavour"),
        ("RangeIndex", "amount"),
        ("RangeIndex", "price"),
        ("RangeIndex", "cost"),
        ("EqualityIndex", "vegan"),
        ("RangeIndex", "day"),
        ("RangeIndex", "when"),
        ("RangeIndex", "stamp"),
        ("EqualityIndex", "ref"),
        ("EqualityIndex", "email"),
    ]


def test_index_objects_and_a_single_name() -> None:
    model = make(__indexes__=(EqualityIndex("amount"), UniqueIndex("email"), RangeIndex("when")))
    assert kinds(model) == [("EqualityIndex", "amount"), ("UniqueIndex", "email"), ("RangeIndex", "when")]
    assert kinds(make(__indexes__="flavour")) == [("EqualityIndex", "flavour")]
    assert kinds(make(__indexes__=None)) == []
    assert kinds(make()) == []


def test_two_kinds_on_one_field_are_allowed() -> None:
    model = make(__indexes__=("amount", EqualityIndex("amount"), UniqueIndex("flavour"), "flavour"))
    assert kinds(model) == [
        ("RangeIndex", "amount"),
        ("EqualityIndex", "amount"),
        ("UniqueIndex", "flavour"),
        ("EqualityIndex", "flavour"),
    ]


def test_indexes_are_bound_to_the_model_keys() -> None:
    model = make(__prefix__="Store7", __indexes__=("amount", "flavour", UniqueIndex("email")))
    amount, flavour, email = model._engine().indexes
    assert amount.key == "Store7#range:amount"
    assert flavour.key_for("x") == "Store7#eq:flavour:x"
    assert email.key == "Store7#unique:email"


def test_declared_index_objects_are_not_mutated() -> None:
    shared = RangeIndex("amount")
    a = make(name="A", __indexes__=(shared,))
    b = make(name="B", __indexes__=(shared,))
    assert shared.keys is None
    assert a._engine().indexes[0].key == "A#range:amount"
    assert b._engine().indexes[0].key == "B#range:amount"


# -- __indexes__ errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("base", [SimpleRedisModel, HashRedisModel])
def test_unknown_field(base: type) -> None:
    with pytest.raises(ConfigurationError) as info:
        make(base, __indexes__=("flavor",))
    msg = str(info.value)
    assert "Shop" in msg
    assert "'flavor'" in msg


def test_unknown_field_in_index_object() -> None:
    with pytest.raises(ConfigurationError) as info:
        make(__indexes__=(RangeIndex("amont"),))
    assert "Shop" in str(info.value)
    assert "amont" in str(info.value)


@pytest.mark.parametrize("field", ["flavour", "vegan", "ref", "email"])
def test_range_index_on_a_non_ordered_field(field: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        make(__indexes__=(RangeIndex(field),))
    msg = str(info.value)
    assert "Shop" in msg
    assert field in msg
    assert "RangeIndex" in msg
    assert "EqualityIndex" in msg  # what to use instead


@pytest.mark.parametrize("index", ["tags", "extra", EqualityIndex("tags"), UniqueIndex("extra")])
def test_index_on_a_compound_field(index: Any) -> None:
    field = index if isinstance(index, str) else index.field
    with pytest.raises(ConfigurationError) as info:
        make(__indexes__=(index,))
    msg = str(info.value)
    assert f"Shop.{field}" in msg
    assert "cannot be indexed" in msg


def test_model_type_field_cannot_be_indexed() -> None:
    class Inner(models.Model):
        x = types.IntType()

    with pytest.raises(ConfigurationError, match=r"Shop\.inner"):
        make(inner=types.ModelType(Inner), __indexes__=("inner",))


@pytest.mark.parametrize(
    "indexes",
    [
        ("flavour", "flavour"),
        ("flavour", EqualityIndex("flavour")),
        (RangeIndex("amount"), "amount"),
        (UniqueIndex("email"), UniqueIndex("email")),
    ],
)
def test_duplicate_index(indexes: tuple[Any, ...]) -> None:
    with pytest.raises(ConfigurationError) as info:
        make(__indexes__=indexes)
    msg = str(info.value)
    assert "Shop" in msg
    assert "twice" in msg
    field = indexes[1] if isinstance(indexes[1], str) else indexes[1].field
    assert field in msg


@pytest.mark.parametrize("item", [42, ("flavour",), b"flavour", None])
def test_not_an_index(item: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        make(__indexes__=("amount", item))
    assert "Shop.__indexes__" in str(info.value)


def test_errors_come_from_user_mixin_classes_too() -> None:
    with pytest.raises(ConfigurationError, match="Mine"):

        class Mine(models.Model, HashRedisMixin):
            __redis_client__ = NoRedis()
            __indexes__ = ("nope",)
            pk = types.StringType()


def test_subclass_gets_its_own_checked_settings() -> None:
    parent = make(name="Parent", __indexes__=("flavour",))
    child = type(parent)("Child", (parent,), {"__indexes__": ("amount",)})
    assert kinds(parent) == [("EqualityIndex", "flavour")]
    assert kinds(child) == [("RangeIndex", "amount")]
    assert child._engine().keys.prefix == "Child"
    with pytest.raises(ConfigurationError, match="Child"):
        type(parent)("Child", (parent,), {"__indexes__": ("nope",)})


# -- other settings ---------------------------------------------------------------------------------


def test_prefix_defaults_to_class_name() -> None:
    assert make(name="IceCream")._engine().keys.object("1") == "IceCream:1"
    assert make(name="IceCream", __prefix__="Gelato")._engine().keys.object("1") == "Gelato:1"


@pytest.mark.parametrize("prefix", ["Ice#Cream", "{Ice}", "Ice}"])
def test_reserved_prefix_is_refused_at_class_creation(prefix: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        make(__prefix__=prefix)
    assert repr(prefix) in str(info.value)


def test_prefix_error_names_the_model() -> None:
    with pytest.raises(ConfigurationError) as info:
        make(name="Gelateria", __prefix__="Ice#Cream")
    assert "Gelateria" in str(info.value)


@pytest.mark.parametrize("expire", [0, -1, "10", [1]])
def test_bad_expire(expire: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        make(__expire__=expire)
    assert "Shop.__expire__" in str(info.value)


def test_expire_in_seconds() -> None:
    assert make(__expire__=2)._engine().settings.ttl_ms == 2000
    assert make(__expire__=0.5)._engine().settings.ttl_ms == 500
    assert make(__expire__=None)._engine().settings.ttl_ms is None


@pytest.mark.parametrize("attr", ["__unique_together__", "__unique_args__"])
def test_unique_together_fields_must_exist(attr: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        make(**{attr: ("flavour", "nope")})
    assert "Shop" in str(info.value)
    assert "'nope'" in str(info.value)


@pytest.mark.parametrize("attr", ["__unique_together__", "__unique_args__"])
def test_unique_together_spellings(attr: str) -> None:
    store = make(**{attr: ("flavour", "amount")})._engine()
    assert store.settings.unique_together == ("flavour", "amount")
    assert store.records.pk_from_conditions({"flavour": "v", "amount": 3}) == "v.3"


def test_mixin_without_layout_is_refused_when_used() -> None:
    from redis_schematics import BaseRedisMixin

    class Abstract(models.Model, BaseRedisMixin):
        __redis_client__ = NoRedis()
        x = types.IntType()

    with pytest.raises(ConfigurationError, match="layout"):
        Abstract._engine()


def test_missing_client_is_a_clear_error() -> None:
    class Clientless(models.Model, SimpleRedisMixin):
        pk = types.StringType()

    with pytest.raises(ConfigurationError, match=r"Clientless\.__redis_client__"):
        Clientless.match_for_pk("1")


def test_empty_pk_is_refused_without_io() -> None:
    model = make()
    for pk in ("", None, b""):
        with pytest.raises(InvalidPrimaryKey, match="Shop"):
            model.match_for_pk(pk)
