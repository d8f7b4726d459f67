"""Redis Cluster (SPEC §5): tagged models, slot groups and sharded models.

Every test runs on the ``cluster`` fixture: a fakeredis that checks the slot of every
key of every call (tests/cluster.py) and the real Redis Cluster of CI (ports 7000-7002),
through the sync API and the async twins. The property machines run the same models in
tests/property/test_state_machine.py.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest

from redis_schematics import (
    DistributedHashRedisModel,
    HashRedisModel,
    SimpleRedisModel,
    UniqueIndex,
    UniqueViolation,
    transaction,
)
from redis_schematics.exceptions import ConfigurationError, CrossSlot, NotFound
from redis_schematics.keys import slot_of
from tests.cluster import SlotChecked, SlotError, check, inspector, slot_checked
from tests.dbstate import db_state
from tests.models import ice_cream

FLAVOURS = ("vanilla", "mint", "chocolate", "lemon")
DAY0 = datetime(2030, 1, 1)


def rows(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """``n`` ice creams with repeated flavours, amounts and dates (ties in every order)."""
    rnd = random.Random(seed)
    return [
        {
            "id": f"p{i:03d}",
            "flavour": rnd.choice(FLAVOURS),
            "amount_kg": rnd.randrange(6),
            "price": float(i),
            "best_before": DAY0 + timedelta(days=rnd.randrange(5)),
            "vegan": rnd.random() < 0.5,
            "code": f"c{i}",
        }
        for i in range(n)
    ]


MODES = {
    "tagged": {"hash_tag": True},
    "grouped": {"hash_tag": "shop"},
    "sharded": {"shards": 3, "indexes": ("flavour", "amount_kg", "best_before", "vegan")},
    "sharded-by": {
        "shards": 3,
        "shard_by": "flavour",
        "indexes": ("amount_kg", "best_before", "vegan", UniqueIndex("flavour")),
    },
}


@pytest.fixture(params=list(MODES))
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def cluster_model(layout: type, client: Any, mode: str, prefix: str = "IceCream") -> Any:
    settings = dict(MODES[mode])
    indexed = "indexes" not in settings
    model = ice_cream(layout, client, indexed=indexed, prefix=prefix, **settings)
    return model


def oracle_page(
    data: list[dict[str, Any]], keep: Any, order: list[str], offset: int, limit: int | None
) -> list[str]:
    found = [r for r in data if keep(r)]
    found.sort(key=lambda r: r["id"])
    for name in reversed(order):
        desc = name.startswith("-")
        field = name.lstrip("-")
        found.sort(key=lambda r, f=field: (r[f] is not None, r[f]), reverse=desc)
    stop = None if limit is None else offset + limit
    return [r["id"] for r in found[offset:stop]]


# -- the API on every kind of cluster model -------------------------------------------------


def test_queries_equal_an_oracle(layout: type, cluster: Any, mode: str) -> None:
    model = cluster_model(layout, cluster, mode)
    data = rows(60)
    if mode == "sharded-by":  # one object per flavour: it is the unique shard key
        data = data[: len(FLAVOURS)]
        for r, flavour in zip(data, FLAVOURS, strict=True):
            r["flavour"] = flavour
    model.set_many([model(r) for r in data])
    assert model.count() == len(data)
    for flavour in FLAVOURS:
        want = sorted(r["id"] for r in data if r["flavour"] == flavour)
        assert sorted(o.id for o in model.filter(flavour=flavour)) == want
        assert model.count(flavour=flavour) == len(want)
    for amount in range(6):
        want = sorted(r["id"] for r in data if r["amount_kg"] >= amount)
        assert sorted(o.id for o in model.filter(amount_kg__gte=amount)) == want
        assert model.count(amount_kg__gte=amount) == len(want)
    for order in (["-amount_kg"], ["best_before", "-amount_kg"], ["vegan"]):
        for offset, limit in ((0, 5), (3, 7), (10, None), (0, 1), (55, 10)):
            q = model.query().order_by(*order).offset(offset)
            if limit is not None:
                q = q.limit(limit)
            assert [o.id for o in q.all()] == oracle_page(data, lambda r: True, order, offset, limit)
            keep = lambda r: r["amount_kg"] >= 2  # noqa: E731
            q2 = model.query(amount_kg__gte=2).order_by(*order).offset(offset).limit(limit)
            assert [o.id for o in q2.all()] == oracle_page(data, keep, order, offset, limit)
            assert q2.count() == len(oracle_page(data, keep, order, offset, limit))
    assert sorted(o.id for o in model.query()) == sorted(r["id"] for r in data)  # streamed
    assert model.query(vegan=True).first() is not None or not any(r["vegan"] for r in data)
    assert model.check_indexes() == []


def test_writes_reads_and_deletes(layout: type, cluster: Any, mode: str) -> None:
    model = cluster_model(layout, cluster, mode)
    data = rows(len(FLAVOURS))
    for r, flavour in zip(data, FLAVOURS, strict=True):
        r["flavour"] = flavour
    for r in data:
        model(r).set()
    obj = model.match_for_pk("p001")
    assert obj.flavour == data[1]["flavour"]
    assert [o and o.id for o in model.match_for_pks(["p000", "nope", "p002"])] == ["p000", None, "p002"]
    assert model.match(id="p003").id == "p003"
    assert model.match(flavour=data[2]["flavour"]).id == "p002"
    model.update("p001", lambda o: setattr(o, "amount_kg", 99))
    assert model.match_for_pk("p001").amount_kg == 99
    assert model.count(amount_kg=99) == 1
    obj = model.match_for_pk("p001")
    obj.price = 1.5
    obj.set()
    assert model.match_for_pk("p001").price == 1.5
    assert model.match_for_pk("p000").delete() is True
    with pytest.raises(NotFound):
        model.match_for_pk("p000")
    assert model.delete_many(["p001", "nope"]) == 1
    assert model.delete_filter(flavour=data[2]["flavour"]) == 1
    assert model.count() == 1
    assert model.check_indexes() == []
    assert model.rebuild_indexes() == 0
    assert model.delete_all() == 1
    assert model.count() == 0
    # only update()'s idempotency marker is left, for its 10 s
    assert [k for k in db_state(inspector(cluster)) if "#once:" not in k] == []


def test_expiring_models_purge_per_shard(layout: type, cluster: Any, mode: str) -> None:
    settings = dict(MODES[mode])
    indexed = "indexes" not in settings
    model = ice_cream(layout, cluster, indexed=indexed, expire=60, **settings)
    data = rows(len(FLAVOURS))
    for r, flavour in zip(data, FLAVOURS, strict=True):
        r["flavour"] = flavour
    model.set_many([model(r) for r in data])
    look = inspector(cluster)
    past = 0
    for key in look.scan_iter(match="*#members"):
        past += look.zadd(key, {"p001": 1, "p002": 1}, xx=True, ch=True)
    assert past == 2
    assert model.count() == 2
    assert model.purge_expired() == 2
    assert sorted(o.id for o in model.all()) == ["p000", "p003"]
    assert model.check_indexes() == []


# -- keys and routing ------------------------------------------------------------------------


def test_key_names_are_pinned(cluster: Any) -> None:
    tagged = cluster_model(SimpleRedisModel, cluster, "tagged", prefix="Tagged")
    grouped = cluster_model(HashRedisModel, cluster, "grouped", prefix="Grouped")
    sharded = cluster_model(SimpleRedisModel, cluster, "sharded", prefix="Sharded")
    for model in (tagged, grouped, sharded):
        model({"id": "7", "flavour": "mint", "code": "x"}).set()
    assert tagged.match_for_pk("7").key == "{Tagged}:7"
    assert grouped.match_for_pk("7").key == "{shop}Grouped:7"
    assert sharded.match_for_pk("7").key == "{Sharded.0}:7"
    look = inspector(cluster)
    assert look.exists("{Tagged}:7", "{Sharded.0}:7") == 2
    assert look.hget("{shop}Grouped", "{shop}Grouped:7") is not None
    assert look.sismember("{Tagged}#members", "7")


def test_shards_spread_over_the_slot_range(cluster: Any) -> None:
    model = cluster_model(SimpleRedisModel, cluster, "sharded", prefix="Spread")
    bases = [s.keys.base for s in model._engine().shards]
    assert bases == ["{Spread.0}", "{Spread.1}", "{Spread.3}"]
    assert [slot_of(b) * 3 // 16384 for b in bases] == [0, 1, 2]


def test_a_sharded_model_spreads_its_objects(cluster: Any) -> None:
    model = cluster_model(SimpleRedisModel, cluster, "sharded")
    model.set_many([model(r) for r in rows(300)])
    sizes = [inspector(cluster).scard(s.keys.members()) for s in model._engine().shards]
    assert sum(sizes) == 300
    assert min(sizes) > 60  # CRC16 of the pks: roughly a third each


def test_equality_on_the_pk_or_the_shard_key_asks_one_shard(cluster: Any) -> None:
    by_pk = cluster_model(SimpleRedisModel, cluster, "sharded", prefix="ByPk")
    by_flavour = cluster_model(SimpleRedisModel, cluster, "sharded-by", prefix="ByFlavour")
    plan = by_pk.query(id="p001", flavour="mint").explain()
    assert len(plan.shards) == 1
    assert plan.of_shards == 3
    assert "on one shard (1 of 3)" in str(plan)
    assert len(by_pk.query(flavour="mint").explain().shards) == 3
    assert "on every shard (3 of 3)" in str(by_pk.query(flavour="mint").explain())
    assert len(by_flavour.query(flavour="mint", amount_kg__gt=1).explain().shards) == 1
    assert len(by_flavour.query(amount_kg__gt=1).explain().shards) == 3
    assert by_pk.query(flavour="mint").explain().shards == tuple(s.keys.base for s in by_pk._engine().shards)


def test_a_one_shard_query_touches_one_slot() -> None:
    client = slot_checked()
    model = cluster_model(SimpleRedisModel, client, "sharded-by")
    data = rows(4)
    for r, flavour in zip(data, FLAVOURS, strict=True):
        r["flavour"] = flavour
    model.set_many([model(r) for r in data])
    client.slots.clear()
    assert [o.id for o in model.filter(flavour="mint", amount_kg__gte=0)] == ["p001"]
    assert len(set(client.slots)) == 1
    client.slots.clear()
    assert model.count(amount_kg__gte=0) == 4
    assert len(set(client.slots)) == 3


def test_shards_of_very_different_sizes(layout: type, cluster: Any) -> None:
    """With __shard_by__ one value can fill one shard: merged pages stay exact."""
    model = ice_cream(
        layout,
        cluster,
        indexed=False,
        shards=3,
        shard_by="flavour",
        indexes=("flavour", "amount_kg", "price"),
    )
    data = rows(80)
    for n, r in enumerate(data):
        r["flavour"] = "vanilla" if n < 70 else FLAVOURS[n % 4]
    model.set_many([model(r) for r in data])
    sizes = sorted(inspector(cluster).scard(s.keys.members()) for s in model._engine().shards)
    assert sizes[-1] >= 70
    for offset, limit in ((0, 3), (5, 10), (68, 5), (75, 10)):
        got = [o.id for o in model.query().order_by("-amount_kg").offset(offset).limit(limit).all()]
        assert got == oracle_page(data, lambda r: True, ["-amount_kg"], offset, limit)
        got = [o.id for o in model.query(price__lt=40.0).order_by("price").offset(offset).limit(limit).all()]
        assert got == oracle_page(data, lambda r: r["price"] < 40.0, ["price"], offset, limit)
    assert model.count() == 80
    assert model.count(flavour="vanilla") == len([r for r in data if r["flavour"] == "vanilla"])
    assert sorted(o.id for o in model.query(amount_kg__lt=3)) == sorted(
        r["id"] for r in data if r["amount_kg"] < 3
    )


# -- refusals ------------------------------------------------------------------------------------


def test_an_untagged_model_on_a_cluster_client_is_refused(layout: type, cluster: Any) -> None:
    model = ice_cream(layout, cluster)
    with pytest.raises(ConfigurationError, match=r"__hash_tag__ = True") as info:
        model({"id": "1"}).set()
    assert "IceCream" in str(info.value)
    assert "__shards__ = N" in str(info.value)
    with pytest.raises(ConfigurationError, match=r"Redis Cluster client"):
        model.count()
    assert db_state(inspector(cluster)) == {}


def test_a_unique_index_off_the_shard_key_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"UniqueIndex\('code'\) on a sharded model") as info:
        ice_cream(SimpleRedisModel, None, shards=3)
    assert "__shard_by__ = 'code'" in str(info.value)
    model = ice_cream(SimpleRedisModel, None, shards=3, shard_by="code")
    assert model._engine().shard_by == "code"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"hash_tag": 3}, r"__hash_tag__ must be True .* or a group name"),
        ({"hash_tag": "a{b"}, r"__hash_tag__ 'a\{b' contains '\{'"),
        ({"shards": 0}, r"__shards__ must be an int from 1 to 1024"),
        ({"shards": "3"}, r"__shards__ must be an int"),
        ({"shard_by": "flavour"}, r"__shard_by__ is set but IceCream.__shards__ is not"),
        ({"shards": 2, "shard_by": "nope"}, r"__shard_by__ names 'nope', which is not a field"),
    ],
)
def test_bad_cluster_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ice_cream(SimpleRedisModel, None, indexed=False, **settings)._engine()


def test_a_unique_shard_key_is_enforced_in_its_shard(layout: type, cluster: Any) -> None:
    model = cluster_model(layout, cluster, "sharded-by")
    model({"id": "a", "flavour": "mint"}).set()
    before = db_state(inspector(cluster))
    with pytest.raises(UniqueViolation):
        model({"id": "b", "flavour": "mint"}).set()
    assert db_state(inspector(cluster)) == before


def test_changing_the_shard_key_of_a_stored_object_is_refused(layout: type, cluster: Any) -> None:
    model = ice_cream(layout, cluster, indexed=False, shards=3, shard_by="flavour", indexes=("amount_kg",))
    # two flavours that live in different shards
    engine = model._engine()
    other = next(f for f in FLAVOURS[1:] if engine.shard_of_value(f) is not engine.shard_of_value("vanilla"))
    model({"id": "a", "flavour": "vanilla", "amount_kg": 1}).set()
    before = db_state(inspector(cluster))
    with pytest.raises(CrossSlot, match=r"'a' is stored in shard .*\(its flavour changed\)"):
        model({"id": "a", "flavour": other, "amount_kg": 2}).set()
    with pytest.raises(CrossSlot, match=r"fn changed flavour"):
        model.update("a", lambda o: setattr(o, "flavour", other))
    with pytest.raises(CrossSlot, match=r"two objects with pk 'a' in one write"):
        model.set_many([model({"id": "a", "flavour": "vanilla"}), model({"id": "a", "flavour": other})])
    assert db_state(inspector(cluster)) == before
    # the documented way: delete, then set
    model.match_for_pk("a").delete()
    model({"id": "a", "flavour": other, "amount_kg": 2}).set()
    assert model.match(flavour=other).id == "a"
    assert model.count() == 1


# -- transactions ---------------------------------------------------------------------------------


def test_a_transaction_in_one_slot_group_is_atomic(layout: type, cluster: Any) -> None:
    order = cluster_model(layout, cluster, "grouped", prefix="Order")
    shop = cluster_model(layout, cluster, "grouped", prefix="Shop")
    with transaction() as tx:
        order({"id": "o1", "flavour": "mint", "code": "o"}).set(pipeline=tx)
        shop({"id": "s1", "flavour": "mint", "code": "s"}).set(pipeline=tx)
    assert order.match_for_pk("o1").flavour == shop.match_for_pk("s1").flavour == "mint"
    shop({"id": "s2", "flavour": "x", "code": "taken"}).set()
    before = db_state(inspector(cluster))

    def block() -> None:
        with transaction() as tx:
            order({"id": "o2", "flavour": "mint", "code": "o2"}).set(pipeline=tx)
            shop({"id": "s3", "flavour": "x", "code": "taken"}).set(pipeline=tx)

    with pytest.raises(UniqueViolation):
        block()
    assert db_state(inspector(cluster)) == before


def test_a_transaction_spanning_slots_is_refused(layout: type, cluster: Any) -> None:
    ice = cluster_model(layout, cluster, "tagged", prefix="Ice")
    shop = cluster_model(layout, cluster, "grouped", prefix="Shop")
    before = db_state(inspector(cluster))

    def block() -> None:
        with transaction() as tx:
            ice({"id": "1", "code": "a"}).set(pipeline=tx)
            shop({"id": "1", "code": "b"}).set(pipeline=tx)

    with pytest.raises(CrossSlot) as info:
        block()
    message = str(info.value)
    assert "2 Redis Cluster hash slots" in message
    assert f"slot {slot_of('{Ice}')}: IceCream ({{Ice}})" in message
    assert f"slot {slot_of('{shop}')}: IceCream ({{shop}}Shop)" in message
    assert "Nothing was written" in message
    assert db_state(inspector(cluster)) == before


def test_a_transaction_spanning_shards_is_refused(cluster: Any) -> None:
    model = cluster_model(SimpleRedisModel, cluster, "sharded")
    engine = model._engine()
    pks = [f"k{i}" for i in range(20)]
    spread = {engine.shard_of_value(pk) for pk in pks}
    assert len(spread) > 1

    def block() -> None:
        with transaction() as tx:
            model.set_many([model({"id": pk}) for pk in pks], pipeline=tx)

    with pytest.raises(CrossSlot, match="hash slots"):
        block()
    assert model.count() == 0
    one = [pk for pk in pks if engine.shard_of_value(pk) is engine.shard_of_value("k0")]
    with transaction() as tx:
        model.set_many([model({"id": pk}) for pk in one], pipeline=tx)
    assert model.count() == len(one)


# -- the slot checker itself ---------------------------------------------------------------------


def test_the_slot_checker_refuses_what_a_cluster_refuses() -> None:
    with pytest.raises(SlotError, match="CROSSSLOT"):
        check(("MGET", "{a}:1", "{b}:1"))
    with pytest.raises(SlotError, match="no declared key"):
        check(("EVALSHA", "0" * 40, 0))
    with pytest.raises(SlotError, match="CROSSSLOT"):
        check(("EVALSHA", "0" * 40, 2, "{a}x", "{b}x"))
    with pytest.raises(SlotError, match="SCAN without a hash-tagged MATCH"):
        check(("SCAN", 0, "MATCH", "IceCream:*"))
    with pytest.raises(SlotError, match="does not know the keys of LPUSH"):
        check(("LPUSH", "k", "v"))
    check(("MGET", "{a}:1", "{a}:2"))
    check(("SCAN", 0, b"MATCH", "{a}:*"))
    client = slot_checked()
    assert isinstance(client, SlotChecked)
    with pytest.raises(SlotError):
        client.mget(["{a}:1", "{b}:1"])
    pipe = client.pipeline(transaction=False)
    with pytest.raises(SlotError):
        pipe.mget(["{a}:1", "{b}:1"])


def test_writes_queued_on_a_cluster_pipeline(layout: type, cluster: Any) -> None:
    """redis-py refuses evalsha on a cluster pipeline: the write is queued as EVAL."""
    model = cluster_model(layout, cluster, "tagged")
    pipe = cluster.pipeline(transaction=False)
    model({"id": "1", "flavour": "mint", "code": "a"}).set(pipeline=pipe)
    model({"id": "2", "flavour": "mint", "code": "b"}).set(pipeline=pipe)
    assert model.count() == 0
    assert pipe.execute() == [1, 1]
    assert sorted(o.id for o in model.filter(flavour="mint")) == ["1", "2"]
    assert model.check_indexes() == []


def test_scripts_are_loaded_again_after_a_flush(cluster: Any) -> None:
    """NOSCRIPT (a promoted replica that never saw a script, a SCRIPT FLUSH): the script
    is loaded again and the call sent again, for writes, queries and pipelined reads."""
    model = cluster_model(DistributedHashRedisModel, cluster, "sharded", prefix="Flushed")
    model.set_many([model(r) for r in rows(30)])
    cluster.script_flush()
    model({"id": "new", "flavour": "mint"}).set()
    cluster.script_flush()
    assert model.count(flavour="mint") == sum(r["flavour"] == "mint" for r in rows(30)) + 1
    cluster.script_flush()
    assert len(model.match_for_pks([r["id"] for r in rows(30)])) == 30  # read_fields, pipelined
    assert model.check_indexes() == []
