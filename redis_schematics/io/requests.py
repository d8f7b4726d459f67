"""What the engine asks of Redis: plain data, run by a driver (``io/sync.py``, ``io/aio.py``).

Everything above the drivers is written once as *flows*: generators that yield requests
and receive the replies (``reply = yield Command(("GET", key))``), and return their
result. A sync driver runs a flow with a ``redis.Redis``, an async driver awaits each
request on a ``redis.asyncio.Redis``; planning, hydration, guards, retries and merging
never know which. A driver throws an I/O error into the flow at the ``yield`` that asked
for it, so a flow may catch it (``except UnicodeDecodeError``).

The requests:

* :class:`Command`: one Redis command, sent with ``execute_command`` (its reply is
  parsed by redis-py as for the named method: ``TIME`` gives a tuple of ints, ``ZMSCORE``
  floats or None, ``SCAN`` a (cursor, keys) pair, ...);
* :class:`RunScript`: one call of a named script of ``scripts/`` (EVALSHA; a NOSCRIPT
  reply loads it and calls again);
* :class:`Pipeline`: several of those sent in one round trip, without MULTI; replies in
  order. Only for reads: a driver may send it again (after loading a script).
* :class:`Queue`: queue a script call on a *user's* redis-py pipeline (no I/O now);
* :class:`Sleep`: wait (the write retries' backoff), ``asyncio.sleep`` in async code;
* :class:`Evicting`: may the driver's server evict our keys (``io/policy.py``)? No I/O;
* :class:`Emit`: hand items to the caller of a streaming flow (``for obj in query``).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Command:
    """One Redis command: ``args`` as given to ``execute_command``."""

    args: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class RunScript:
    """A call of ``scripts/<name>.lua`` with ``keys`` (KEYS) and ``args`` (ARGV)."""

    name: str
    keys: Sequence[Any]
    args: Sequence[Any]


@dataclass(frozen=True, slots=True)
class Pipeline:
    """Reads sent together in one round trip (no MULTI); the reply is their replies.

    With ``errors`` an error reply comes back in its place (an exception object) instead
    of being raised: :func:`gather` hands each to the flow that asked."""

    requests: tuple[Command | RunScript, ...]
    errors: bool = False


@dataclass(frozen=True, slots=True)
class Queue:
    """Queue ``script`` on the user's redis-py ``pipeline`` (sync or async); no I/O."""

    pipeline: Any
    script: RunScript


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait ``seconds`` (``time.sleep`` or ``asyncio.sleep``)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Evicting:
    """Ask whether the driver's server may evict our keys (its ``maxmemory-policy``,
    read before the driver's first request: ``io/policy.py``); the reply is a bool."""


@dataclass(frozen=True, slots=True)
class Emit:
    """Give ``items`` to whoever iterates a streaming flow; the reply is None."""

    items: Sequence[Any]


Request = Command | RunScript | Pipeline | Queue | Sleep | Evicting | Emit
#: A flow: yields requests, receives their replies, returns a T.
Flow = Generator[Request, Any, T]


def done(value: T) -> Flow[T]:
    """A flow that asks nothing and returns ``value``."""
    return value
    yield  # pragma: no cover - makes this a generator


#: the scripts that only read: their calls may share a pipeline (which may be re-sent)
READ_SCRIPTS = frozenset({"run_query", "read_fields"})


def _reads(request: Request) -> tuple[Command | RunScript, ...] | None:
    """The parts of a read request that :func:`gather` may pipeline, or None."""
    if type(request) is Command:
        return (request,)
    if isinstance(request, RunScript):
        return (request,) if request.name in READ_SCRIPTS else None
    if isinstance(request, Pipeline) and not request.errors:
        return request.requests
    return None


def gather(flows: Sequence[Flow[Any]]) -> Flow[list[Any]]:
    """Run ``flows`` side by side and return their results, in order.

    Each round, the next request of every flow still running is sent: all together in
    one :class:`Pipeline` when they are reads (commands, read-only scripts, pipelines),
    otherwise one after the other. So N flows of one round trip each (the shards of a
    sharded model) cost one round trip, whatever N; on a Redis Cluster the pipeline goes
    to every node concurrently. An error reply goes to the flow that asked for it."""
    results: list[Any] = [None] * len(flows)
    pending: dict[int, Request] = {}

    def advance(n: int, reply: Any, error: Exception | None) -> None:
        try:
            pending[n] = flows[n].send(reply) if error is None else flows[n].throw(error)
        except StopIteration as stop:
            pending.pop(n, None)
            results[n] = stop.value

    for n in range(len(flows)):
        advance(n, None, None)
    while pending:
        parts = {n: _reads(r) for n, r in pending.items()}
        batchable = [n for n, p in parts.items() if p is not None]
        if len(batchable) < 2:
            n = next(iter(pending))
            try:
                reply = yield pending[n]
            except Exception as exc:  # the driver's error goes to the flow that asked
                advance(n, None, exc)
            else:
                advance(n, reply, None)
            continue
        sent: list[Command | RunScript] = []
        spans = []
        for n in batchable:
            found = parts[n]
            assert found is not None
            spans.append((n, len(sent), len(found), isinstance(pending[n], Pipeline)))
            sent += found
        replies = yield Pipeline(tuple(sent), errors=True)
        for n, start, size, whole in spans:
            mine = list(replies[start : start + size])
            error = next((r for r in mine if isinstance(r, Exception)), None)
            if error is not None:
                advance(n, None, error)
            else:
                advance(n, mine if whole else mine[0], None)
    return results


def collect(flow: Flow[Any]) -> Flow[list[Any]]:
    """A flow running the streaming ``flow`` and returning everything it emitted."""
    found: list[Any] = []
    reply: Any = None
    error: Exception | None = None
    while True:
        try:
            request = flow.send(reply) if error is None else flow.throw(error)
        except StopIteration:
            return found
        error = None
        if isinstance(request, Emit):
            found += request.items
            reply = None
            continue
        try:
            reply = yield request
        except Exception as exc:  # the driver's error goes to the flow that asked
            reply, error = None, exc


@dataclass(frozen=True, slots=True)
class Scan:
    """A cursor command (SCAN, SSCAN, ZSCAN or HSCAN) and its options, paged by
    :meth:`page`. Items come as they are parsed: keys or members for SCAN/SSCAN,
    (member, score) or (field, value) pairs for ZSCAN/HSCAN."""

    command: str
    key: Any = None
    match: str | None = None
    count: int = 500
    type: str | None = None

    def page(self, cursor: int) -> Command:
        """The command reading the page at ``cursor`` (0 = the first)."""
        args: list[Any] = [self.command] if self.key is None else [self.command, self.key]
        args.append(cursor)
        if self.match is not None:
            args += ["MATCH", self.match]
        args += ["COUNT", self.count]
        if self.type is not None:
            args += ["TYPE", self.type]
        return Command(tuple(args))

    def items(self) -> Flow[list[Any]]:
        """Every item, each page one round trip (SCAN may repeat an item)."""
        found: list[Any] = []
        cursor = 0
        while True:
            cursor, page = yield self.page(cursor)
            found += page.items() if isinstance(page, dict) else page
            if int(cursor) == 0:
                return found
