"""Expiry (``__expire__``) on every layout and backend.

An expiring model keeps each object's deadline (server ms) in its ``Prefix#members``
ZSET. Most tests make objects expire at once by moving that deadline to the past
(``ZADD XX``); a few use ``__expire__ = 1`` and really wait, to prove that the deadline
written by the library and the Redis TTLs do their job on their own.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from schematics import types

from redis_schematics import NotFound, RangeIndex, SimpleRedisModel, UniqueIndex
from tests.dbstate import is_marker
from tests.races import racing

INDEXES = ("flavour", RangeIndex("kg"), UniqueIndex("code"))
PKS = [f"p{i}" for i in range(10)]


def txt(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def model_of(layout: type, client: Any, expire: float, indexed: bool = True, name: str = "Melt") -> type:
    return type(layout)(
        name,
        (layout,),
        {
            "__redis_client__": client,
            "__expire__": expire,
            "__indexes__": INDEXES if indexed else None,
            "flavour": types.StringType(),
            "kg": types.IntType(),
            "code": types.StringType(),
            "note": types.StringType(),
        },
    )


def server_ms(client: Any) -> int:
    sec, usec = client.time()
    return int(sec) * 1000 + int(usec) // 1000


def expire_now(model: type, *pks: str) -> None:
    """Move the deadlines of ``pks`` into the past (the payloads stay, as after a real expiry)."""
    client = model.__redis_client__
    past = server_ms(client) - 10
    members = model._engine().keys.members()
    assert client.zadd(members, dict.fromkeys(pks, past), xx=True, ch=True) == len(pks)


def keys_of(model: type) -> set[str]:
    client = model.__redis_client__
    base = model._engine().keys.base
    return {
        txt(k)
        for k in client.scan_iter(count=1000)
        if (txt(k) == base or txt(k).startswith((base + ":", base + "#"))) and not is_marker(k)
    }


def index_members(model: type) -> dict[str, set[str]]:
    """pk -> the index keys listing it (sets, zsets, unique owners)."""
    client = model.__redis_client__
    out: dict[str, set[str]] = {}
    for key in keys_of(model):
        if not any(tag in key for tag in ("#eq:", "#range:", "#unique:")):
            continue  # objects, columns, members
        kind = txt(client.type(key))
        if kind == "set":
            pks = [txt(m) for m in client.smembers(key)]
        elif kind == "zset":
            pks = [txt(m) for m in client.zrange(key, 0, -1)]
        else:
            pks = [txt(v) for v in client.hvals(key)]
        for pk in pks:
            out.setdefault(pk, set()).add(key)
    return out


def fill(model: type, n: int = 8) -> None:
    model.set_many(
        [
            model({"pk": f"p{i}", "flavour": "ab"[i % 2], "kg": i, "code": f"c{i}", "note": "n"})
            for i in range(n)
        ]
    )


def visible(model: type) -> dict[str, Any]:
    """Everything the read API shows, in comparable form."""
    return {
        "all": [o.pk for o in model.all()],
        "count": model.count(),
        "filter_eq": [o.pk for o in model.filter(flavour="a")],
        "count_eq": model.count(flavour="a"),
        "filter_range": [o.pk for o in model.filter(kg__gte=0)],
        "count_range": model.count(kg__lt=100),
        "filter_unique": [o.pk for o in model.filter(code__in=[f"c{i}" for i in range(10)])],
        "filter_scan": [o.pk for o in model.filter(note="n")],
        "count_scan": model.count(note="n"),
        "page": [o.pk for o in model.query(kg__gte=0).order_by("-kg").limit(3).offset(1)],
        "iter": sorted(o.pk for o in model.query(flavour__in=["a", "b"])),
        "by_pk": [o.pk for o in model.match_for_pks(PKS) if o is not None],
    }


@pytest.mark.parametrize("indexed", [True, False])
def test_expired_objects_never_appear(layout: type, backend: Any, indexed: bool) -> None:
    model = model_of(layout, backend, 60, indexed)
    fill(model)
    expire_now(model, "p1", "p2", "p5")
    alive = ["p0", "p3", "p4", "p6", "p7"]
    seen = visible(model)
    assert seen["all"] == alive
    assert seen["count"] == 5
    assert seen["filter_eq"] == ["p0", "p4", "p6"]
    assert seen["count_eq"] == 3
    assert seen["filter_range"] == alive
    assert seen["count_range"] == 5
    assert seen["filter_unique"] == alive
    assert seen["filter_scan"] == alive
    assert seen["count_scan"] == 5
    assert seen["page"] == ["p6", "p4", "p3"]
    assert seen["iter"] == alive
    assert seen["by_pk"] == alive
    with pytest.raises(NotFound):
        model.match_for_pk("p1")
    with pytest.raises(NotFound):
        model.match(code="c2")
    with pytest.raises(NotFound):
        model.match(pk="p5")
    assert model.match(code="c3").pk == "p3"
    assert model.query(kg__lte=2).first().pk == "p0"
    # an expired object is not "deleted" again, and frees its unique value
    assert model.delete_many(["p1"]) == 0
    if indexed:
        model({"pk": "new", "code": "c2"}).set()
        assert model.match(code="c2").pk == "new"


def test_real_ttl_expires_everything(layout: type, backend: Any) -> None:
    model = model_of(layout, backend, 1)
    fill(model, 4)
    assert visible(model)["all"] == ["p0", "p1", "p2", "p3"]
    time.sleep(1.1)
    seen = visible(model)
    assert all(not v for v in seen.values()), seen
    # a fresh write after the expiry is visible, the old unique claim does not block it
    model({"pk": "p9", "flavour": "a", "kg": 1, "code": "c0"}).set()
    assert [o.pk for o in model.filter(code="c0")] == ["p9"]
    model.purge_expired()
    assert model.check_indexes() == []


def test_purge_removes_index_entries_in_bounded_batches(layout: type, backend: Any) -> None:
    model = model_of(layout, backend, 60)
    fill(model)
    expire_now(model, "p1", "p2", "p3", "p4", "p5")
    before = index_members(model)
    assert {"p1", "p2", "p3", "p4", "p5"} <= set(before)
    assert model.purge_expired(batch=2, max_batches=1) == 2
    after = index_members(model)
    gone = set(before) - set(after)
    assert len(gone) == 2
    assert gone <= {"p1", "p2", "p3", "p4", "p5"}
    members = model._engine().keys.members()
    assert backend.zcard(members) == 6
    assert model.purge_expired(batch=2, max_batches=1) == 2
    assert model.purge_expired() == 1
    assert model.purge_expired() == 0
    assert set(index_members(model)) == {"p0", "p6", "p7"}
    assert sorted(txt(m) for m in backend.zrange(members, 0, -1)) == ["p0", "p6", "p7"]
    assert model.check_indexes() == []
    # the payloads of purged objects are gone too
    assert [o is None for o in model.match_for_pks(["p1", "p0"])] == [True, False]
    assert not stored_by_hand(model, "p1")
    assert stored_by_hand(model, "p0")


def stored_by_hand(model: type, pk: str) -> bool:
    """Is anything of ``pk`` physically in Redis (whatever its deadline)? Plain commands."""
    client = model.__redis_client__
    layout = model._engine().layout
    if layout.name in ("simple", "distributed"):
        return bool(client.exists(f"Melt:{pk}"))
    if layout.name == "hash":
        return bool(client.hexists("Melt", f"Melt:{pk}"))
    return any(client.hexists(col, pk) for col in layout.meta_keys())


@pytest.mark.parametrize(
    "read",
    [
        lambda m: m.filter(flavour="b"),  # indexed: the query script meets them
        lambda m: m.count(kg__gte=0),  # indexed count
        lambda m: m.filter(note="n"),  # scan: loading meets them
        lambda m: m.match_for_pks(["p1", "p3", "p5"]),  # by pk
        lambda m: m.query(kg__gte=0).order_by("kg").limit(2).all(),  # server page
    ],
    ids=["filter-indexed", "count-indexed", "filter-scan", "by-pk", "page"],
)
def test_queries_purge_what_they_meet(layout: type, backend: Any, read: Any) -> None:
    model = model_of(layout, backend, 60)
    fill(model)
    expire_now(model, "p1", "p3", "p5")
    assert {"p1", "p3", "p5"} <= set(index_members(model))
    read(model)
    assert set(index_members(model)) == {"p0", "p2", "p4", "p6", "p7"}
    assert model.check_indexes() == []


@pytest.mark.parametrize("indexed", [True, False])
def test_nothing_remains_after_everything_expired_and_was_purged(
    layout: type, backend: Any, indexed: bool
) -> None:
    model = model_of(layout, backend, 60, indexed)
    fill(model)
    model({"pk": "p0", "flavour": "z", "kg": 99, "code": "c99", "note": None}).set()  # an update
    model.match_for_pk("p7").delete()
    assert keys_of(model)
    expire_now(model, *[f"p{i}" for i in range(7)])
    assert model.purge_expired() == 7
    assert keys_of(model) == set()
    assert model.count() == 0


def test_simple_and_hash_show_the_same(backend: Any) -> None:
    from redis_schematics import HashRedisModel, SimpleRedisModel

    simple = model_of(SimpleRedisModel, backend, 60, name="MeltS")
    hashed = model_of(HashRedisModel, backend, 60, name="MeltH")
    steps: list[tuple[str, Any]] = [
        ("fill", None),
        ("expire", ("p1", "p2")),
        ("set", {"pk": "p2", "flavour": "a", "kg": 20, "code": "c2", "note": "n"}),
        ("set", {"pk": "p3", "flavour": "b", "kg": 30, "code": "c1", "note": "n"}),  # takes expired p1's code
        ("delete", "p4"),
        ("expire", ("p0", "p3")),
        ("purge", None),
        ("set", {"pk": "p0", "flavour": "b", "kg": None, "code": "c0", "note": None}),
        ("expire", ("p5",)),
    ]
    for n, (kind, arg) in enumerate(steps):
        for model in (simple, hashed):
            if kind == "fill":
                fill(model)
            elif kind == "expire":
                expire_now(model, *arg)
            elif kind == "set":
                model(dict(arg)).set()
            elif kind == "delete":
                model.delete_many([arg])
            else:
                model.purge_expired()
        assert visible(simple) == visible(hashed), (n, kind)
    assert visible(simple)["all"] == ["p0", "p2", "p6", "p7"]
    assert simple.check_indexes() == []
    assert hashed.check_indexes() == []


def test_simple_and_hash_agree_with_real_ttl(backend: Any) -> None:
    from redis_schematics import HashRedisModel, SimpleRedisModel

    simple = model_of(SimpleRedisModel, backend, 1, name="MeltS")
    hashed = model_of(HashRedisModel, backend, 1, name="MeltH")
    for model in (simple, hashed):
        fill(model, 4)
    time.sleep(0.7)
    for model in (simple, hashed):
        model({"pk": "p1", "flavour": "a", "kg": 5, "code": "c1", "note": "n"}).set()  # renewed
    # p0, p2, p3 are past their deadline (1 s after fill), p1 is not (1 s after renewal):
    # the reads below have about 0.5 s to run
    time.sleep(0.45)
    seen_simple, seen_hashed = visible(simple), visible(hashed)
    assert seen_simple == seen_hashed
    assert seen_simple["all"] == ["p1"]
    assert seen_simple["filter_eq"] == ["p1"]


def test_a_reset_object_gets_a_fresh_deadline(layout: type, backend: Any) -> None:
    model = model_of(layout, backend, 60)
    members = model._engine().keys.members()
    start = server_ms(backend)
    fill(model, 2)
    first = backend.zscore(members, "p0")
    assert start + 59_000 <= first <= server_ms(backend) + 60_000
    expire_now(model, "p0")
    assert model.filter(code="c0") == []
    before = server_ms(backend)
    model({"pk": "p0", "flavour": "a", "kg": 1, "code": "c0", "note": "n"}).set()
    renewed = backend.zscore(members, "p0")
    assert before + 60_000 <= renewed <= server_ms(backend) + 60_000
    assert [o.pk for o in model.filter(code="c0")] == ["p0"]
    assert model.count() == 2
    assert model.check_indexes() == []


def test_a_reset_object_lives_on_with_real_ttl(layout: type, backend: Any) -> None:
    model = model_of(layout, backend, 1)
    fill(model, 2)
    time.sleep(0.7)
    model({"pk": "p0", "flavour": "a", "kg": 0, "code": "c0", "note": "n"}).set()
    time.sleep(0.45)  # p1 is past its deadline, p0 has about 0.5 s left
    assert [o.pk for o in model.all()] == ["p0"]
    assert model.match(code="c0").pk == "p0"
    assert model.count(flavour="a") == 1


@pytest.mark.parametrize("indexed", [True, False])
def test_redis_ttls_are_set(layout: type, backend: Any, indexed: bool) -> None:
    """store.py: deadlines in the members ZSET; payloads live one more period when indexes
    need them; every key a write touches lives at least as long as the objects it lists."""
    model = model_of(layout, backend, 60, indexed)
    store = model._engine()
    fill(model, 3)
    physical = 120_000 if indexed else 60_000

    def pttl(key: str) -> int:
        return int(backend.pttl(key))

    name = store.layout.name
    if name in ("simple", "distributed"):  # a key (string or hash) per object
        object_keys = [f"Melt:p{i}" for i in range(3)]
    elif name == "hash":  # one hash
        object_keys = ["Melt"]
    else:  # a hash per column
        object_keys = list(store.layout.meta_keys())
    for key in object_keys:
        assert physical - 5_000 < pttl(key) <= physical, key
    keys = keys_of(model)
    meta = [k for k in keys if "#" in k and k not in object_keys]
    assert "Melt#members" in meta
    if indexed:
        assert {"Melt#eq:flavour:a", "Melt#range:kg", "Melt#unique:code", "Melt#meta"} <= set(meta)
    else:
        assert sorted(meta) == ["Melt#members", "Melt#meta"]
    for key in meta:
        # at least as long as the deadline of the newest object it lists
        assert pttl(key) > 60_000 - 5_000, key
    # no key of the model lives forever
    assert all(pttl(k) > 0 for k in keys)


# -- known gaps (strict xfail: they start failing, loudly, once fixed) ------------------------
# Was a known gap: a write refused by an expired owner's claim now purges that owner first.
def test_an_expired_owner_does_not_block_its_unique_value(layout: type, backend: Any) -> None:
    model = model_of(layout, backend, 60)
    model({"pk": "old", "flavour": "a", "kg": 1, "code": "c1", "note": "n"}).set()
    expire_now(model, "old")
    # no read in between: nothing has purged "old" yet
    model({"pk": "new", "code": "c1"}).set()
    assert model.match(code="c1").pk == "new"


# Was a known gap: when Redis expired the payload before any purge, purge_expired now
# finds its entries without it (Store.orphan_entries).
@pytest.mark.parametrize("base", ["simple", "distributed"])
def test_entries_go_even_when_the_payload_expired_first(backend: Any, base: str) -> None:
    from tests.conftest import LAYOUTS

    model = model_of(LAYOUTS[base], backend, 60)
    model({"pk": "a", "flavour": "x", "kg": 1, "code": "ca", "note": "n"}).set()
    model({"pk": "b", "flavour": "x", "kg": 2, "code": "cb", "note": "n"}).set()
    expire_now(model, "a")
    backend.pexpire("Melt:a", 1)  # what Redis does at the payload's own TTL
    time.sleep(0.01)
    assert not stored_by_hand(model, "a")
    model.purge_expired()
    assert set(index_members(model)) == {"b"}
    model({"pk": "z", "code": "ca"}).set()


def thaw(client: Any) -> Any:
    """A Simple model with a 60 s TTL and an equality index on ``flavour``."""
    return type(SimpleRedisModel)(
        "Thaw",
        (SimpleRedisModel,),
        {
            "__redis_client__": client,
            "__expire__": 60,
            "__indexes__": ("flavour",),
            "flavour": types.StringType(),
            "note": types.StringType(),
        },
    )


def test_purge_that_retries_still_removes_entries_of_an_already_expired_payload(client: Any) -> None:
    """A purge needing 3+ attempts re-reads its objects; for one whose payload Redis
    already expired, the entries found without the payload must still go (review
    finding: the re-read used to replace them with nothing)."""
    model = thaw(client)
    model({"pk": "a", "flavour": "x", "note": "n"}).set()
    model({"pk": "b", "flavour": "x", "note": "n"}).set()
    keys = model._engine().keys
    sec, usec = client.time()
    past = int(sec) * 1000 + int(usec) // 1000 - 10
    client.zadd(keys.members(), {"a": past, "b": past}, xx=True)  # both past their deadline
    client.delete("Thaw:a")  # Redis expired a's payload before any purge

    def rewrite_b(redis_client: Any, n: int) -> None:  # another client rewrites b (still expired) twice
        if n <= 2:
            redis_client.set("Thaw:b", f'{{"pk":"b","flavour":"x","note":"{n}"}}')

    engine = model._engine()
    with racing(client, rewrite_b) as race:
        assert engine.sync().run(engine.purge_pks(["a", "b"])) == 2
    assert len(race.calls) == 3
    assert not client.exists(keys.equality("flavour", "x"))
    assert model.check_indexes() == []


def test_delete_whose_payload_expires_between_attempts_removes_its_entries(client: Any) -> None:
    """Redis expires the payload after delete() read it and before its write: the retry
    finds no payload, and must still remove the entries the payload had."""
    model = thaw(client)
    obj = model({"pk": "a", "flavour": "x"})
    obj.set()
    keys = model._engine().keys

    def expire_a(redis_client: Any, n: int) -> None:
        if n == 1:
            redis_client.delete("Thaw:a")  # its TTL ran out just now

    with racing(client, expire_a) as race:
        obj.delete()
    assert len(race.calls) >= 2
    assert not client.exists(keys.equality("flavour", "x"))
    assert model.check_indexes() == []
