"""A client wrapper that counts round trips and records the commands sent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Recorder:
    """Counts round trips and records (command, number of args) sent by a client, also
    inside pipelines; with ``forbid_keys`` a call of ``client.keys`` fails the test."""

    def __init__(self, client: Any, forbid_keys: bool = False) -> None:
        self.round_trips = 0
        self.commands: list[tuple[str, int]] = []
        send = client.execute_command
        make_pipeline = client.pipeline

        def execute_command(*args: Any, **options: Any) -> Any:
            self.round_trips += 1
            self.commands.append((str(args[0]).upper(), len(args) - 1))
            return send(*args, **options)

        def pipeline(*args: Any, **kwargs: Any) -> Any:
            pipe = make_pipeline(*args, **kwargs)
            run = pipe.execute

            def execute(*a: Any, **kw: Any) -> Any:
                self.round_trips += 1
                self.commands += [(str(c[0][0]).upper(), len(c[0]) - 1) for c in pipe.command_stack]
                return run(*a, **kw)

            pipe.execute = execute
            return pipe

        def keys(*args: Any, **kwargs: Any) -> Any:
            msg = "redis-schematics must never send KEYS"
            raise AssertionError(msg)

        client.execute_command = execute_command
        client.pipeline = pipeline
        if forbid_keys:
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
