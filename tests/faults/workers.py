"""What each process of tests/faults/test_multiprocess.py runs.

Kept in a module of its own, importing little, so that spawned processes start fast.
Every function takes the Redis URL and the layout's ready-made model class (pickled by
reference) and returns plain counts. Workers line up on a Redis-backed barrier before
they start, so that all of them really run at the same time.
"""

from __future__ import annotations

import random
from typing import Any

import redis
from schematics import types

from redis_schematics import RangeIndex, UniqueIndex, UniqueViolation
from redis_schematics.exceptions import ConcurrentModification, NotFound, WriteConflict

#: processes per test
PROCESSES = 4
FLAVOURS = ("vanilla", "mint", "lemon", "chocolate")


def shared_model(base: type, client: Any) -> Any:
    """The model every process writes: equality, range and unique indexes."""
    return type(base)(
        "Shared",
        (base,),
        {
            "__redis_client__": client,
            "__indexes__": ("flavour", RangeIndex("n"), UniqueIndex("code")),
            "id": types.StringType(),
            "flavour": types.StringType(),
            "n": types.IntType(),
            "code": types.StringType(),
            "writer": types.IntType(),
        },
    )


def barrier(client: redis.Redis, name: str, parties: int = PROCESSES, timeout: int = 30) -> None:
    """Block until ``parties`` processes reached barrier ``name`` (INCR + BLPOP, no spinning)."""
    arrived = client.incr(f"barrier:{name}:count")
    if arrived == parties:
        client.rpush(f"barrier:{name}:go", *(["go"] * parties))
    if client.blpop([f"barrier:{name}:go"], timeout=timeout) is None:
        msg = f"barrier {name!r}: only {client.get(f'barrier:{name}:count')} of {parties} arrived"
        raise RuntimeError(msg)


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=30)


def mixed_writer(url: str, base: type, worker: int, ops: int, pks: int, codes: int) -> dict[str, int]:
    """Random set / set_many / delete / update on shared pks and a small pool of codes."""
    client = _client(url)
    model = shared_model(base, client)
    rng = random.Random(worker * 7919)
    counts = {"ops": 0, "writes": 0, "unique_violations": 0, "not_found": 0, "conflicts": 0}

    def state(pk: str) -> dict[str, Any]:
        code = None if rng.random() < 0.2 else f"code{rng.randrange(codes)}"
        return {"id": pk, "flavour": rng.choice(FLAVOURS), "n": rng.randint(0, 50), "code": code,
                "writer": worker}  # fmt: skip

    barrier(client, "mixed")
    for _ in range(ops):
        counts["ops"] += 1
        pk = f"k{rng.randrange(pks)}"
        roll = rng.random()
        try:
            if roll < 0.4:
                counts["writes"] += 1
                model(state(pk)).set()
            elif roll < 0.55:
                batch = {f"k{rng.randrange(pks)}" for _ in range(rng.randint(2, 6))}
                counts["writes"] += len(batch)
                model.set_many([model(state(p)) for p in sorted(batch)])
            elif roll < 0.7:
                counts["writes"] += 1
                model.delete_many([pk])
            else:
                counts["writes"] += 1
                new = state(pk)
                model.update(pk, lambda obj, new=new: obj.import_data(new), retries=20)
        except UniqueViolation:
            counts["unique_violations"] += 1
        except NotFound:
            counts["not_found"] += 1
        except WriteConflict:  # ConcurrentModification included: nothing was written
            counts["conflicts"] += 1
    client.close()
    return counts


def unique_racer(url: str, base: type, worker: int, rounds: int) -> dict[str, Any]:
    """Each round, every process claims the same new code; returns the rounds it won.

    Even rounds claim it with a new object (``set``); odd rounds by changing the
    process's own object (``update``), which also frees the code it held before.
    """
    client = _client(url)
    model = shared_model(base, client)
    own = f"own{worker}"
    model({"id": own, "flavour": "own", "n": worker, "code": None, "writer": worker}).set()
    won: list[int] = []
    lost: list[int] = []
    for rnd in range(rounds):
        barrier(client, f"race{rnd}")
        code = f"race{rnd}"
        try:
            if rnd % 2 == 0:
                model({"id": f"w{worker}r{rnd}", "flavour": "race", "n": rnd, "code": code,
                       "writer": worker}).set()  # fmt: skip
            else:
                model.update(own, lambda obj, code=code: setattr(obj, "code", code), retries=50)
        except UniqueViolation:
            lost.append(rnd)
        else:
            won.append(rnd)
    client.close()
    return {"won": won, "lost": lost}


def incrementer(url: str, base: type, worker: int, increments: int) -> dict[str, int]:
    """``update`` +1 on one shared counter, ``increments`` times; moves flavour and code too."""
    client = _client(url)
    model = shared_model(base, client)

    calls = 0

    def bump(obj: Any) -> None:
        nonlocal calls
        calls += 1
        obj.n += 1
        obj.flavour = FLAVOURS[obj.n % len(FLAVOURS)]
        obj.code = f"n{obj.n}"  # a unique value that moves on every increment
        obj.writer = worker

    barrier(client, "increments")
    gave_up = 0
    done = 0
    while done < increments:
        try:
            model.update("counter", bump, retries=30)
        except ConcurrentModification:  # nothing written: try the increment again
            gave_up += 1
            continue
        done += 1
    client.close()
    return {"increments": done, "fn_calls": calls, "concurrent_modification": gave_up}
