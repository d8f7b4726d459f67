"""The server's eviction policy, read once per server and process.

Under a ``maxmemory`` limit with a policy that evicts (``allkeys-*``, or ``volatile-*``
once keys have TTLs), Redis removes object keys and index keys independently: an index
may then name an object that is gone, or miss one that is stored. The drivers read
``INFO memory`` before their first request (one round trip per server and process, see
``SyncDriver.run``) and give an :class:`~redis_schematics.exceptions.EvictionRisk`
warning when the policy can evict our keys; ``check_indexes()`` reports it too. A
server that refuses ``INFO`` (some managed services) or does not know it (fakeredis) is
taken as not evicting, silently.
"""

from __future__ import annotations

import asyncio
import sys
import warnings
from pathlib import Path
from typing import Any

from redis_schematics.exceptions import EvictionRisk

#: server -> (policy, maxmemory), or None when the server would not say
_KNOWN: dict[Any, tuple[str, int] | None] = {}


def _kwargs(client: Any) -> dict[str, Any] | None:
    """The connection kwargs of ``client``'s pool, None without a pool (a cluster client)."""
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", None)
    return kwargs if isinstance(kwargs, dict) else None


def server_of(client: Any) -> Any:
    """What identifies ``client``'s server for the cache (its address; the client
    itself for a cluster client or anything without a connection pool)."""
    kwargs = _kwargs(client)
    if kwargs is None:
        return id(client)
    fake = kwargs.get("server")  # fakeredis: one in-process server per object
    return (
        kwargs.get("host"),
        kwargs.get("port"),
        kwargs.get("path"),
        id(fake) if fake is not None else None,
    )


def to_read(client: Any) -> Any:
    """The server whose policy a driver of ``client`` must read now (with one
    ``INFO memory``, then :func:`note`), or None: already known, or a fakeredis client
    (an in-process server: no INFO, never evicts), recorded as not evicting. No I/O."""
    server = server_of(client)
    if server in _KNOWN:
        return None
    kwargs = _kwargs(client)
    if kwargs is not None and kwargs.get("server") is not None:
        _KNOWN[server] = None
        return None
    return server


def known(server: Any) -> bool:
    """Has the policy of ``server`` been read (or found unreadable) already?"""
    return server in _KNOWN


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _parse(reply: Any) -> tuple[str, int] | None:
    """(policy, maxmemory) from an ``INFO memory`` reply (a dict; for a cluster client,
    a dict per node: the first node that evicts, else the first node)."""
    if not isinstance(reply, dict):
        return None
    if "maxmemory_policy" in reply:
        return _text(reply["maxmemory_policy"]), int(reply.get("maxmemory", 0) or 0)
    found = [p for p in (_parse(v) for v in reply.values()) if p is not None]
    risky = [p for p in found if evicts(*p)]
    chosen = risky or found
    return chosen[0] if chosen else None


def evicts(policy: str, maxmemory: int) -> bool:
    """Can Redis evict keys under ``policy`` (a limit set, a policy other than
    noeviction)? Without ``maxmemory`` Redis never evicts."""
    return maxmemory > 0 and policy != "noeviction"


def risk(server: Any) -> str | None:
    """What to say about ``server``'s policy, or None when it cannot evict our keys."""
    found = _KNOWN.get(server)
    if found is None or not evicts(*found):
        return None
    policy, maxmemory = found
    which = (
        "any key"
        if policy.startswith("allkeys")
        else "keys with a TTL (every key of a model with __expire__, and the idempotency markers)"
    )
    return (
        f"the Redis server evicts {which} when it reaches maxmemory ({maxmemory} bytes): "
        f"maxmemory-policy is {policy!r}. Evicted object and index keys make counts and "
        "filters miss objects or count ones that are gone, and unique values stay claimed "
        "(docs/guarantees.md, 'Eviction'). Use maxmemory-policy noeviction on a server that "
        "holds redis-schematics data (writes then fail with OutOfMemory at the limit, "
        "nothing half-written)."
    )


def note(server: Any, reply: Any) -> None:
    """Record ``server``'s ``INFO memory`` reply (None: it would not say) and warn
    once if its policy can evict our keys."""
    _KNOWN[server] = _parse(reply)
    message = risk(server)
    if message is not None:
        warnings.warn(EvictionRisk(message), stacklevel=_user_level())


#: frames in these folders are not the user's: ours, and asyncio's event loop (a
#: coroutine of ours run by ``asyncio.run`` has the loop as its caller)
_NOT_USER = (str(Path(__file__).resolve().parent.parent), str(Path(asyncio.__file__).resolve().parent))


def _user_level() -> int:
    """The ``stacklevel`` that points a warning given by our caller at the first frame
    outside this package and asyncio (the user's line), however deep the call path was."""
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_NOT_USER):
        frame = frame.f_back
        level += 1
    return level


def forget() -> None:
    """Forget every policy read (tests; a server reconfigured while the process runs)."""
    _KNOWN.clear()
