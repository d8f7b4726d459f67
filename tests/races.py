"""Simulated concurrent writers: another client's write just before each library script."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from redis_schematics import store as store_module


def race_before_scripts(monkeypatch: pytest.MonkeyPatch, before: Callable[[Any, int], None]) -> list[int]:
    """Make every script call of the library first run ``before(client, n)`` (n = 1, 2, ...
    the call's number), as if another client wrote just then. Returns the call numbers
    seen so far (a live list). ``monkeypatch.undo()`` restores the real scripts."""
    real_script = store_module.script
    calls: list[int] = []

    def racing_script(redis_client: Any, name: str) -> Any:
        run = real_script(redis_client, name)

        def racing(keys: Any, args: Any, client: Any = None) -> Any:
            calls.append(len(calls) + 1)
            before(redis_client, calls[-1])
            return run(keys, args, client=client)

        return racing

    monkeypatch.setattr(store_module, "script", racing_script)
    return calls
