"""One test (or a few) per defect of redis-schematics 0.3.x, on every layout and backend.

1. ``set()`` keyed pk-less objects with ``str(uuid.uuid4)`` (the function, not a call):
   every such object landed on one key.
2. Enumeration used ``KEYS Prefix:*``: it blocked Redis, a pk such as ``*`` or ``[ab]``
   acted as a glob, and model ``Mix`` saw the keys of ``MixTwo``.
3. The Hash layout called ``EXPIRE key None`` when the model had no ``__expire__``.
4. Filters were parsed with ``str.replace`` on suffixes: ``name_in`` or ``notes``
   lost their "in"/"not".
5. Range filters compared stored ``None`` with ``>``: ``TypeError``.
6. Exceptions carried no message.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from schematics import types

from redis_schematics import HashRedisModel, MultipleFound, NotFound, SimpleRedisModel, UniqueIndex
from redis_schematics.exceptions import (
    CorruptPayload,
    InvalidModel,
    InvalidPrimaryKey,
    RedisSchematicsError,
    StrictPerformanceException,
    UniqueViolation,
)
from redis_schematics.io import RunScript
from redis_schematics.io.drivers import intercept
from tests import dbstate
from tests.conftest import real_client
from tests.engine import stored
from tests.models import ice_cream
from tests.recorder import Recorder

Factory = Callable[..., Any]


@pytest.fixture
def make(layout: type, client: Any) -> Factory:
    """Build a model on the test's layout and client: make("Name", field=Type(), __x__=...)."""

    def factory(name: str, **attrs: Any) -> Any:
        body: dict[str, Any] = {"__redis_client__": client}
        body.update(attrs)
        return type(layout)(name, (layout,), body)

    return factory


#: the layouts 0.3.x had: tests that write its raw format use these
OLD_LAYOUTS = {"simple": SimpleRedisModel, "hash": HashRedisModel}


@pytest.fixture(params=list(OLD_LAYOUTS))
def make_old(request: pytest.FixtureRequest, client: Any) -> Factory:
    base = OLD_LAYOUTS[request.param]

    def factory(name: str, **attrs: Any) -> Any:
        return type(base)(name, (base,), {"__redis_client__": client, **attrs})

    return factory


def stored_payload(model: Any, client: Any, pk: str) -> Any:
    """What the layout stores for ``pk`` (None when nothing)."""
    return stored(model, [pk])[0][0]


def key_names(client: Any) -> set[str]:
    return dbstate.key_names(client)


# -- 1. pk-less objects all got the key "Prefix:<function uuid4 ...>" ------------------------------


def test_objects_without_pk_get_distinct_uuid4_pks(make: Factory, client: Any) -> None:
    model = make("Anon", flavour=types.StringType())
    a = model({"flavour": "a"}).set()
    b = model({"flavour": "b"}).set()
    assert a.pk != b.pk
    for obj in (a, b):
        assert uuid.UUID(hex=obj.pk).version == 4
        assert obj.pk == uuid.UUID(obj.pk).hex  # 32 lowercase hex digits
        assert obj.key == f"Anon:{obj.pk}"
        assert "function" not in obj.key
        assert stored_payload(model, client, obj.pk) is not None
    assert model.match_for_pk(a.pk).flavour == "a"
    assert model.match_for_pk(b.pk).flavour == "b"
    assert sorted(o.flavour for o in model.all()) == ["a", "b"]
    assert model.count() == 2


def test_set_many_without_pks_stores_every_object(make: Factory) -> None:
    model = make("Anon", flavour=types.StringType())
    objs = [model({"flavour": str(n)}) for n in range(5)]
    model.set_many(objs)
    assert len({o.pk for o in objs}) == 5
    assert model.count() == 5
    assert sorted(o.flavour for o in model.all()) == ["0", "1", "2", "3", "4"]


def test_generated_pk_is_kept_on_the_next_set(make: Factory) -> None:
    model = make("Anon", flavour=types.StringType())
    obj = model({"flavour": "a"}).set()
    pk = obj.pk
    obj.flavour = "b"
    obj.set()
    assert obj.pk == pk
    assert [o.flavour for o in model.all()] == ["b"]


# -- 2. KEYS, globs and prefixes that start alike --------------------------------------------------

GLOB_PKS = ["*", "[ab]", "a", "b", "?", "\\", "x*y", "Two:1", "[", "]", "{x}", "with space", "ç"]


def mix_models(make: Factory) -> tuple[Any, Any]:
    fields = {"id": types.StringType(), "flavour": types.StringType()}
    mix = make("Mix", __indexes__=("flavour",), **fields)
    mix_two = make("MixTwo", __indexes__=("flavour",), **fields)
    return mix, mix_two


def test_glob_like_pks_and_alike_prefixes(make: Factory, client: Any) -> None:
    mix, mix_two = mix_models(make)
    mix.set_many([mix({"id": pk, "flavour": "m"}) for pk in GLOB_PKS])
    mix_two.set_many([mix_two({"id": pk, "flavour": "m"}) for pk in ["1", "*", "a"]])

    assert sorted(o.id for o in mix.all()) == sorted(GLOB_PKS)
    assert sorted(o.id for o in mix_two.all()) == sorted(["1", "*", "a"])
    assert mix.count() == len(GLOB_PKS)
    assert mix_two.count() == 3
    assert mix.match_for_pk("*").id == "*"
    assert mix.match(id="[ab]").id == "[ab]"
    assert [o.id for o in mix.match_for_pks(["*", "[ab]", "nope"]) if o] == ["*", "[ab]"]
    assert sorted(o.id for o in mix.filter(flavour="m")) == sorted(GLOB_PKS)
    assert sorted(o.id for o in mix.filter(id__in=["*", "?"])) == ["*", "?"]  # unindexed: a scan

    mix.match_for_pk("*").delete()
    assert sorted(o.id for o in mix.all()) == sorted(set(GLOB_PKS) - {"*"})
    assert mix_two.match_for_pk("*").id == "*"

    assert mix.delete_all() == len(GLOB_PKS) - 1
    assert mix.all() == []
    assert mix.count() == 0
    assert sorted(o.id for o in mix_two.all()) == sorted(["1", "*", "a"])
    assert mix_two.check_indexes() == []
    assert mix.check_indexes() == []
    assert all(not k.startswith(("Mix:", "Mix#")) for k in key_names(client))
    assert mix_two.delete_all() == 3
    assert key_names(client) == set()


def test_old_objects_without_members_are_found_by_escaped_scan(make_old: Factory, client: Any) -> None:
    """delete_all/rebuild_indexes SCAN for 0.3.x objects: the pattern must not be a glob."""
    mix, mix_two = mix_models(make_old)
    for model, pks in ((mix, ["*", "[ab]", "a"]), (mix_two, ["1", "*"])):
        store = model._engine()
        for pk in pks:
            payload = json.dumps({"id": pk, "flavour": "old", "pk": None})
            if store.layout.name == "simple":
                client.set(store.keys.object(pk), payload)
            else:
                client.hset(store.keys.model_hash(), store.keys.object(pk), payload)
    assert mix.rebuild_indexes() == 3
    assert sorted(o.id for o in mix.all()) == ["*", "[ab]", "a"]
    # not adopted by Mix's rebuild: still unlisted, found by a scan of MixTwo's keys only
    assert sorted(o.id for o in mix_two.all()) == ["*", "1"]
    assert mix_two.explain().members_complete is False
    assert mix.delete_all() == 3
    assert mix_two.delete_all() == 2  # its 0.3.x objects were still there
    assert key_names(client) == set()


@pytest.mark.parametrize(("prefix", "neighbours"), [("M*", ["Mx", "M"]), ("M?", ["Mx", "M"]), ("[M]", ["M"])])
def test_glob_characters_in_prefix(make: Factory, client: Any, prefix: str, neighbours: list[str]) -> None:
    fields = {"id": types.StringType(), "n": types.IntType()}
    model = make("Globby", __prefix__=prefix, __indexes__=("n",), **fields)
    others = [make(f"Other{i}", __prefix__=p, **fields) for i, p in enumerate(neighbours)]
    model.set_many([model({"id": str(i), "n": i}) for i in range(3)])
    for other in others:
        other.set_many([other({"id": str(i), "n": i}) for i in range(2)])
    assert model.count() == 3
    assert model.delete_all() == 3
    for other in others:
        assert sorted(o.id for o in other.all()) == ["0", "1"]
        assert other.check_indexes() == []
        assert other.delete_all() == 2
    assert key_names(client) == set()


def test_library_never_sends_keys(make: Factory, client: Any) -> None:
    mix, mix_two = mix_models(make)
    expiring = make(
        "Brief", __expire__=60, __indexes__=("flavour",), id=types.StringType(), flavour=types.StringType()
    )
    mix_two({"id": "*", "flavour": "m"}).set()
    recorder = Recorder(client, forbid_keys=True)
    for model in (mix, expiring):
        model.set_many([model({"id": pk, "flavour": "m"}) for pk in GLOB_PKS])
        model.all()
        model.filter(flavour="m")
        model.filter(id="*")
        model.count()
        model.count(flavour__not="x")
        list(model.query())
        model.query().order_by("id").limit(2).all()
        model.match_for_pk("*").refresh()
        model.check_indexes()
        model.rebuild_indexes()
        model.delete_filter(id="[ab]")
        model.delete_many(["?"])
        model.delete_all()
    expiring.purge_expired()
    assert recorder.commands, "the recorder saw nothing: it is not wired"
    assert "KEYS" not in recorder.names
    assert mix_two.match_for_pk("*").id == "*"


def test_monitor_sees_no_keys_on_a_real_server(request: pytest.FixtureRequest, layout: type) -> None:
    """MONITOR also shows commands run inside Lua scripts."""
    client = real_client(request.config)
    try:
        db = client.connection_pool.connection_kwargs.get("db", 0)
        model = ice_cream(layout, client)
        sentinel = f"rs-sentinel-{uuid.uuid4().hex}"
        seen: list[dict[str, Any]] = []
        with client.monitor() as monitor:
            model.set_many([model({"id": pk, "flavour": "v", "amount_kg": 1}) for pk in GLOB_PKS])
            model.filter(flavour="v", amount_kg__gte=0)
            model.all()
            model.count(amount_kg__lt=3)
            model.check_indexes()
            model.rebuild_indexes()
            model.delete_all()
            client.echo(sentinel)
            while True:
                cmd = monitor.next_command()
                if sentinel in cmd["command"]:
                    break
                if cmd["db"] == db:
                    seen.append(cmd)
        names = [c["command"].split(" ", 1)[0].strip('"').upper() for c in seen]
        assert "EVALSHA" in names or "EVAL" in names
        assert any(c["client_type"] == "lua" for c in seen)  # the scripts' own calls are visible
        assert "KEYS" not in names
    finally:
        client.flushdb()
        client.close()


# -- 3. Hash set() called EXPIRE key None ----------------------------------------------------------


def test_set_without_expire_has_no_ttl(make: Factory, client: Any) -> None:
    model = make("Forever", id=types.StringType(), __indexes__=("id",))
    model({"id": "1"}).set()
    assert model.match_for_pk("1").id == "1"
    assert key_names(client)
    for key in key_names(client):
        assert client.ttl(key) == -1, key


def test_set_with_expire_has_a_ttl(make: Factory, client: Any) -> None:
    model = make("Brief", __expire__=100, id=types.StringType())
    model({"id": "1"}).set()
    assert model.match_for_pk("1").id == "1"
    assert key_names(client)
    for key in key_names(client):
        assert 0 < client.ttl(key) <= 100, key


def test_expire_and_no_expire_models_side_by_side(make: Factory, client: Any) -> None:
    forever = make("Forever", id=types.StringType())
    brief = make("Brief", __expire__=50, __indexes__=("id",), id=types.StringType())
    forever({"id": "1"}).set()
    brief({"id": "1"}).set()
    for key in key_names(client):
        ttl = client.ttl(key)
        if key.startswith("Forever"):
            assert ttl == -1, key
        else:
            assert 0 < ttl <= 100, key  # indexed: payload kept one more period
    assert forever.count() == brief.count() == 1


# -- 4. filter parsing with str.replace ------------------------------------------------------------


@pytest.mark.parametrize("indexed", [False, True])
def test_suffix_like_field_names(make: Factory, indexed: bool) -> None:
    model = make(
        "Notes",
        __indexes__=("name_in", "notes", "gte_count") if indexed else None,
        id=types.StringType(),
        name_in=types.StringType(),
        notes=types.StringType(),
        gte_count=types.IntType(),
    )
    model.set_many(
        [
            model({"id": "1", "name_in": "x", "notes": "n1", "gte_count": 1}),
            model({"id": "2", "name_in": "y", "notes": "n2", "gte_count": 5}),
            model({"id": "3", "name_in": "x", "notes": None, "gte_count": None}),
        ]
    )

    def ids(**kw: Any) -> list[str]:
        return sorted(o.id for o in model.filter(**kw))

    assert ids(name_in="x") == ["1", "3"]
    assert ids(name_in__in=["y"]) == ["2"]
    assert ids(name_in__not="x") == ["2"]
    assert ids(name_in__exclude=["x", "y"]) == []
    assert ids(notes="n1") == ["1"]
    assert ids(notes__not="n1") == ["2", "3"]
    assert ids(notes__in=["n2", None]) == ["2", "3"]
    assert ids(gte_count__gte=1) == ["1", "2"]
    assert ids(gte_count=5) == ["2"]
    assert model.count(name_in="x", notes__not="n1") == 1
    assert model.match(notes="n2").id == "2"


# -- 5. comparisons with None raised TypeError -----------------------------------------------------


@pytest.mark.parametrize("indexed", [False, True])
def test_ranges_skip_stored_none(make: Factory, indexed: bool) -> None:
    model = make(
        "Amounts",
        __indexes__=("amount", "when") if indexed else None,
        id=types.StringType(),
        amount=types.IntType(),
        when=types.DateTimeType(),
    )
    model.set_many(
        [
            model({"id": "none", "amount": None}),
            model({"id": "zero", "amount": 0, "when": "2026-01-01T00:00:00"}),
            model({"id": "one", "amount": 1}),
            model({"id": "two", "amount": 2, "when": "2027-01-01T00:00:00"}),
            model({"id": "five", "amount": 5}),
        ]
    )

    def ids(**kw: Any) -> list[str]:
        return sorted(o.id for o in model.filter(**kw))

    assert ids(amount__gt=1) == ["five", "two"]
    assert ids(amount__gte=1) == ["five", "one", "two"]
    assert ids(amount__lt=2) == ["one", "zero"]
    assert ids(amount__lte=0) == ["zero"]
    assert ids(amount=None) == ["none"]
    assert ids(amount__not=1) == ["five", "none", "two", "zero"]
    assert ids(amount__gt=None) == []
    assert ids(when__lt="2030-01-01T00:00:00") == ["two", "zero"]
    assert model.count(amount__gt=1) == 2
    assert model.count(when__gte="2026-06-01T00:00:00") == 1
    ordered = [o.id for o in model.query().order_by("amount").all()]
    assert ordered == ["none", "zero", "one", "two", "five"]  # None first, no TypeError
    assert [o.id for o in model.query().order_by("-when").all()][:2] == ["two", "zero"]
    assert model.match(amount__gt=4).id == "five"


# -- 6. exceptions carried no message --------------------------------------------------------------


@pytest.fixture
def shop(make: Factory) -> Any:
    model = make(
        "Shop",
        __indexes__=("flavour", UniqueIndex("code")),
        id=types.StringType(),
        flavour=types.StringType(),
        code=types.StringType(),
        amount=types.IntType(required=True),
    )
    model.set_many(
        [
            model({"id": "1", "flavour": "vanilla", "code": "C1", "amount": 1}),
            model({"id": "2", "flavour": "vanilla", "code": "C2", "amount": 2}),
        ]
    )
    return model


def test_not_found_by_pk_has_a_message(shop: Any) -> None:
    with pytest.raises(NotFound) as info:
        shop.match_for_pk("nope")
    msg = str(info.value)
    assert msg
    assert "Shop" in msg
    assert "'nope'" in msg
    assert not msg.startswith(('"', "'"))  # KeyError would quote it
    assert isinstance(info.value, KeyError)
    assert isinstance(info.value, RedisSchematicsError)


def test_not_found_by_values_names_the_filters(shop: Any) -> None:
    with pytest.raises(NotFound) as info:
        shop.match(flavour="mint")
    assert "Shop.match(flavour='mint')" in str(info.value)
    with pytest.raises(NotFound, match="Shop"):
        shop.match(id="nope")
    with pytest.raises(NotFound, match="Shop"):
        shop.match_for_pk("1").__class__.match(id="1", flavour="mint")


def test_multiple_found_names_filters_and_fix(shop: Any) -> None:
    with pytest.raises(MultipleFound) as info:
        shop.match(flavour="vanilla")
    msg = str(info.value)
    assert "Shop.match(flavour='vanilla')" in msg
    assert "Shop.filter(" in msg


def test_unique_violation_names_field_value_owner(shop: Any) -> None:
    with pytest.raises(UniqueViolation) as info:
        shop({"id": "3", "code": "C1", "amount": 3}).set()
    msg = str(info.value)
    assert "Shop.code" in msg
    assert "'C1'" in msg
    assert "'1'" in msg
    assert "'3'" in msg
    assert (info.value.field, info.value.value, info.value.owner) == ("code", "C1", "1")


def test_invalid_model_has_a_message(shop: Any) -> None:
    with pytest.raises(InvalidModel) as info:
        shop({"id": "3"}).set()
    msg = str(info.value)
    assert "Shop" in msg
    assert "amount" in msg
    assert info.value.errors


def test_invalid_primary_key_has_a_message(shop: Any) -> None:
    with pytest.raises(InvalidPrimaryKey) as info:
        shop.match_for_pk("")
    assert "Shop" in str(info.value)


def test_corrupt_payload_names_the_key(make_old: Factory, client: Any) -> None:
    shop = make_old("Shop", id=types.StringType())
    shop({"id": "1"}).set()
    if shop._engine().layout.name == "simple":
        client.set("Shop:1", "{not json")
    else:
        client.hset("Shop", "Shop:1", "{not json")
    with pytest.raises(CorruptPayload) as info:
        shop.match_for_pk("1")
    assert "'Shop:1'" in str(info.value)
    assert info.value.key == "Shop:1"


def test_strict_performance_has_a_message(make: Factory, client: Any) -> None:
    model = make("Strict", __strict_performance__=True, id=types.StringType(), n=types.IntType())
    with pytest.raises(StrictPerformanceException) as info:
        model.filter(n__gt=1)
    assert "Strict.n" in str(info.value)


def test_every_library_error_has_a_message(shop: Any) -> None:
    attempts: list[Callable[[], Any]] = [
        lambda: shop.match_for_pk("nope"),
        lambda: shop.match(flavour="vanilla"),
        lambda: shop.match(flavour="mint"),
        lambda: shop.filter(flavor="x"),
        lambda: shop.filter(amount__gtee=1),
        lambda: shop.filter(amount="x"),
        lambda: shop.filter(amount__in=3),
        lambda: shop({"id": "9"}).set(),
        lambda: shop({"id": "9", "amount": 1, "code": "C2"}).set(),
        lambda: shop.query().order_by("nope"),
        lambda: shop.query().limit(-1),
    ]
    for attempt in attempts:
        with pytest.raises(RedisSchematicsError) as info:
            attempt()
        assert str(info.value).strip()
        assert "Shop" in str(info.value)


# -- a write resent after a lost reply reports what the first send did (issue 17, #6) ----------


@contextmanager
def resending(name: str = "apply_write") -> Iterator[list[Any]]:
    """Every ``name`` script call is sent twice and answered by the second reply, as when
    redis-py resends a call whose reply was lost (the first send ran). Yields the
    first sends' replies."""
    firsts: list[Any] = []

    def wrap(driver: Any) -> Any:
        base = type(driver)

        class Resending(base):  # type: ignore[misc, valid-type]
            pass

        def twice(request: Any) -> bool:
            return isinstance(request, RunScript) and request.name == name

        if base.is_async:

            async def handle(self: Any, request: Any) -> Any:
                if twice(request):
                    firsts.append(await base.handle(self, request))
                return await base.handle(self, request)
        else:

            def handle(self: Any, request: Any) -> Any:  # type: ignore[misc]
                if twice(request):
                    firsts.append(base.handle(self, request))
                return base.handle(self, request)

        Resending.handle = handle
        return Resending(driver.client)

    with intercept(wrap):
        yield firsts


def test_resent_deletes_report_what_they_deleted(layout: type, client: Any) -> None:
    model = ice_cream(layout, client)
    model.set_many([model({"id": str(i), "flavour": "mint" if i % 2 else "plain"}) for i in range(10)])
    with resending() as firsts:
        assert model({"id": "0"}).delete() is True
        assert model.delete_many(["1", "2", "nope"]) == 2
        assert model.delete_filter(flavour="mint") == 4  # 3, 5, 7, 9
        assert model({"id": "0"}).delete() is False  # gone already: nothing to resend
        model({"id": "4", "flavour": "again"}).set()  # a store: its resend stores it again
    assert len(firsts) >= 4, "the deletes were not resent"
    assert firsts[:3] == [1, 1, 1]  # each delete's first send applied it
    assert sorted(o.id for o in model.all()) == ["4", "6", "8"]
    assert model.match_for_pk("4").flavour == "again"
    assert model.check_indexes() == []


# -- a write queued on the user's pipeline survives SCRIPT FLUSH (issue 17, #8) -----------------


def test_a_write_queued_on_a_pipeline_survives_a_script_flush_before_it_runs(
    layout: type, client: Any
) -> None:
    """redis-py loads a pipeline's registered scripts (SCRIPT EXISTS / LOAD) and then sends
    the pipeline: a SCRIPT FLUSH (or a failover) in between made the queued EVALSHA fail
    with NoScriptError, ~1% of the time under load. The write is queued as EVAL now."""
    model = ice_cream(layout, client)
    model({"id": "1", "flavour": "plain"}).set()
    pipe = client.pipeline()
    model({"id": "1", "flavour": "mint"}).set(pipeline=pipe)
    model({"id": "2", "flavour": "mint"}).set(pipeline=pipe)
    loaded = pipe.load_scripts

    def load_then_flush() -> None:  # the window, made certain
        loaded()
        client.script_flush()

    pipe.load_scripts = load_then_flush  # type: ignore[method-assign]
    pipe.execute()
    assert sorted(o.id for o in model.filter(flavour="mint")) == ["1", "2"]
    assert model.check_indexes() == []
