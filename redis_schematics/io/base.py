"""What the sync and the async driver share: how a request becomes redis-py calls.

A driver is the only code that holds a Redis client. Both drivers below run the same
flows; they differ only where they wait (``await``). This module holds everything about
a request that involves no waiting, so that neither driver repeats it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError, OutOfMemoryError, ReadOnlyError

from redis_schematics.exceptions import OutOfMemory, ReadOnlyServer
from redis_schematics.io.requests import Command, Pipeline, Queue, RunScript
from redis_schematics.io.scripts import Script, script

#: no extra ``execute_command`` options (shared, never changed)
NO_OPTIONS: dict[str, Any] = {}


def command_args(request: Command | RunScript) -> tuple[Any, ...]:
    """The ``execute_command`` arguments of a command or a script call (EVALSHA)."""
    if type(request) is Command:
        return request.args
    assert isinstance(request, RunScript)
    found = script(request.name)
    return ("EVALSHA", found.sha, len(request.keys), *request.keys, *request.args)


def queue_eval(request: Queue) -> Any:
    """Queue a script call on the user's redis pipeline as ``EVAL`` with the script's
    source: the call then cannot meet NOSCRIPT, which ``register_script`` (EVALSHA after
    redis-py's own SCRIPT EXISTS/LOAD) can after a ``SCRIPT FLUSH`` or a failover between
    that load and the pipeline's run; and redis-py refuses ``evalsha`` on a cluster
    pipeline. Redis caches what EVAL compiles, so each costs hashing the source (~10 KB)
    on the server. Returns what ``execute_command`` returns (the pipeline, or an
    awaitable for an asyncio pipeline that is watching keys outside MULTI)."""
    call = request.script
    source = script(call.name).source
    return request.pipeline.execute_command("EVAL", source, len(call.keys), *call.keys, *call.args)


def scripts_of(pipeline: Pipeline) -> list[Script]:
    """The scripts a pipeline calls (to load them after a NOSCRIPT reply)."""
    names = dict.fromkeys(r.name for r in pipeline.requests if isinstance(r, RunScript))
    return [script(name) for name in names]


def missing_script(replies: Sequence[Any]) -> bool:
    """Did a reply of a pipeline say NOSCRIPT?"""
    return any(isinstance(r, NoScriptError) for r in replies)


def checked(replies: list[Any]) -> list[Any]:
    """``replies`` of a pipeline run with ``raise_on_error=False``; raises the first error."""
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


def _first_key(request: Any) -> str:
    """The first key a request names (for a message), or "" when it names none."""
    parts = request.requests if isinstance(request, Pipeline) else (request,)
    for part in parts:
        if isinstance(part, Queue):
            part = part.script
        if isinstance(part, RunScript) and part.keys:
            return str(part.keys[0])
        if isinstance(part, Command) and len(part.args) > 1:
            return str(part.args[1])
    return ""


def refusal(exc: Exception, request: Any) -> Exception:
    """Our error for a server's refusal of ``request`` (out of memory, read-only
    replica), naming its first key and what to do; any other error as it is.

    Both refusals come before anything is written: a write script's first command
    that can grow memory comes first (``apply_write.lua``), and a replica refuses a
    script's first write.
    """
    if isinstance(exc, OutOfMemoryError):
        msg = (
            f"the server refused the write of {_first_key(request)!r}: its memory is over "
            "'maxmemory' under maxmemory-policy noeviction; nothing was written. Free memory "
            "(delete or expire objects, raise maxmemory) and retry."
        )
        return OutOfMemory(msg)
    if isinstance(exc, ReadOnlyError):
        msg = (
            f"the server refused the write of {_first_key(request)!r}: it is a read-only "
            "replica; nothing was written. Write through a client of the primary."
        )
        return ReadOnlyServer(msg)
    return exc


def not_a_request(request: Any) -> TypeError:
    """The error for a flow that yields something no driver runs (a bug)."""
    return TypeError(f"a flow yielded {request!r}, which is not a redis_schematics.io request")
