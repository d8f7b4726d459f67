"""Model settings are checked when the class is created (no Redis)."""

from __future__ import annotations

from typing import Any

import pytest
from schematics import models, types

from redis_schematics import (
    DistributedHashRedisModel,
    DistributedRedisModel,
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


# -- 0.3.x settings: __prefix__ as a property, __set_key__ --------------------------------------------


def test_prefix_property_is_read_on_a_default_instance() -> None:
    def prefix(self: Any) -> str:
        return f"Gelato.{self.flavour}"

    model = make(__prefix__=property(prefix), flavour=types.StringType(default="plain"))
    assert model._engine().keys.object("1") == "Gelato.plain:1"


def test_prefix_property_that_raises_is_refused() -> None:
    def prefix(self: Any) -> str:
        return "x" + self.flavour  # flavour is None on a default instance

    with pytest.raises(ConfigurationError) as info:
        make(name="Gelateria", __prefix__=property(prefix))
    assert "Gelateria.__prefix__ is a property" in str(info.value)
    assert "TypeError" in str(info.value)


@pytest.mark.parametrize("prefix", [5, b"Shop", ("Shop",)])
def test_prefix_that_is_no_string_is_refused(prefix: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"Shop\.__prefix__ must be a string"):
        make(__prefix__=prefix)


def test_key_pattern_of_0_3_x() -> None:
    assert make(__prefix__="Gelato")().__key_pattern__("a", "b") == "Gelato:a:b"
    assert make(name="Cone")().__key_pattern__() == "Cone"


def test_set_key_names_the_model_hash() -> None:
    def sub_key(self: Any) -> str:
        return str(self.__key_pattern__(self.flavour))

    model = make(HashRedisModel, __set_key__=property(sub_key), flavour=types.StringType(default="Sub"))
    keys = model._engine().keys
    assert keys.model_hash() == "Shop:Sub"
    assert keys.object("1") == "Shop:1"  # fields keep the 0.3.x names
    assert make(HashRedisModel, __set_key__="Shops")._engine().keys.model_hash() == "Shops"
    assert make(HashRedisModel, __set_key__="Shop")._engine().keys.hash_key is None


@pytest.mark.parametrize("base", [SimpleRedisModel, DistributedRedisModel, DistributedHashRedisModel])
def test_set_key_on_another_layout_is_refused(base: type) -> None:
    with pytest.raises(ConfigurationError) as info:
        make(base, __set_key__="Shop:Sub")
    assert "Shop.__set_key__ names the one hash of the Hash layout" in str(info.value)


@pytest.mark.parametrize(
    ("value", "words"),
    [(None, "raised TypeError"), (3, "not 3"), ("", "not ''"), ("Shop#x", "contains '#'"), ("{x}", "'{'")],
)
def test_bad_set_key_is_refused(value: Any, words: str) -> None:
    def sub_key(self: Any) -> Any:
        return self.flavour + "x" if value is None else value

    with pytest.raises(ConfigurationError) as info:
        make(HashRedisModel, __set_key__=property(sub_key))
    assert "Shop.__set_key__" in str(info.value)
    assert words in str(info.value)


@pytest.mark.parametrize("cluster", [{"__hash_tag__": True}, {"__shards__": 2}])
def test_set_key_with_cluster_settings_is_refused(cluster: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match=r"Shop\.__set_key__ cannot be combined with __hash_tag__"):
        make(HashRedisModel, __set_key__="Shop:Sub", **cluster)


def test_primary_key_hook_of_0_3_x_is_refused() -> None:
    with pytest.raises(
        ConfigurationError, match=r"Shop\.__primary_key__ is the pk hook of redis-schematics 0\.3\.x"
    ):
        make(__primary_key__=property(lambda self: "1"))


# -- misspelled settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wrong", "right"),
    [
        ("__indices__", "__indexes__"),
        ("__indexs__", "__indexes__"),
        ("__expires__", "__expire__"),
        ("__unique_togther__", "__unique_together__"),
        ("__uniqe_args__", "__unique_args__"),
        ("__prefx__", "__prefix__"),
        ("__hashtag__", "__hash_tag__"),
        ("__shard__", "__shards__"),
        ("__shardby__", "__shard_by__"),
        ("__strict_perfomance__", "__strict_performance__"),
        ("__redis_clent__", "__redis_client__"),
        ("__async_client__", "__redis_async_client__"),
        ("__serialiser__", "__serializer__"),
        ("__deserialize__", "__deserializer__"),
        ("__setkey__", "__set_key__"),
    ],
)
def test_misspelled_setting_is_refused(wrong: str, right: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        make(**{wrong: ("flavour",)})
    assert f"Shop.{wrong} is not a setting" in str(info.value)
    assert f"did you mean `{right}`?" in str(info.value)


def test_misspelling_on_a_mixin_base_names_the_model_and_the_base() -> None:
    class Defaults:
        __expires__ = 60

    with pytest.raises(ConfigurationError) as info:
        type(SimpleRedisModel)("Shop", (SimpleRedisModel, Defaults), {"__redis_client__": NoRedis()})
    assert "Shop.__expires__ (declared on Defaults)" in str(info.value)
    assert "did you mean `__expire__`?" in str(info.value)


def test_python_and_0_3_x_dunders_are_not_taken_for_misspellings() -> None:
    class Cone(models.Model, HashRedisMixin):
        """Every name here is Python's, schematics', 0.3.x's or far from any setting."""

        __redis_client__ = NoRedis()
        __tablename__ = "cones"
        __options__ = {"a": 1}
        __meta__ = None
        __version__ = "1"
        __set_key__ = "Cones"
        pk = types.StringType()
        flavour: Any = types.StringType()

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)

        def __repr__(self) -> str:
            return "Cone"

        def __str__(self) -> str:
            return "Cone"

        def __eq__(self, other: object) -> bool:
            return self is other

        def __hash__(self) -> int:
            return id(self)

        def __index__(self) -> int:  # closer to __indexes__ than __indices__ is
            return 0

        def __json__(self) -> Any:
            return {}

        def __key_pattern__(self, *parts: str) -> str:
            return "Cones"

        def __init_subclass__(cls, **kwargs: Any) -> None:
            super().__init_subclass__(**kwargs)

        def __class_getitem__(cls, item: Any) -> Any:
            return cls

    assert Cone._engine().keys.model_hash() == "Cones"
    assert repr(Cone()) == "Cone"
