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
    """Reads sent together in one round trip (no MULTI); the reply is their replies."""

    requests: tuple[Command | RunScript, ...]


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
class Emit:
    """Give ``items`` to whoever iterates a streaming flow; the reply is None."""

    items: Sequence[Any]


Request = Command | RunScript | Pipeline | Queue | Sleep | Emit
#: A flow: yields requests, receives their replies, returns a T.
Flow = Generator[Request, Any, T]


def done(value: T) -> Flow[T]:
    """A flow that asks nothing and returns ``value``."""
    return value
    yield  # pragma: no cover - makes this a generator


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
