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
  reply comes back in the single-node shape. While the tag's slot is being migrated its
  keys are on two nodes: a scan that starts finds the migration (``CLUSTER NODES`` of
  the owner) and, after the owner, scans the importing node too, its cursors offset by
  ``SECOND`` (keys only move from the owner to the importer, and the owner is scanned
  first, so none is missed; one may be seen twice, as SCAN allows);
* a script call with no key cannot be routed: refused (every script of ours declares
  every key it touches, which is what makes it cluster-safe);
* redis-py refuses ``evalsha`` (so ``register_script``) on a cluster pipeline: a write
  queued on the user's ``RedisCluster.pipeline()`` is sent as ``EVAL`` with the script's
  source, as on every pipeline (``io/base.py``: ``queue_eval``), through
  ``execute_command``, which routes it by its keys;
* in a cluster pipeline redis-py asks the server for the keys of every EVALSHA
  (``COMMAND GETKEYS``, one round trip each, before sending the pipeline): a pipelined
  script call is given the node of its first key (``target_nodes``), which redis-py
  drops for its normal routing if a MOVED reply says the slot moved;
* ``cluster = True`` tells a transaction to refuse writes spanning slots (``CrossSlot``)
  before it sends anything.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from redis.exceptions import RedisError

from redis_schematics.io.aio import AsyncDriver
from redis_schematics.io.requests import Command, Pipeline, Request, RunScript
from redis_schematics.io.sync import SyncDriver
from redis_schematics.keys import slot_of

#: the cursors of a migrating slot's second node (the importer) start here (above any
#: cursor Redis gives, which fits in 64 bits)
SECOND = 1 << 64

#: one step of a routed scan: (node, command args) to send; the reply comes back
Steps = Generator[tuple[Any, tuple[Any, ...]], Any, tuple[Any, list[Any]]]


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


def _importer(client: Any, nodes: Any, slot: int) -> Any:
    """The node ``slot`` migrates to, from the owner's parsed ``CLUSTER NODES``; None."""
    if not isinstance(nodes, dict):
        return None
    by_id = {info.get("node_id"): address for address, info in nodes.items()}
    for info in nodes.values():
        if "myself" not in str(info.get("flags", "")):
            continue
        for move in info.get("migrations", ()):
            if move.get("state") == "migrating" and int(move.get("slot", -1)) == slot:
                address = by_id.get(move.get("node_id"))
                if address is not None:
                    host, port = str(address).rsplit(":", 1)
                    return client.get_node(host=host, port=int(port))
    return None


def routed_scan(client: Any, args: tuple[Any, ...], importers: dict[str, Any]) -> Steps:
    """The node-by-node steps of one SCAN page of a model's keys (module docstring);
    ``importers`` remembers, per tag, the importing node found when the scan started."""
    key = scan_key(args)
    cursor = int(args[1])
    rest = args[2:]
    if cursor >= SECOND:  # the importer's part
        node = importers.get(key) or client.get_node_from_key(key)
        found, keys = single_node_reply((yield node, (args[0], cursor - SECOND, *rest)))
        return (SECOND + int(found) if int(found) else 0), keys
    node = client.get_node_from_key(key)
    if cursor == 0:
        try:
            nodes = yield node, ("CLUSTER NODES",)
        except RedisError:  # not allowed (a managed service): scan the owner only
            nodes = None
        importers[key] = _importer(client, nodes, slot_of(key))
    found, keys = single_node_reply((yield node, args))
    if int(found) == 0 and importers.get(key) is not None:
        return SECOND, keys
    return found, keys


def refuse_keyless(request: Request) -> None:
    """A script call with no keys cannot be routed to a slot (nor be cluster-safe)."""
    parts = request.requests if isinstance(request, Pipeline) else (request,)
    for part in parts:
        if isinstance(part, RunScript) and not part.keys:
            msg = f"script {part.name!r} called with no keys: a Redis Cluster cannot route it"
            raise ValueError(msg)


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

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self.importers: dict[str, Any] = {}

    def handle(self, request: Request) -> Any:
        """Send one request (a SCAN to its model's node); its reply."""
        if is_scan(request):
            assert isinstance(request, Command)
            steps = routed_scan(self.client, request.args, self.importers)
            reply: Any = None
            error: Exception | None = None
            while True:
                try:
                    node, args = steps.send(reply) if error is None else steps.throw(error)
                except StopIteration as stop:
                    return stop.value
                try:
                    reply, error = self.client.execute_command(*args, target_nodes=node), None
                except RedisError as exc:
                    reply, error = None, exc
        refuse_keyless(request)
        return super().handle(request)


class ClusterAsyncDriver(AsyncDriver):
    """:class:`AsyncDriver` for a ``redis.asyncio.RedisCluster``."""

    cluster = True

    def options(self, part: Command | RunScript) -> dict[str, Any]:
        """A pipelined script call goes to the node of its keys (module docstring)."""
        return script_node(self.client, part)

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self.importers: dict[str, Any] = {}
        self.ready = False

    async def handle(self, request: Request) -> Any:
        """Send one request (a SCAN to its model's node); its reply."""
        if not self.ready:  # the slot map, before any node is looked up here
            initialize = getattr(self.client, "initialize", None)
            if initialize is not None:
                await initialize()
            self.ready = True
        if is_scan(request):
            assert isinstance(request, Command)
            steps = routed_scan(self.client, request.args, self.importers)
            reply: Any = None
            error: Exception | None = None
            while True:
                try:
                    node, args = steps.send(reply) if error is None else steps.throw(error)
                except StopIteration as stop:
                    return stop.value
                try:
                    reply, error = await self.client.execute_command(*args, target_nodes=node), None
                except RedisError as exc:
                    reply, error = None, exc
        refuse_keyless(request)
        return await super().handle(request)
