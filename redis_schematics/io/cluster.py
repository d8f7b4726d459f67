"""The Redis Cluster drivers: the sync and async drivers, plus what a cluster needs.

redis-py's ``RedisCluster`` (and ``redis.asyncio.RedisCluster``) already routes every
keyed command and every EVALSHA to the node of its keys' slot, follows MOVED and ASK
redirections, retries TRYAGAIN and CLUSTERDOWN (``cluster_error_retry_attempts``),
refreshes its slot map after a failover, sends ``SCRIPT LOAD`` to every primary (so the
drivers' reload after NOSCRIPT covers a promoted replica that never saw the script) and
splits a pipeline into one batch per node. What it cannot know, and these drivers add:

* ``SCAN`` has no key: redis-py sends it to every primary with one cursor. A scan of a
  model's keys is sent to the one node that holds the model's hash tag (read from the
  MATCH pattern, which always starts with the tag: ``KeySpace`` builds it), and its
  reply comes back in the single-node shape;
* a script call with no key cannot be routed: refused (every script of ours declares
  every key it touches, which is what makes it cluster-safe);
* redis-py refuses ``evalsha`` (so ``register_script``) on a cluster pipeline: a write
  queued on the user's ``RedisCluster.pipeline()`` is sent as ``EVAL`` with the script's
  source (no NOSCRIPT possible), through ``execute_command``, which routes it by its keys;
* in a cluster pipeline redis-py asks the server for the keys of every EVALSHA
  (``COMMAND GETKEYS``, one round trip each, before sending the pipeline): a pipelined
  script call is given the node of its first key (``target_nodes``), which redis-py
  drops for its normal routing if a MOVED reply says the slot moved;
* ``cluster = True`` tells a transaction to refuse writes spanning slots (``CrossSlot``)
  before it sends anything.
"""

from __future__ import annotations

from typing import Any

from redis_schematics.io.aio import AsyncDriver
from redis_schematics.io.requests import Command, Pipeline, Queue, Request, RunScript
from redis_schematics.io.scripts import script
from redis_schematics.io.sync import SyncDriver


def _unescape(pattern: str) -> str:
    out = []
    escaped = False
    for c in pattern:
        if escaped or c != "\\":
            out.append(c)
            escaped = False
        else:
            escaped = True
    return "".join(out)


def scan_key(args: tuple[Any, ...]) -> str:
    """A key in the slot a ``SCAN ... MATCH {tag}...`` pattern is about: its hash tag."""
    pattern = None
    for n, arg in enumerate(args):
        if isinstance(arg, str) and arg.upper() == "MATCH" and n + 1 < len(args):
            pattern = str(args[n + 1])
    if pattern is None or not pattern.startswith("{") or "}" not in pattern:
        msg = f"a SCAN on a Redis Cluster needs a MATCH pattern starting with a hash tag, not {args!r}"
        raise ValueError(msg)
    return _unescape(pattern[: pattern.index("}") + 1])


def single_node_reply(reply: Any) -> Any:
    """A SCAN reply sent to one node: ``({node: cursor}, keys)`` becomes ``(cursor, keys)``."""
    cursor, keys = reply
    if isinstance(cursor, dict):
        (cursor,) = cursor.values()
    return cursor, keys


def refuse_keyless(request: Request) -> None:
    """A script call with no keys cannot be routed to a slot (nor be cluster-safe)."""
    parts = request.requests if isinstance(request, Pipeline) else (request,)
    for part in parts:
        if isinstance(part, RunScript) and not part.keys:
            msg = f"script {part.name!r} called with no keys: a Redis Cluster cannot route it"
            raise ValueError(msg)


def queue_eval(request: Queue) -> Any:
    """Queue a script call on a cluster pipeline as EVAL (see the module docstring)."""
    call = request.script
    source = script(call.name).source
    return request.pipeline.execute_command("EVAL", source, len(call.keys), *call.keys, *call.args)


def is_scan(request: Request) -> bool:
    """Is ``request`` a keyless SCAN (routed by its pattern)?"""
    return type(request) is Command and str(request.args[0]).upper() == "SCAN"


def script_node(client: Any, part: Command | RunScript) -> dict[str, Any]:
    """``target_nodes`` for a pipelined script call: the node of its first key."""
    if isinstance(part, RunScript) and part.keys:
        return {"target_nodes": client.get_node_from_key(part.keys[0])}
    return {}


class ClusterSyncDriver(SyncDriver):
    """:class:`SyncDriver` for a ``redis.cluster.RedisCluster``."""

    cluster = True

    def options(self, part: Command | RunScript) -> dict[str, Any]:
        """A pipelined script call goes to the node of its keys (module docstring)."""
        return script_node(self.client, part)

    def handle(self, request: Request) -> Any:
        """Send one request (a SCAN to its model's node); its reply."""
        if is_scan(request):
            assert isinstance(request, Command)
            node = self.client.get_node_from_key(scan_key(request.args))
            return single_node_reply(self.client.execute_command(*request.args, target_nodes=node))
        if isinstance(request, Queue):
            return queue_eval(request)
        refuse_keyless(request)
        return super().handle(request)


class ClusterAsyncDriver(AsyncDriver):
    """:class:`AsyncDriver` for a ``redis.asyncio.RedisCluster``."""

    cluster = True

    def options(self, part: Command | RunScript) -> dict[str, Any]:
        """A pipelined script call goes to the node of its keys (module docstring)."""
        return script_node(self.client, part)

    async def handle(self, request: Request) -> Any:
        """Send one request (a SCAN to its model's node); its reply."""
        if is_scan(request):
            assert isinstance(request, Command)
            node = self.client.get_node_from_key(scan_key(request.args))
            reply = await self.client.execute_command(*request.args, target_nodes=node)
            return single_node_reply(reply)
        if isinstance(request, Queue):
            return queue_eval(request)  # queued, not sent: nothing to await
        refuse_keyless(request)
        return await super().handle(request)
