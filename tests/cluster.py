"""Redis Cluster for the tests: a slot checker on fakeredis, and the real cluster.

:class:`SlotChecked` (and :class:`AsyncSlotChecked`) is a fakeredis client that behaves
as a Redis Cluster client would toward the library: it computes the hash slot (CRC16 of
the hash tag) of every key of every command, pipeline part and script call, and raises
:class:`SlotError` on

* a command or a script call whose keys fall in more than one slot (CROSSSLOT),
* a script call that declares no key (a cluster cannot route it),
* a SCAN whose MATCH pattern does not start with a hash tag (it would miss nodes),
* a command it does not know the keys of (so a new command must be added here, with
  its key positions, before the library may send it).

It registers itself with ``treat_as_cluster``, so models on it get the cluster driver
and the cluster rules (an untagged model is refused, a transaction spanning slots
raises ``CrossSlot``). Any change that breaks cluster safety fails on any machine.

The real cluster is at ``REDIS_CLUSTER_URL`` (``.ci/run`` starts one on 7000-7002 with
``.ci/cluster``); its tests skip when none answers, unless ``REDIS_CLUSTER_REQUIRED=1``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import fakeredis
import pytest
import redis.asyncio.cluster
import redis.cluster

from redis_schematics.io import treat_as_cluster
from redis_schematics.keys import slot_of

#: commands whose every argument after the name is a key
ALL_KEYS = {"MGET", "DEL", "UNLINK", "EXISTS", "TOUCH"}
#: commands whose first argument is their only key
FIRST_KEY = {
    "GET", "SET", "HGET", "HMGET", "HGETALL", "HEXISTS", "HSET", "HDEL", "HLEN", "HKEYS",
    "SCARD", "SMEMBERS", "SISMEMBER", "SMISMEMBER", "SADD", "SREM", "SSCAN", "SRANDMEMBER",
    "ZCARD", "ZCOUNT", "ZRANGE", "ZMSCORE", "ZSCORE", "ZADD", "ZREM", "ZSCAN", "ZRANDMEMBER",
    "HSCAN", "TYPE", "TTL", "PTTL", "EXPIRE", "PEXPIRE", "MEMORY USAGE",
}  # fmt: skip
#: commands without keys that any node may answer
NO_KEYS = {
    "CLUSTER NODES",
    "TIME",
    "PING",
    "SCRIPT LOAD",
    "SCRIPT FLUSH",
    "SCRIPT EXISTS",
    "INFO",
    "FLUSHDB",
    "FLUSHALL",
}


class SlotError(AssertionError):
    """A call a Redis Cluster would refuse (or could not route)."""


def _name(args: tuple[Any, ...]) -> str:
    first = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
    name = first.upper()
    if name in ("SCRIPT", "MEMORY", "CLUSTER") and len(args) > 1:
        second = args[1].decode() if isinstance(args[1], bytes) else str(args[1])
        name = f"{name} {second.upper()}"
    return name


def keys_of(args: tuple[Any, ...]) -> list[Any]:
    """The keys of one command as a cluster client would route it (see the docstring)."""
    name = _name(args)
    if name in ("EVALSHA", "EVAL"):
        keys = list(args[3 : 3 + int(args[2])])
        if not keys:
            msg = f"script call with no declared key: {args[:3]!r}"
            raise SlotError(msg)
        return keys
    if name in ALL_KEYS:
        return list(args[1:])
    if name in FIRST_KEY:
        return [args[1]] if " " not in name else [args[2]]
    if name in NO_KEYS:
        return []
    if name == "SCAN":
        pattern = None
        texts = [a.decode() if isinstance(a, bytes) else str(a) for a in args]
        for n, arg in enumerate(texts):
            if arg.upper() == "MATCH":
                pattern = texts[n + 1]
        if pattern is None or not pattern.startswith("{") or "}" not in pattern:
            msg = f"SCAN without a hash-tagged MATCH pattern misses nodes: {args!r}"
            raise SlotError(msg)
        return [pattern[: pattern.index("}") + 1].replace("\\", "")]
    msg = f"the slot checker does not know the keys of {name}: add it to tests/cluster.py"
    raise SlotError(msg)


def check(args: tuple[Any, ...], seen: list[int] | None = None) -> None:
    """Raise :class:`SlotError` if ``args`` would be refused by a cluster."""
    slots = {slot_of(k) for k in keys_of(args)}
    if len(slots) > 1:
        msg = f"CROSSSLOT: {_name(args)} touches slots {sorted(slots)}: {args[:6]!r}..."
        raise SlotError(msg)
    if seen is not None:
        seen.extend(slots)


class _Checks:
    """What both checked clients share."""

    #: every slot a command touched, in order (tests read it)
    slots: list[int]

    def get_node_from_key(self, key: Any, replica: bool = False) -> str:
        return f"node-of-slot-{slot_of(key)}"

    def get_node(self, host: str, port: int) -> str:
        return f"node-{host}:{port}"

    def _checked_pipeline(self, pipe: Any) -> Any:
        queue = pipe.execute_command

        def execute_command(*args: Any, **options: Any) -> Any:
            options.pop("target_nodes", None)
            check(args, self.slots)
            return queue(*args, **options)

        pipe.execute_command = execute_command
        return pipe


class SlotChecked(_Checks, fakeredis.FakeRedis):
    """A fakeredis client that refuses what a Redis Cluster refuses (module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.slots = []

    def execute_command(self, *args: Any, **options: Any) -> Any:
        options.pop("target_nodes", None)
        check(args, self.slots)
        return super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        return self._checked_pipeline(super().pipeline(transaction, shard_hint))


class AsyncSlotChecked(_Checks, fakeredis.FakeAsyncRedis):
    """The asyncio twin of :class:`SlotChecked`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.slots = []

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        options.pop("target_nodes", None)
        check(args, self.slots)
        return await super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        return self._checked_pipeline(super().pipeline(transaction, shard_hint))


treat_as_cluster(SlotChecked)
treat_as_cluster(AsyncSlotChecked)

DEFAULT_CLUSTER_URL = "redis://127.0.0.1:7000"


#: why the real cluster is out of reach, once known (so each test skips at once)
_UNREACHABLE: list[str] = []


def real_cluster(decode: bool = False) -> redis.cluster.RedisCluster:
    """A flushed client of the real cluster; skips (or fails when required) if none answers."""
    url = os.environ.get("REDIS_CLUSTER_URL", DEFAULT_CLUSTER_URL)
    required = os.environ.get("REDIS_CLUSTER_REQUIRED") == "1"
    if _UNREACHABLE and not required:
        pytest.skip(_UNREACHABLE[0])
    try:
        client = redis.cluster.RedisCluster.from_url(url, decode_responses=decode, socket_timeout=10)
        client.ping()
    except (redis.exceptions.RedisError, redis.exceptions.RedisClusterException, OSError) as exc:
        if required:
            pytest.fail(f"REDIS_CLUSTER_REQUIRED=1 but no Redis Cluster answers at {url}: {exc}")
        _UNREACHABLE.append(f"no Redis Cluster at {url} (.ci/cluster starts one)")
        pytest.skip(_UNREACHABLE[0])
    client.flushall()
    return client


def async_cluster_twin(client: Any) -> Any:
    """The asyncio client of the cluster or fake server ``client`` talks to."""
    if isinstance(client, SlotChecked):
        kw = client.connection_pool.connection_kwargs
        return AsyncSlotChecked(server=kw["server"], decode_responses=kw.get("decode_responses", False))
    node = client.get_default_node()
    return redis.asyncio.cluster.RedisCluster(
        host=node.host, port=node.port, decode_responses=client.get_encoder().decode_responses
    )


def slot_checked() -> SlotChecked:
    """A slot-checking fakeredis client on a server of its own."""
    return SlotChecked(server=fakeredis.FakeServer())


def slots_touched(clients: Iterable[Any]) -> set[int]:
    """Every slot the slot-checked ``clients`` sent a command to."""
    return {slot for c in clients for slot in getattr(c, "slots", ())}


def inspector(client: Any) -> Any:
    """A client to look at everything ``client`` stored, unchecked: the fake server's
    plain fakeredis client, or the cluster client itself (its SCAN visits every node)."""
    if isinstance(client, SlotChecked):
        kw = client.connection_pool.connection_kwargs
        return fakeredis.FakeRedis(server=kw["server"])
    return client
