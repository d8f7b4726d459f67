"""What the sync and the async driver share: how a request becomes redis-py calls.

A driver is the only code that holds a Redis client. Both drivers below run the same
flows; they differ only where they wait (``await``). This module holds everything about
a request that involves no waiting, so that neither driver repeats it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError

from redis_schematics.io.requests import Command, Pipeline, RunScript
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


def not_a_request(request: Any) -> TypeError:
    """The error for a flow that yields something no driver runs (a bug)."""
    return TypeError(f"a flow yielded {request!r}, which is not a redis_schematics.io request")
