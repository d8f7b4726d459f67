"""The sync driver: runs flows with a ``redis.Redis`` (or ``fakeredis.FakeRedis``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, TypeVar

from redis.exceptions import NoScriptError

from redis_schematics.io import policy
from redis_schematics.io.base import (
    NO_OPTIONS,
    checked,
    command_args,
    missing_script,
    not_a_request,
    queue_eval,
    refusal,
    scripts_of,
)
from redis_schematics.io.requests import (
    Command,
    Emit,
    Evicting,
    Flow,
    Pipeline,
    Queue,
    Request,
    RunScript,
    Sleep,
)
from redis_schematics.io.scripts import script

T = TypeVar("T")


class SyncDriver:
    """Runs flows on one sync client: each request one ``execute_command`` (or one
    pipeline) on it. The only place, with :class:`~redis_schematics.io.aio.AsyncDriver`,
    that holds a client."""

    is_async = False
    #: a Redis Cluster client (see ``io/cluster.py``)
    cluster = False

    def options(self, part: Command | RunScript) -> dict[str, Any]:
        """Extra ``execute_command`` options of a pipelined request (none here)."""
        return NO_OPTIONS

    def __init__(self, client: Any) -> None:
        self.client = client
        #: the eviction policy is read before the first request (io/policy.py)
        self.policy_pending = True

    @property
    def server(self) -> Any:
        """What identifies the client's server (io/policy.py: ``server_of``)."""
        return policy.server_of(self.client)

    def _read_policy(self) -> None:
        """Read the server's eviction policy (one ``INFO memory``, before the first
        request of the first driver of a server), warn if it evicts."""
        self.policy_pending = False
        server = policy.to_read(self.client)
        if server is None:
            return
        try:
            reply = self.client.execute_command("INFO", "memory")
        except Exception:  # refused (managed services) or unknown: taken as not evicting
            reply = None
        policy.note(server, reply)

    def run(self, flow: Flow[T]) -> T:
        """Run ``flow`` to its result; an I/O error is thrown into it where it asked."""
        handle = self.handle
        reply: Any = None
        error: Exception | None = None
        while True:
            try:
                request = flow.send(reply) if error is None else flow.throw(error)
            except StopIteration as stop:
                result: T = stop.value
                return result
            if self.policy_pending:
                self._read_policy()
            try:
                reply, error = handle(request), None
            except Exception as exc:
                reply, error = None, refusal(exc, request)

    def iterate(self, flow: Flow[Any]) -> Iterator[Any]:
        """The items a streaming flow emits, as they come."""
        handle = self.handle
        reply: Any = None
        error: Exception | None = None
        try:
            while True:
                try:
                    request = flow.send(reply) if error is None else flow.throw(error)
                except StopIteration:
                    return
                if type(request) is Emit:
                    yield from request.items
                    reply = None
                    continue
                if self.policy_pending:
                    self._read_policy()
                try:
                    reply, error = handle(request), None
                except Exception as exc:
                    reply, error = None, refusal(exc, request)
        finally:
            flow.close()

    def handle(self, request: Request) -> Any:
        """Send one request; its reply."""
        if type(request) is Command:  # the common case first
            return self.client.execute_command(*request.args)
        if isinstance(request, RunScript):
            return self._script(request)
        if isinstance(request, Pipeline):
            return self._pipeline(request)
        if isinstance(request, Sleep):
            if request.seconds > 0:
                time.sleep(request.seconds)
            return None
        if isinstance(request, Evicting):
            return policy.risk(self.server) is not None
        if isinstance(request, Queue):
            return queue_eval(request)
        raise not_a_request(request)

    def _script(self, request: RunScript) -> Any:
        args = command_args(request)
        try:
            return self.client.execute_command(*args)
        except NoScriptError:  # not loaded on this server (yet, or any more): load, call again
            self.client.execute_command("SCRIPT LOAD", script(request.name).source)
            return self.client.execute_command(*args)

    def _pipeline(self, request: Pipeline) -> list[Any]:
        for _attempt in range(2):
            pipe = self.client.pipeline(transaction=False)
            for part in request.requests:
                pipe.execute_command(*command_args(part), **self.options(part))
            replies: list[Any] = pipe.execute(raise_on_error=False)
            if not missing_script(replies):
                break
            for found in scripts_of(request):  # reads only: sending them again is safe
                self.client.execute_command("SCRIPT LOAD", found.source)
        return replies if request.errors else checked(replies)
