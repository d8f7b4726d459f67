"""Simulated concurrent writers and request spies, by wrapping the library's driver.

Every flow of the library runs through a driver (``redis_schematics.io``); while one of
these context managers is active, every driver handed out (sync or async) is wrapped, so
each request of every layout, query and upkeep path passes through the hook first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from redis_schematics.io import Pipeline, Request, RunScript, Sleep, intercept


def _scripts(request: Request) -> list[str]:
    if isinstance(request, RunScript):
        return [request.name]
    if isinstance(request, Pipeline):
        return [r.name for r in request.requests if isinstance(r, RunScript)]
    return []


@contextmanager
def intercepting(hook: Callable[[Request], Request]) -> Iterator[None]:
    """Pass every request of the library through ``hook`` (which may replace it)."""

    def wrap(driver: Any) -> Any:
        base = type(driver)

        class Hooked(base):  # type: ignore[misc, valid-type]
            pass

        if base.is_async:

            async def handle(self: Any, request: Request) -> Any:
                return await base.handle(self, hook(request))
        else:

            def handle(self: Any, request: Request) -> Any:  # type: ignore[misc]
                return base.handle(self, hook(request))

        Hooked.handle = handle
        return Hooked(driver.client)

    with intercept(wrap):
        yield


@dataclass
class Race:
    """What a race saw: the script calls (numbered 1, 2, ...) and the backoff waits."""

    calls: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)


@contextmanager
def racing(client: Any, before: Callable[[Any, int], None] | None = None) -> Iterator[Race]:
    """Before each script call of the library, run ``before(client, n)`` (n = 1, 2, ... the
    call's number), as if another client (``client``, sync) wrote just then. The write
    retries' backoff waits are recorded and not slept."""
    race = Race()

    def hook(request: Request) -> Request:
        if isinstance(request, Sleep):
            race.waits.append(request.seconds)
            return Sleep(0)
        for name in _scripts(request):
            race.names.append(name)
            race.calls.append(len(race.calls) + 1)
            if before is not None:
                before(client, race.calls[-1])
        return request

    with intercepting(hook):
        yield race
