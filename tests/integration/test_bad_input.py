"""The bad-input catalogue: one table, every case on every layout x client backend.

Each row is a :class:`Case`. Either it must raise a clear error from
``redis_schematics.exceptions`` whose message names what was wrong (``words``) and
leave the database exactly as it was, or it must *work*: for the awkward primary keys,
a full round trip (set, match_for_pk, match_for_pks, indexed filters, count, unique
match, check_indexes, delete_filter) that touches nothing but that one object's own
keys and members and leaves the database exactly as it was once deleted.

The database holds two models whose prefixes start alike (``Mix`` and ``MixTwo``) with
objects whose pks look like glob patterns of each other (``a``, ``b``, ``ab``, ``x``), so a
pattern built from user input, a key of one model read as the other's, or a delete
that strays, shows up in the snapshot of every key (type, content, TTL) taken before
and after each case.

Rows marked ``known`` are bugs found while writing this file: strict xfails that pass
the day the library is fixed (see the report in docs/guarantees.md, "Known issues").
"""

from __future__ import annotations

import datetime as dt
import json
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from schematics import types

from redis_schematics import RangeIndex, UniqueIndex
from redis_schematics.exceptions import (
    ConfigurationError,
    CorruptPayload,
    InvalidFilterValue,
    InvalidModel,
    InvalidPrimaryKey,
    NotFound,
    QueryError,
    RedisSchematicsError,
    UniqueViolation,
    UnknownField,
    UnknownLookup,
)
from redis_schematics.layouts.base import Fields
from tests.dbstate import db_state

# -- the world every case runs in ----------------------------------------------------------------


def _text(value: Any) -> Any:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def bytes_view(client: Any) -> Any:
    """A client of the same database that does not decode replies (reads any payload)."""
    kw = dict(client.connection_pool.connection_kwargs, decode_responses=False)
    pool = type(client.connection_pool)(connection_class=client.connection_pool.connection_class, **kw)
    return type(client)(connection_pool=pool)


def decodes(client: Any) -> bool:
    return bool(client.connection_pool.connection_kwargs.get("decode_responses"))


def model_class(base: type, client: Any, name: str, prefix: str | None = None) -> Any:
    attrs: dict[str, Any] = {
        "__redis_client__": client,
        "__indexes__": (
            "flavour",
            RangeIndex("amount"),
            RangeIndex("price"),
            RangeIndex("made"),
            UniqueIndex("code"),
        ),
        "id": types.StringType(),
        "name": types.StringType(required=True),
        "flavour": types.StringType(),
        "amount": types.IntType(),
        "price": types.FloatType(),
        "code": types.StringType(),
        "size": types.StringType(choices=["S", "M", "L"]),
        "made": types.DateTimeType(),
    }
    if prefix is not None:
        attrs["__prefix__"] = prefix
    return type(base)(name, (base,), attrs)


SEED = ["a", "b", "ab", "x", "1", "Two"]


@dataclass
class World:
    client: Any
    base: type
    mix: Any  # prefix "Mix"
    two: Any  # prefix "MixTwo"
    raw: Any  # bytes view of the same database, for snapshots

    def plant(self, pk: str, payload: Any) -> None:
        """Store ``payload`` for ``pk`` of Mix the way the layout would, bypassing checks."""
        store = self.mix._engine()
        for cmd, key, args in store.layout.put_ops(pk, payload, None):
            if cmd == "EXTEND":
                continue
            self.client.execute_command(cmd, key, *args)
        self.client.sadd(store.keys.members(), pk)


@pytest.fixture
def world(layout: type, client: Any) -> Iterator[World]:
    mix = model_class(layout, client, "Mix")
    two = model_class(layout, client, "MixTwo")
    rows = [
        {
            "id": pk,
            "name": f"mix {pk}",
            "flavour": "vanilla" if n % 2 else "mint",
            "amount": n,
            "price": n / 2,
            "code": f"C{pk}",
        }
        for n, pk in enumerate(SEED)
    ]
    mix.set_many([mix(row) for row in rows])
    two.set_many([two(dict(row, flavour="vanilla")) for row in rows])  # same pks and codes
    raw = bytes_view(client)
    yield World(client, layout, mix, two, raw)
    raw.close()


# -- the table ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One bad input: ``act(world)`` must raise ``error`` naming ``words``, or (error None) work."""

    name: str
    act: Callable[[World], Any]
    error: type[Exception] | None = None
    words: tuple[str, ...] = ()
    #: set up after the first snapshot is *not* taken: e.g. a corrupt payload to read
    setup: Callable[[World], Any] | None = None
    #: a library bug: strict xfail with this reason
    known: str | None = None
    #: the case only fails on clients that decode replies (decode_responses=True)
    known_on_str_clients_only: bool = False


def valid(pk: str = "new", **over: Any) -> dict[str, Any]:
    data = {"id": pk, "name": "new one", "flavour": "pistachio", "amount": 777, "price": 7.5,
            "code": "CNEW", "size": "M"}  # fmt: skip
    data.update(over)
    return data


def with_attr(w: World, data: dict[str, Any], **attrs: Any) -> Any:
    obj = w.mix(data)
    for k, v in attrs.items():
        setattr(obj, k, v)
    return obj


CASES: list[Case] = []


def case(name: str, error: type[Exception] | None = None, *words: str, **kw: Any) -> Callable[..., Any]:
    def register(act: Callable[[World], Any]) -> Callable[[World], Any]:
        CASES.append(Case(name, act, error, words, **kw))
        return act

    return register


# invalid model data: nothing written ------------------------------------------------------------
case("set: int field holds text", InvalidModel, "amount", "nothing was written")(
    lambda w: with_attr(w, valid(), amount="not a number").set()
)
case("set: required field missing", InvalidModel, "name")(
    lambda w: w.mix({k: v for k, v in valid().items() if k != "name"}).set()
)
case("set: value outside choices", InvalidModel, "size")(lambda w: w.mix(valid(size="XXL")).set())
case("set: datetime field holds text", InvalidModel, "made")(
    lambda w: with_attr(w, valid(), made="yesterday-ish").set()
)
# schematics' FloatType.validate raises OverflowError here instead of a validation error
case("set: float field holds an int too large for a float", InvalidModel, "price", "OverflowError")(
    lambda w: with_attr(w, valid(), price=10**400).set()
)
case("set_many: a crashing value among valid objects", InvalidModel, "price", "nothing was written")(
    lambda w: w.mix.set_many([w.mix(valid("n1", code="N1")), with_attr(w, valid("n2"), price=10**400)])
)
case("set: NaN in a range-indexed field", InvalidModel, "price", "NaN")(
    lambda w: w.mix(valid(price=float("nan"))).set()
)
case("set: overwrite a stored object with an invalid one", InvalidModel, "amount")(
    lambda w: with_attr(w, valid("a", code="Ca"), amount="oops", flavour="changed").set()
)
case("set_many: one invalid object among valid ones", InvalidModel, "amount")(
    lambda w: w.mix.set_many([w.mix(valid("n1", code="N1")), with_attr(w, valid("n2"), amount="x")])
)
case("update: fn makes the object invalid", InvalidModel, "amount")(
    lambda w: w.mix.update("a", lambda o: setattr(o, "amount", "not a number"))
)
case("update: fn changes the pk", InvalidPrimaryKey, "'a'", "'zz'")(
    lambda w: w.mix.update("a", lambda o: setattr(o, "pk", "zz"))
)
case("set: unique value owned by another object", UniqueViolation, "code", "'Ca'", "'a'")(
    lambda w: w.mix(valid("new", code="Ca")).set()
)
case(
    "set_many: a dict instead of a model instance",
    InvalidModel,
    "Mix",
    "dict",
)(lambda w: w.mix.set_many([valid("d1")]))
case(
    "update: fn returns something that is not a model",
    InvalidModel,
    "Mix",
)(lambda w: w.mix.update("a", lambda o: 5))

# values schematics would write but not read back, or Redis cannot take: nothing written ------------
#: -00:44:30 (Liberia until 1972): schematics writes "-004430" and cannot parse it
MONROVIA = dt.datetime(1960, 6, 1, tzinfo=ZoneInfo("Africa/Monrovia"))
MICRO_OFFSET = dt.datetime(2020, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5, microseconds=123)))
case("set: datetime whose UTC offset has seconds", InvalidModel, "made", "-00:44:30", "whole minutes")(
    lambda w: w.mix(valid(made=MONROVIA)).set()
)
case("set: datetime whose UTC offset has microseconds", InvalidModel, "made", "+05:00:00.000123")(
    lambda w: w.mix(valid(made=MICRO_OFFSET)).set()
)
case("set_many: an odd offset among valid objects", InvalidModel, "made", "nothing was written")(
    lambda w: w.mix.set_many([w.mix(valid("n1", code="N1")), w.mix(valid("n2", made=MONROVIA))])
)
case("update: fn sets an odd offset", InvalidModel, "made", "-00:44:30")(
    lambda w: w.mix.update("a", lambda o: setattr(o, "made", MONROVIA))
)
for label, field in [("a plain", "name"), ("an indexed", "flavour"), ("a unique", "code")]:
    case(f"set: lone surrogate in {label} field", InvalidModel, field, "surrogate", "nothing was written")(
        lambda w, f=field: w.mix(valid(**{f: "x\ud800"})).set()
    )
case("set: lone surrogate in the pk", InvalidPrimaryKey, "surrogate", "'x\\udc00'")(
    lambda w: w.mix(valid("x\udc00")).set()
)
case("set_many: a lone surrogate among valid objects", InvalidModel, "name", "surrogate")(
    lambda w: w.mix.set_many([w.mix(valid("n1", code="N1")), w.mix(valid("n2", name="\udfff"))])
)
case("match_for_pk: lone surrogate", InvalidPrimaryKey, "surrogate")(lambda w: w.mix.match_for_pk("x\ud800"))
case("match_for_pks: lone surrogate", InvalidPrimaryKey, "surrogate")(
    lambda w: w.mix.match_for_pks(["a", "x\ud800"])
)
case("delete_many: lone surrogate", InvalidPrimaryKey, "surrogate")(lambda w: w.mix.delete_many(["\ud800"]))
case("match: pk with a lone surrogate", InvalidFilterValue, "id", "surrogate")(
    lambda w: w.mix.match(id="\ud800")
)
for label, kwargs in [
    ("plain field", {"name": "x\ud800"}),
    ("indexed field", {"flavour": "x\ud800"}),
    ("unique field", {"code": "\ud800"}),
    ("__in", {"flavour__in": ["mint", "\udc80"]}),
    ("__not", {"flavour__not": "\ud800"}),
]:
    case(
        f"filter: lone surrogate, {label}", InvalidFilterValue, "surrogate", next(iter(kwargs)).split("__")[0]
    )(lambda w, kw=kwargs: w.mix.filter(**kw))
    case(f"delete_filter: lone surrogate, {label}", InvalidFilterValue, "surrogate")(
        lambda w, kw=kwargs: w.mix.delete_filter(**kw)
    )


def decimal_model(w: World) -> Any:
    """A model with a range-indexed Decimal field (``cost``) and a plain one (``tip``)."""
    attrs = {"__redis_client__": w.client, "__indexes__": (RangeIndex("cost"),), "id": types.StringType(),
             "cost": types.DecimalType(), "tip": types.DecimalType()}  # fmt: skip
    return type(w.base)("MixDec", (w.base,), attrs)


for value in ("sNaN", "-sNaN", "NaN", "-NaN"):
    for name in ("cost", "tip"):
        case(f"set: Decimal({value!r}) in {name}", InvalidModel, name, "NaN", "nothing was written")(
            lambda w, n=name, v=value: decimal_model(w)({"id": "d", n: Decimal(v)}).set()
        )
case("filter: Decimal('sNaN')", InvalidFilterValue, "cost", "signaling NaN")(
    lambda w: decimal_model(w).filter(cost=Decimal("sNaN"))
)
case(
    "set_many: inf is a score, NaN in a range-indexed field refuses the batch", InvalidModel, "price", "NaN"
)(
    lambda w: w.mix.set_many(
        [w.mix(valid("n1", code="N1", price=float("inf"))), w.mix(valid(price=float("nan")))]
    )
)


def _partial_write_of_invalid_value(w: World) -> Any:
    obj = w.mix.match_for_pk("a", only=["amount"])
    obj.amount = "not a number"
    return obj.set(only=["amount"])


case("set(only=...): the written field is invalid", InvalidModel, "amount", "nothing was written")(
    _partial_write_of_invalid_value
)


# primary keys that cannot be stored ---------------------------------------------------------------
case("match_for_pk(''): empty pk", InvalidPrimaryKey, "empty")(lambda w: w.mix.match_for_pk(""))
case("match_for_pk(None)", InvalidPrimaryKey, "empty")(lambda w: w.mix.match_for_pk(None))
case("delete_many(['']): empty pk", InvalidPrimaryKey, "empty")(lambda w: w.mix.delete_many([""]))
case("update(''): empty pk", InvalidPrimaryKey, "empty")(lambda w: w.mix.update("", lambda o: None))
case("match_for_pks with one empty pk", InvalidPrimaryKey, "empty")(lambda w: w.mix.match_for_pks(["a", ""]))

# unknown fields, unknown operators, unconvertible values ---------------------------------------------
BAD_FILTERS: list[tuple[str, dict[str, Any], type[Exception], tuple[str, ...]]] = [
    ("unknown field", {"flavor": "mint"}, UnknownField, ("flavor", "flavour")),
    ("unknown field with a real operator", {"nope__gte": 1}, UnknownField, ("nope",)),
    ("unknown operator", {"amount__gtee": 1}, UnknownLookup, ("gtee", "gte")),
    ("empty operator", {"amount__": 1}, UnknownLookup, ("amount__",)),
    ("two operators", {"flavour__eq__not": "x"}, UnknownField, ("flavour__eq",)),
    ("int field, text value", {"amount": "abc"}, InvalidFilterValue, ("amount", "abc")),
    ("range on int, text bound", {"amount__gte": "abc"}, InvalidFilterValue, ("amount", "abc")),
    ("datetime field, text bound", {"made__lt": "not a date"}, InvalidFilterValue, ("made", "not a date")),
    ("float field, text value", {"price": "cheap"}, InvalidFilterValue, ("price", "cheap")),
    ("__in with one wrong type", {"amount__in": [1, "x"]}, InvalidFilterValue, ("amount", "'x'")),
    ("__in given a string", {"amount__in": "12"}, InvalidFilterValue, ("amount__in", "list")),
    ("__in given a number", {"amount__in": 5}, InvalidFilterValue, ("amount__in", "list")),
    ("__in given a dict", {"flavour__in": {"mint": 1}}, InvalidFilterValue, ("flavour__in", "list")),
    ("__exclude given a string", {"code__exclude": "Ca"}, InvalidFilterValue, ("code__exclude", "list")),
]
for label, kwargs, error, words in BAD_FILTERS:
    case(f"filter: {label}", error, *words)(lambda w, kw=kwargs: w.mix.filter(**kw))
    case(f"delete_filter: {label}", error, *words)(lambda w, kw=kwargs: w.mix.delete_filter(**kw))
case("count: unknown field", UnknownField, "nope")(lambda w: w.mix.count(nope=1))
case("match: unknown field", UnknownField, "nope")(lambda w: w.mix.match(nope=1))
case("match: pk plus unconvertible value", InvalidFilterValue, "amount")(
    lambda w: w.mix.match(id="a", amount="abc")
)
case("order_by: unknown field", UnknownField, "nope")(lambda w: w.mix.query().order_by("-nope").all())
case("limit(-1)", QueryError, "limit")(lambda w: w.mix.query().limit(-1))
case("offset('x')", QueryError, "offset")(lambda w: w.mix.query().offset("x"))  # type: ignore[arg-type]

# corrupt stored payloads: the error names the key; nothing is repaired behind your back ------------------
#: kind -> (payload for the JSON layouts, Fields for the field-per-field layouts)
CORRUPT: dict[str, tuple[Any, Any]] = {
    "not JSON": ("{not json", Fields({"id": "bad", "name": "n", "amount": "{not json"})),
    "JSON list": ("[1, 2]", Fields({"id": "bad", "name": "n", "amount": "[1, 2]"})),
    "JSON string": ('"just text"', Fields({"id": "bad", "name": "n", "price": '"just text"'})),
    "JSON of the wrong shape": (
        '{"id": "bad", "name": "n", "amount": {"x": 1}}',
        Fields({"id": "bad", "name": "n", "amount": '{"x": 1}'}),
    ),
    "a field of the wrong type": (
        '{"id": "bad", "name": "n", "amount": "abc"}',
        Fields({"id": "bad", "name": "n", "amount": '"abc"'}),
    ),
}
#: a pickle (protocol 0 is ASCII): read as JSON, so refused, never unpickled
CORRUPT["a pickle"] = (
    pickle.dumps({"id": "bad", "name": "n"}, protocol=0).decode("ascii"),
    Fields({"id": "bad", "name": "n", "amount": pickle.dumps(5, protocol=0).decode("ascii")}),
)
NOT_UTF8 = (b"\xff\xfe{", Fields({"id": b"\xff\xfe", "name": "n"}))
PK_MISMATCH = (
    '{"id": "a", "name": "hijack", "flavour": "mint", "amount": 0, "code": "Ca"}',
    Fields({"id": "a", "name": "hijack", "flavour": "mint", "amount": "0", "code": "Ca"}),
)


def planter(payloads: tuple[Any, Any]) -> Callable[[World], None]:
    def plant(w: World) -> None:
        w.plant("bad", payloads[0] if not w.mix._engine().layout.writes_fields else payloads[1])

    return plant


def _update_bad(w: World) -> Any:
    return w.mix.update("bad", lambda o: None)


CORRUPT_READS: list[tuple[str, Callable[[World], Any]]] = [
    ("match_for_pk", lambda w: w.mix.match_for_pk("bad")),
    ("match_for_pks", lambda w: w.mix.match_for_pks(["a", "bad"])),
    ("all", lambda w: w.mix.all()),
    ("filter on an unindexed field (scan)", lambda w: w.mix.filter(name="n")),
    ("update", _update_bad),
]
for kind, payloads in CORRUPT.items():
    for label, act in CORRUPT_READS:
        case(f"corrupt payload ({kind}): {label}", CorruptPayload, "Mix:bad", setup=planter(payloads))(act)
for label, act in CORRUPT_READS:
    case(
        f"corrupt payload (not UTF-8): {label}",
        CorruptPayload,
        "Mix:bad",
        setup=planter(NOT_UTF8),
    )(act)
case(
    "payload stored under one pk that names another: match_for_pk",
    CorruptPayload,
    "Mix:bad",
    "'a'",
    setup=planter(PK_MISMATCH),
)(lambda w: w.mix.match_for_pk("bad").delete())

# prefixes --------------------------------------------------------------------------------------------


def colon_prefix_collision(w: World) -> Any:
    return model_class(w.base, w.client, "MixColon", prefix="Mix:Two")


case("model whose prefix is another model's prefix + ':'", ConfigurationError, "'Mix:Two'", "Mix")(
    colon_prefix_collision
)
case("model whose prefix holds '#'", ConfigurationError, "'#'")(
    lambda w: model_class(w.base, w.client, "Hashy", prefix="Mix#x")
)
case("model whose prefix holds '{'", ConfigurationError, "'{'")(
    lambda w: model_class(w.base, w.client, "Braces", prefix="Mix{x}")
)


# -- the cases that must fail cleanly ----------------------------------------------------------------------


@pytest.mark.parametrize("c", [c for c in CASES if c.error is not None], ids=lambda c: c.name)
def test_bad_input_fails_cleanly_and_changes_nothing(c: Case, world: World, client: Any) -> None:
    if c.setup is not None:
        c.setup(world)
    before = db_state(world.raw)
    raised: BaseException | None = None
    try:
        c.act(world)
    except Exception as exc:
        raised = exc
    known = c.known is not None and (decodes(client) or not c.known_on_str_clients_only)
    ok = isinstance(raised, c.error or ()) and isinstance(raised, RedisSchematicsError)
    message = str(raised)
    missing = [word for word in c.words if word not in message]
    unchanged = db_state(world.raw) == before
    if known:
        if ok and not missing and unchanged:
            pytest.fail(f"known issue fixed, remove 'known' from the case: {c.known}")
        pytest.xfail(c.known)
    assert ok, f"expected {c.error.__name__ if c.error else None}, got {raised!r}"
    assert not missing, f"{message!r} does not name {missing}"
    assert unchanged, "a failed call changed the database"
    # and every model is still consistent
    assert c.setup is not None or world.mix.check_indexes() == []
    assert world.two.check_indexes() == []


# -- the cases that must work -----------------------------------------------------------------------------

AWKWARD_PKS = {
    "colon": ":",
    "colon inside": "a:b",
    "looks like another model's key": "Two:1",
    "star": "*",
    "star suffix": "a*",
    "question mark": "?",
    "character class": "[ab]",
    "backslash": "\\",
    "hash tag braces": "{x}",
    "hash sign": "x#members",
    "space": " ",
    "spaces inside": "a b",
    "newline": "\n",
    "newline inside": "a\nb",
    "tab and CR": "\t\r",
    "quotes": "'\"",
    "percent": "%s%d",
    "unicode": "ünïcødé 日本 🍦",
    "right-to-left": "\u05d0\u05d1",
    "very long (10k chars)": "k" * 10_000,
    "the prefix itself": "Mix",
    "Lua and Redis syntax": "'); redis.call('FLUSHDB') --\r\n*1\r\n$8\r\nFLUSHALL\r\n",
}


def only_this_object_touched(before: dict[str, Any], after: dict[str, Any], w: World, pk: str) -> None:
    """Every difference is the object's own key, its members entry or its index entries."""
    store = w.mix._engine()
    own_key = store.keys.object(pk)
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        assert key == store.keys.model_hash() or key.startswith(("Mix:", "Mix#")), f"{key!r} changed"
        if key == own_key or (old is None and key.startswith("Mix#eq:")):
            continue  # the object's own key, or the set of its new flavour value
        assert old is not None, f"{key!r} appeared"
        kind, old_value, _ = old
        _, new_value, _ = new
        if kind == "set":
            assert sorted(set(new_value) - set(old_value)) == [pk], key
            assert set(old_value) <= set(new_value), key
        elif kind in ("zset", "hash"):
            added = {k: v for k, v in new_value.items() if old_value.get(k) != v}
            assert all(k in (pk, own_key) or v == pk for k, v in added.items()), (key, added)
            assert set(old_value) <= set(new_value), f"{key!r} lost entries"
        else:
            pytest.fail(f"{key!r} ({kind}) changed")


@pytest.mark.parametrize("pk", list(AWKWARD_PKS.values()), ids=list(AWKWARD_PKS))
def test_awkward_pk_round_trips_and_touches_nothing_else(pk: str, world: World, client: Any) -> None:
    mix = world.mix
    before = db_state(world.raw)
    data = valid(pk, code="CAWK", flavour="awkward", amount=4242)
    mix(data).set()
    during = db_state(world.raw)
    only_this_object_touched(before, during, world, pk)

    assert mix.match_for_pk(pk).to_primitive() == mix(dict(data, pk=pk)).to_primitive()
    assert [o.id if o else None for o in mix.match_for_pks([pk, "a", "ab"])] == [pk, "a", "ab"]
    assert [o.id for o in mix.filter(flavour="awkward")] == [pk]
    assert [o.id for o in mix.filter(amount__gte=4000)] == [pk]
    assert mix.match(code="CAWK").id == pk
    assert mix.match(id=pk).id == pk
    assert mix.count(flavour__in=["awkward"]) == 1
    assert mix.count() == len(SEED) + 1
    assert sorted(o.id for o in mix.all()) == sorted([*SEED, pk])
    assert mix.check_indexes() == []
    assert world.two.count() == len(SEED)
    assert mix.delete_filter(code="CAWK") == 1
    assert db_state(world.raw) == before
    with pytest.raises(NotFound, match="no object"):
        mix.match_for_pk(pk)


def test_empty_id_gets_a_generated_pk(world: World, client: Any) -> None:
    """An empty ``id`` is no pk: the object gets a fresh uuid4 hex, as a missing one would."""
    obj = world.mix(valid("", code="CEMPTY"))
    obj.set()
    assert len(obj.pk) == 32
    assert int(obj.pk, 16) >= 0
    assert world.mix.match(code="CEMPTY").pk == obj.pk
    assert world.mix.check_indexes() == []
    assert obj.delete() is True


@pytest.mark.parametrize("kind", [*CORRUPT, "not UTF-8"])
def test_a_corrupt_object_can_be_deleted_and_nothing_else_goes(kind: str, world: World, client: Any) -> None:
    before = db_state(world.raw)
    planter(CORRUPT.get(kind, NOT_UTF8))(world)
    if kind == "not UTF-8" and decodes(client):
        with pytest.raises(CorruptPayload, match="decode"):  # documented: use a bytes client
            world.mix.delete_many(["bad"])
        return
    assert world.mix.delete_many(["bad"]) == 1
    assert db_state(world.raw) == before


def test_models_whose_prefixes_start_alike_stay_apart(world: World, client: Any) -> None:
    mix, two = world.mix, world.two
    before = db_state(world.raw)
    mix_keys = {k: v for k, v in before.items() if k == "Mix" or k.startswith(("Mix:", "Mix#"))}
    assert mix.rebuild_indexes() == 0
    assert two.rebuild_indexes() == 0
    assert sorted(o.id for o in mix.all()) == sorted(SEED)
    assert mix.count(flavour="vanilla") == 3
    assert two.count(flavour="vanilla") == len(SEED)
    assert db_state(world.raw) == before
    assert two.delete_filter(flavour="vanilla") == len(SEED)
    assert two.delete_all() == 0
    assert db_state(world.raw) == mix_keys  # MixTwo is gone, Mix untouched
    assert mix.check_indexes() == []
    assert mix.delete_all() == len(SEED)
    assert db_state(world.raw) == {}


def test_a_prefix_with_a_colon_works_on_its_own(world: World, client: Any) -> None:
    """``app:Mix`` is a fine prefix as long as no model is called ``app`` (see the collision case)."""
    spaced = model_class(world.base, client, "Spaced", prefix="app:Mix")
    before = db_state(world.raw)
    spaced.set_many([spaced(valid(pk, code=f"S{pk}", flavour="mint")) for pk in ("a", "a:b", "*")])
    assert sorted(o.id for o in spaced.filter(flavour="mint")) == ["*", "a", "a:b"]
    assert spaced.match(code="Sa:b").id == "a:b"
    assert spaced.check_indexes() == []
    assert world.mix.check_indexes() == []
    assert world.mix.count() == len(SEED)
    assert {k: v for k, v in db_state(world.raw).items() if not k.startswith("app:Mix")} == before
    assert spaced.delete_all() == 3
    assert db_state(world.raw) == before


def test_a_colliding_prefix_written_by_another_process_is_not_read(world: World, client: Any) -> None:
    """Pinned behaviour for a model ``Mix:Two`` that only another process defines.

    In one process such a model is refused (ConfigurationError, in the table above). Its
    keys written elsewhere (``Mix:Two:1`` and ``Mix:Two#members``, as its Simple layout
    writes them) are never returned by Mix's reads, which start from ``Mix#members``.
    But the Simple layout of ``Mix`` finds 0.3.x objects by SCAN ``Mix:*``, which cannot
    tell ``Mix:Two:1`` from a Mix object with pk ``Two:1``: ``check_indexes`` reports it
    and ``delete_all`` / ``rebuild_indexes`` take it (docs/guarantees.md, "Prefixes").
    """
    mix = world.mix
    client.set("Mix:Two:1", json.dumps({"id": "1", "name": "foreign"}))
    client.sadd("Mix:Two#members", "1")
    assert sorted(o.id for o in mix.all()) == sorted(SEED)
    assert mix.count() == len(SEED)
    assert [o.id for o in mix.filter(name="foreign")] == []
    problems = [(p.kind, p.member) for p in mix.check_indexes()]
    if mix._engine().layout.name == "simple":
        assert ("missing member", "Two:1") in problems
        assert mix.delete_all() == len(SEED) + 1
        assert client.exists("Mix:Two:1") == 0
    else:
        assert problems == []
        assert mix.delete_all() == len(SEED)
        assert client.exists("Mix:Two:1") == 1
    assert client.exists("Mix:Two#members") == 1


def test_every_case_names_a_library_error() -> None:
    assert len(CASES) >= 60
    for c in CASES:
        assert c.error is not None, c.name
        assert issubclass(c.error, RedisSchematicsError), c.name


# -- awkward values that must be stored and read back equal ----------------------------------------------

UTC = dt.timezone.utc
PLUS_14 = dt.timezone(dt.timedelta(hours=14))
MINUS_12 = dt.timezone(dt.timedelta(hours=-12))
AWKWARD_VALUES: dict[str, tuple[str, Any]] = {
    "year 1, naive": ("made", dt.datetime(1, 1, 1)),
    "year 1, UTC": ("made", dt.datetime(1, 1, 1, tzinfo=UTC)),
    "year 1, -12:00": ("made", dt.datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=MINUS_12)),
    "year 999, +14:00": ("made", dt.datetime(999, 12, 31, 23, 59, tzinfo=PLUS_14)),
    "year 9999, naive, last microsecond": ("made", dt.datetime(9999, 12, 31, 23, 59, 59, 999999)),
    "year 9999, UTC": ("made", dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    "year 9999, +14:00": ("made", dt.datetime(9999, 12, 31, 23, 59, tzinfo=PLUS_14)),
    "historic zone, whole minutes (Paris 1950)": (
        "made",
        dt.datetime(1950, 7, 1, tzinfo=ZoneInfo("Europe/Paris")),
    ),
    "astral characters": ("flavour", "🍦𝄞\U0010ffff"),
    "NUL": ("flavour", "a\x00b"),
    "combining mark": ("flavour", "e\u0301"),
    "unique astral": ("code", "🍦\x00"),
    "+inf in a range-indexed float": ("price", float("inf")),
    "-inf in a range-indexed float": ("price", float("-inf")),
}


@pytest.mark.parametrize(("field", "value"), list(AWKWARD_VALUES.values()), ids=list(AWKWARD_VALUES))
def test_awkward_value_round_trips_and_is_found(field: str, value: Any, world: World, client: Any) -> None:
    """Stored, read back equal, found by its index (a range query scores it where it
    belongs among the seed objects), and gone without a trace once deleted."""
    mix = world.mix
    before = db_state(world.raw)
    mix(valid("odd", **{field: value})).set()
    got = mix.match_for_pk("odd")
    assert getattr(got, field) == value
    assert got.to_primitive() == mix(dict(valid("odd", **{field: value}), pk="odd")).to_primitive()
    assert [o.id for o in mix.filter(**{field: value})] == ["odd"]
    assert mix.count(**{f"{field}__in": [value]}) == 1
    if field == "made":  # a RangeIndex: scored where it belongs, between the extremes
        assert [o.id for o in mix.filter(made__gte=value)] == ["odd"]
        assert [o.id for o in mix.filter(made__lte=value, made__gte=dt.datetime(1, 1, 1))] == ["odd"]
        assert mix.filter(made__gt=value) == []
        assert mix.filter(made__lt=value) == []
        assert [o.id for o in mix.query(made__lte=dt.datetime(9999, 12, 31, 23, 59, 59, 999999)).all()] == [
            "odd"
        ]
    if field == "price":
        assert ("odd" in [o.id for o in mix.filter(price__gte=1e308)]) == (value > 0)
        assert ("odd" in [o.id for o in mix.filter(price__lte=-1e308)]) == (value < 0)
        ordered = [o.id for o in mix.query().order_by("price").all()]
        assert ordered.index("odd") == (len(SEED) if value > 0 else 0)
    assert mix.check_indexes() == []
    assert mix.delete_filter(id="odd") == 1
    assert {k: v for k, v in db_state(world.raw).items() if "#once:" not in k} == before
