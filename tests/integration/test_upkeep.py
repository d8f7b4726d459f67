"""check_indexes / rebuild_indexes against indexes corrupted by hand, on every layout and backend.

Each test breaks Redis with plain commands (SREM, SADD, ZADD, HSET, SET ...), checks that
``check_indexes`` names exactly the problems made, then that ``rebuild_indexes`` repairs
them: ``check_indexes`` is empty again and the index keys hold exactly what the stored
objects imply. The last tests rebuild while other threads write, on the real server.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from typing import Any

import pytest
import redis
from schematics import types

from redis_schematics import HashRedisModel, RangeIndex, SimpleRedisModel, UniqueIndex, UniqueViolation
from tests.conftest import full_profile, real_client
from tests.dbstate import is_marker

INDEXES = ("flavour", RangeIndex("kg"), UniqueIndex("code"))


#: how long the writers run beside a rebuild (shorter in the quick profile)
WRITERS_SECONDS = 3 if full_profile() else 1


def txt(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def model_of(layout: type, client: Any, expire: int | None = None, name: str = "Up") -> type:
    return type(layout)(
        name,
        (layout,),
        {
            "__redis_client__": client,
            "__prefix__": "Up",
            "__expire__": expire,
            "__indexes__": INDEXES,
            "flavour": types.StringType(),
            "kg": types.IntType(),
            "code": types.StringType(),
        },
    )


def fill(model: type, n: int = 6) -> None:
    model.set_many(
        [model({"pk": f"p{i}", "flavour": "ab"[i % 2], "kg": i, "code": f"c{i}"}) for i in range(n)]
    )


def problems(model: type) -> set[tuple[str, str, str]]:
    return {(p.kind, p.key, p.member) for p in model.check_indexes()}


def index_state(client: Any) -> dict[str, Any]:
    """Every index key of ``Up`` with its content, and the members."""
    out: dict[str, Any] = {}
    for key in client.scan_iter(match="Up#*", count=1000):
        if is_marker(key):  # a delete's idempotency marker: expires on its own
            continue
        key = txt(key)
        kind = txt(client.type(key))
        if kind == "set":
            out[key] = {txt(m) for m in client.smembers(key)}
        elif kind == "zset":
            scores = dict(client.zrange(key, 0, -1, withscores=True))
            # members of an expiring model carry deadlines: compare membership only
            out[key] = (
                {txt(m) for m in scores} if key == "Up#members" else {txt(m): s for m, s in scores.items()}
            )
        else:
            out[key] = {txt(k): txt(v) for k, v in client.hgetall(key).items()}
    return out


def write_payload(model: type, client: Any, pk: str, data: dict[str, Any]) -> None:
    """Write an object's stored form with plain commands, bypassing the library: no
    members entry, no index entry (as the 0.3.x library or a stray script would)."""
    name = model._engine().layout.name
    if name == "simple":
        client.set(f"Up:{pk}", json.dumps({"pk": pk, **data}))
    elif name == "hash":
        client.hset("Up", f"Up:{pk}", json.dumps({"pk": pk, **data}))
    else:  # field layouts: strings as text, numbers as JSON
        cells = {"pk": pk, **{k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}}
        if name == "distributed":
            client.hset(f"Up:{pk}", mapping=cells)
        else:
            for field, cell in cells.items():
                client.hset(f"Up#col:{field}", pk, cell)


@pytest.fixture(params=[None, 600], ids=["lasting", "expiring"])
def expire(request: pytest.FixtureRequest) -> int | None:
    return request.param


def test_consistent_data_has_no_problem(layout: type, backend: Any, expire: int | None) -> None:
    model = model_of(layout, backend, expire)
    fill(model)
    model({"pk": "p1", "flavour": None, "kg": None, "code": None}).set()
    model.match_for_pk("p2").delete()
    assert model.check_indexes() == []
    assert model.rebuild_indexes() == 0


def test_each_problem_kind_is_reported_and_repaired(layout: type, backend: Any, expire: int | None) -> None:
    model = model_of(layout, backend, expire)
    fill(model)
    good = index_state(backend)
    members_add = (
        (lambda pk: backend.zadd("Up#members", {pk: 10**13}))
        if expire
        else (lambda pk: backend.sadd("Up#members", pk))
    )
    members_rem = (
        (lambda pk: backend.zrem("Up#members", pk)) if expire else (lambda pk: backend.srem("Up#members", pk))
    )

    backend.srem("Up#eq:flavour:a", "p0")  # missing entry (equality)
    backend.zrem("Up#range:kg", "p1")  # missing entry (range)
    backend.hdel("Up#unique:code", "c2")  # missing entry (unique)
    backend.sadd("Up#eq:flavour:zzz", "p3")  # stale entry
    backend.zadd("Up#range:kg", {"p4": 44})  # wrong score
    backend.hset("Up#unique:code", "ghost-code", "p5")  # orphan claim by a stored object
    backend.hset("Up#unique:code", "lost", "nobody")  # orphan claim by nothing
    members_rem("p5")  # missing member
    members_add("ghost")  # stale member
    backend.set("Up#eq:color:red", "x")  # unknown key (an index no longer declared)
    backend.sadd("Up#junk", "p0")  # unknown key

    assert problems(model) == {
        ("missing entry", "Up#eq:flavour:a", "p0"),
        ("missing entry", "Up#range:kg", "p1"),
        ("missing entry", "Up#unique:code", "p2"),
        ("stale entry", "Up#eq:flavour:zzz", "p3"),
        ("wrong score", "Up#range:kg", "p4"),
        ("orphan unique claim", "Up#unique:code", "ghost-code"),
        ("orphan unique claim", "Up#unique:code", "lost"),
        ("missing member", "Up#members", "p5"),
        ("stale member", "Up#members", "ghost"),
        ("unknown key", "Up#eq:color:red", ""),
        ("unknown key", "Up#junk", ""),
    }
    details = {(p.kind, p.member): p.detail for p in model.check_indexes()}
    assert "44" in details[("wrong score", "p4")]
    assert "4.0" in details[("wrong score", "p4")]
    assert "nobody" in details[("orphan unique claim", "lost")]
    # while the index is broken, queries still give right answers (re-checked candidates)
    assert [o.pk for o in model.filter(flavour="zzz")] == []

    assert model.rebuild_indexes() >= 8
    assert model.check_indexes() == []
    assert index_state(backend) == good
    assert [o.pk for o in model.filter(flavour="a")] == ["p0", "p2", "p4"]
    assert [o.pk for o in model.filter(kg__gte=1, kg__lt=5)] == ["p1", "p2", "p3", "p4"]
    assert model.count(code="c2") == 1
    assert model.count() == 6
    # the orphan claims are gone: the values can be taken again
    model({"pk": "p9", "code": "ghost-code"}).set()
    model({"pk": "p8", "code": "lost"}).set()
    assert model.check_indexes() == []


@pytest.mark.parametrize("layout", [SimpleRedisModel, HashRedisModel], ids=["simple", "hash"])
def test_objects_of_the_old_library_are_adopted(layout: type, backend: Any, expire: int | None) -> None:
    """0.3.x had only these two layouts; its objects have no members entry and no index."""
    model = model_of(layout, backend, expire)
    for i in range(4):
        write_payload(model, backend, f"o{i}", {"flavour": "ab"[i % 2], "kg": i, "code": f"c{i}"})
    found = problems(model)
    assert ("missing member", "Up#members", "o0") in found
    assert ("missing entry", "Up#eq:flavour:a", "o0") in found
    assert ("missing entry", "Up#range:kg", "o3") in found
    assert model.count() == 4  # not listed yet, but counted by a scan (never a wrong 0)
    assert model.rebuild_indexes() == 4
    assert model.check_indexes() == []
    assert [o.pk for o in model.filter(flavour="b")] == ["o1", "o3"]
    assert model.count(kg__gt=0) == 3
    with pytest.raises(UniqueViolation):
        model({"pk": "new", "code": "c1"}).set()
    if expire:
        ttl = backend.pttl("Up#members")
        assert ttl > 0  # an adopted object gets a deadline, and its keys a TTL


def test_payload_changed_behind_the_index(layout: type, backend: Any) -> None:
    """A payload rewritten by hand: its old entries are stale, its new ones missing."""
    model = model_of(layout, backend)
    fill(model)
    write_payload(model, backend, "p0", {"flavour": "b", "kg": 50, "code": "c50"})
    assert problems(model) == {
        ("stale entry", "Up#eq:flavour:a", "p0"),
        ("missing entry", "Up#eq:flavour:b", "p0"),
        ("wrong score", "Up#range:kg", "p0"),
        ("orphan unique claim", "Up#unique:code", "c0"),
        ("missing entry", "Up#unique:code", "p0"),
    }
    assert model.rebuild_indexes() == 1
    assert model.check_indexes() == []
    assert model.match(code="c50").pk == "p0"
    assert model.filter(code="c0") == []


def test_duplicate_unique_value_is_reported_and_the_rest_repaired(layout: type, backend: Any) -> None:
    model = model_of(layout, backend)
    fill(model, 3)
    write_payload(model, backend, "dup", {"flavour": "a", "kg": 7, "code": "c1"})  # c1 is p1's
    found = problems(model)
    assert ("duplicate unique value", "Up#unique:code", "c1") in found
    model.rebuild_indexes()
    # two objects with one unique value cannot be repaired by the index; everything else is
    assert problems(model) == {
        ("duplicate unique value", "Up#unique:code", "c1"),
        ("index not complete", "Up#meta", "UniqueIndex('code')"),  # not trusted while wrong
    }
    assert [o.pk for o in model.filter(flavour="a")] == ["dup", "p0", "p2"]


# -- rebuild while the application writes (real server) -----------------------------------------
def writer(
    model: type,
    stop: threading.Event,
    seed: int,
    errors: list[BaseException],
    counter: list[int],
    flavours: str | list[str] = "abc",
) -> None:
    rng = random.Random(seed)
    try:
        while not stop.is_set():
            pk = f"w{rng.randrange(30)}"
            if rng.random() < 0.2:
                model.delete_many([pk])
            else:
                code = rng.choice([None, f"k{rng.randrange(40)}"])
                with contextlib.suppress(UniqueViolation):
                    model(
                        {"pk": pk, "flavour": rng.choice(flavours), "kg": rng.randrange(20), "code": code}
                    ).set()
            counter[0] += 1
    except BaseException as exc:  # reported by the main thread
        errors.append(exc)


@pytest.mark.real
@pytest.mark.sized
@pytest.mark.parametrize("expire", [None, 600], ids=["lasting", "expiring"])
def test_rebuild_is_safe_while_others_write(
    layout: type, pytestconfig: pytest.Config, expire: int | None
) -> None:
    main_client = real_client(pytestconfig)
    model = model_of(layout, main_client, expire)
    fill(model, 20)
    stop = threading.Event()
    errors: list[BaseException] = []
    counters: list[list[int]] = []
    threads = []
    clients = []
    for n in range(3):
        client = redis.Redis.from_url(pytestconfig.getoption("--redis-url"), socket_timeout=10)
        clients.append(client)
        counters.append([0])
        # a class of its own per thread: same prefix and indexes, its own client
        own = model_of(layout, client, expire, name=f"UpWriter{n}")
        threads.append(threading.Thread(target=writer, args=(own, stop, n, errors, counters[-1])))
    try:
        for t in threads:
            t.start()
        rounds = 0
        deadline = time.monotonic() + WRITERS_SECONDS
        while time.monotonic() < deadline:
            # break the index by hand, then repair it under the writers' feet
            pks = [
                txt(m)
                for m in (main_client.zrange if expire else main_client.smembers)(
                    "Up#members", *((0, -1) if expire else ())
                )
            ]
            for pk in random.Random(rounds).sample(pks, min(5, len(pks))):
                main_client.srem("Up#eq:flavour:a", pk)
                main_client.sadd("Up#eq:flavour:c", pk)
                main_client.zadd("Up#range:kg", {pk: -1})
            main_client.hset("Up#unique:code", f"orphan{rounds}", "nobody")
            model.rebuild_indexes()
            rounds += 1
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not errors, errors
    assert rounds >= 2, rounds
    assert all(c[0] > 20 for c in counters), counters
    # the writers are done: one last rebuild may still be needed for corruption made after
    # the last round started, but none of the writers' own writes may leave a problem
    model.rebuild_indexes()
    assert model.check_indexes() == []
    objs = model.all()
    assert model.count() == len(objs)
    for flavour in "abc":
        assert model.count(flavour=flavour) == len([o for o in objs if o.flavour == flavour])
    codes = [o.code for o in objs if o.code is not None]
    assert len(codes) == len(set(codes))
    for c in clients:
        c.close()
    main_client.flushdb()
    main_client.close()


@pytest.mark.sized
@pytest.mark.real
def test_rebuild_beside_writers_leaves_nothing_to_repair(layout: type, pytestconfig: pytest.Config) -> None:
    """Writers alone never leave a problem, and rebuild running beside them breaks nothing.

    Many distinct flavours make equality keys appear and vanish all the time: a rebuild
    must never take a key created during its own scan for an unknown one and delete it.
    """
    main_client = real_client(pytestconfig)
    model = model_of(layout, main_client)
    stop = threading.Event()
    errors: list[BaseException] = []
    counters = [[0], [0]]
    flavours = [f"f{n}" for n in range(300)]
    clients = [
        redis.Redis.from_url(pytestconfig.getoption("--redis-url"), socket_timeout=10) for _ in range(2)
    ]
    threads = [
        threading.Thread(
            target=writer,
            args=(model_of(layout, c, None, name=f"UpW{n}"), stop, 10 + n, errors, counters[n], flavours),
        )
        for n, c in enumerate(clients)
    ]
    try:
        for t in threads:
            t.start()
        rebuilds = 0
        deadline = time.monotonic() + WRITERS_SECONDS
        while time.monotonic() < deadline:
            model.rebuild_indexes()
            rebuilds += 1
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not errors, errors
    assert rebuilds >= 3, rebuilds
    assert all(c[0] > 20 for c in counters), counters
    # no final rebuild: whatever the last rebuilds did beside the writers must be right
    assert model.check_indexes() == []
    objs = model.all()
    for flavour in {o.flavour for o in objs}:
        assert [o.pk for o in model.filter(flavour=flavour)] == [o.pk for o in objs if o.flavour == flavour]
    for c in clients:
        c.close()
    main_client.flushdb()
    main_client.close()
