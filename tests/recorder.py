"""A client wrapper that counts round trips and records the commands sent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.asyncmode import AsyncMode


class Recorder:
    """Counts round trips and records (command, number of args) sent by a client, also
    inside pipelines; with ``forbid_keys`` a call of ``client.keys`` (or a KEYS command)
    fails the test. Under the async API (tests/asyncmode.py) the client's async twins
    are recorded the same way."""

    def __init__(self, client: Any, forbid_keys: bool = False) -> None:
        self.round_trips = 0
        self.commands: list[tuple[str, int]] = []
        self.forbid_keys = forbid_keys
        self._wrap(client, is_async=False)
        if AsyncMode.current is not None:
            AsyncMode.current.on_twins(client, lambda twin: self._wrap(twin, is_async=True))

    def _seen(self, args: tuple[Any, ...]) -> None:
        name = str(args[0]).upper()
        if self.forbid_keys and name == "KEYS":
            msg = "redis-schematics must never send KEYS"
            raise AssertionError(msg)
        self.commands.append((name, len(args) - 1))

    def _wrap(self, client: Any, is_async: bool) -> None:
        send = client.execute_command
        make_pipeline = client.pipeline

        def execute_command(*args: Any, **options: Any) -> Any:
            self.round_trips += 1
            self._seen(args)
            return send(*args, **options)

        def pipeline(*args: Any, **kwargs: Any) -> Any:
            pipe = make_pipeline(*args, **kwargs)
            run = pipe.execute

            def execute(*a: Any, **kw: Any) -> Any:
                self.round_trips += 1
                for command in pipe.command_stack:
                    self._seen(command[0])
                return run(*a, **kw)

            pipe.execute = execute
            return pipe

        def keys(*args: Any, **kwargs: Any) -> Any:
            msg = "redis-schematics must never send KEYS"
            raise AssertionError(msg)

        client.execute_command = execute_command
        client.pipeline = pipeline
        if self.forbid_keys:
            client.keys = keys

    @property
    def names(self) -> list[str]:
        """The names of the commands sent, in order."""
        return [name for name, _argc in self.commands]

    def reset(self) -> None:
        self.round_trips = 0
        self.commands = []

    def count(self, fn: Callable[[], Any]) -> int:
        """Round trips ``fn()`` takes."""
        self.reset()
        fn()
        return self.round_trips
