"""Redis killed, restarted or frozen in the middle of a batch of writes.

Each test starts its own throwaway redis-server (tests/faults/servers.py, 127.0.0.1,
ports 7100-7199) and stops it in teardown, even on failure. A writer thread runs a long
series of ``set_many`` chunks (every chunk one ``apply_write.lua`` call) and single
``set`` calls, changing an equality, a range and a unique field each time, while the
test kills the server with SIGKILL (or freezes it with SIGSTOP) mid-way.

What must hold:

* the library raises redis-py's own ``ConnectionError`` / ``TimeoutError`` and never
  hangs (the client has ``socket_timeout``; the writer runs in a thread that the test
  joins with a timeout of its own);
* with ``--appendonly yes --appendfsync always`` the data survives the kill, and nothing
  is half-written: every chunk is entirely of one round, ``check_indexes()`` is empty
  and the index keys are exactly what the stored objects imply;
* without persistence the server comes back empty and consistent;
* the same client works again once the server is back.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from schematics import types

from redis_schematics import RangeIndex, UniqueIndex
from tests.conftest import LAYOUTS
from tests.faults.checks import index_differences, stored_objects
from tests.faults.servers import ThrowawayRedis

pytestmark = pytest.mark.real

#: objects rewritten by every round, in chunks (one script call each)
OBJECTS = 600
CHUNK = 150
#: pauses between "the writer is well under way" and SIGKILL, one kill/restart each
KILL_DELAYS = (0.0, 0.004, 0.013)
#: how long the test waits for the writer to notice the dead server
JOIN_SECONDS = 30


def batch_model(base: type, client: Any) -> Any:
    return type(base)(
        "Batch",
        (base,),
        {
            "__redis_client__": client,
            "__indexes__": ("flavour", RangeIndex("round"), UniqueIndex("code")),
            "id": types.StringType(),
            "flavour": types.StringType(),
            "round": types.IntType(),
            "chunk": types.IntType(),
            "code": types.StringType(),
        },
    )


def make_client(server: ThrowawayRedis, timeout: float = 2.0) -> redis.Redis:
    # Retry(…, 1): redis-py tries once more after a network error, then raises; the point
    # is that the error reaches the caller, quickly.
    return server.client(socket_timeout=timeout, socket_connect_timeout=1, retry=Retry(NoBackoff(), 1))


class Writer(threading.Thread):
    """Rewrites OBJECTS objects round after round, a chunk per ``set_many``, until an error."""

    def __init__(self, model: Any, chunks_before_signal: int) -> None:
        super().__init__(daemon=True)
        self.model = model
        self.chunks_before_signal = chunks_before_signal
        self.reached = threading.Event()
        self.error: BaseException | None = None
        self.chunks_done = 0
        self.singles_done = 0

    def run(self) -> None:
        model = self.model
        try:
            for rnd in range(10_000):
                for start in range(0, OBJECTS, CHUNK):
                    chunk = start // CHUNK
                    objs = [
                        model(
                            {
                                "id": f"o{n}",
                                "flavour": ("vanilla", "mint", "lemon")[(n + rnd) % 3],
                                "round": rnd,
                                "chunk": chunk,
                                "code": f"r{rnd}-{n}",
                            }
                        )
                        for n in range(start, start + CHUNK)
                    ]
                    model.set_many(objs)
                    self.chunks_done += 1
                    # and a single write, of an object of its own
                    model({"id": f"single{rnd % 7}", "flavour": "single", "round": rnd, "code": None}).set()
                    self.singles_done += 1
                    if self.chunks_done >= self.chunks_before_signal:
                        self.reached.set()
        except BaseException as exc:  # the test inspects it
            self.error = exc
        finally:
            self.reached.set()


def assert_whole(model: Any) -> dict[str, int]:
    """Every chunk of objects carries one round; indexes match the objects exactly."""
    objects = stored_objects(model)
    rounds_by_chunk: dict[int, set[int]] = {}
    for pk, data in objects.items():
        if pk.startswith("o"):
            rounds_by_chunk.setdefault(data["chunk"], set()).add(data["round"])
            assert data["code"] == f"r{data['round']}-{pk[1:]}"
    for chunk, rounds in rounds_by_chunk.items():
        assert len(rounds) == 1, f"chunk {chunk} is half-written: rounds {sorted(rounds)}"
    per_chunk = {c: len([pk for pk, d in objects.items() if d.get("chunk") == c]) for c in rounds_by_chunk}
    assert all(n == CHUNK for n in per_chunk.values()), per_chunk
    assert model.check_indexes() == []
    assert index_differences(model) == []
    return {"objects": len(objects), "chunks": len(rounds_by_chunk)}


def run_until_signal(writer: Writer, act: Any, delay: float = 0.01) -> None:
    writer.start()
    assert writer.reached.wait(JOIN_SECONDS), "the writer never got going"
    time.sleep(delay)  # land inside a later call, not exactly at a chunk boundary
    act()


@pytest.mark.parametrize("layout_name", list(LAYOUTS))
def test_kill9_mid_batch_with_aof_leaves_nothing_half_written(
    layout_name: str, redis_server_binary: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = ThrowawayRedis(redis_server_binary, tmp_path, appendonly=True)
    try:
        server.start()
        client = make_client(server)
        model = batch_model(LAYOUTS[layout_name], client)
        for cycle, delay in enumerate(KILL_DELAYS):
            writer = Writer(model, chunks_before_signal=5 + 2 * cycle)
            started = time.monotonic()
            run_until_signal(writer, server.kill9, delay)
            writer.join(JOIN_SECONDS)
            assert not writer.is_alive(), "the writer hung on a dead server"
            waited = time.monotonic() - started
            assert isinstance(writer.error, redis.ConnectionError | redis.TimeoutError), repr(writer.error)

            server.start()  # same port, same directory: the AOF is replayed
            figures = assert_whole(model)  # the same client reconnects by itself
            assert figures["chunks"] == OBJECTS // CHUNK  # the first round had completed
            with capsys.disabled():
                print(
                    f"\n[faults/restart kill -9 + AOF, {layout_name}, kill {cycle + 1}] chunks written "
                    f"before the kill={writer.chunks_done} (+{writer.singles_done} single sets), "
                    f"the writer stopped on the expected {type(writer.error).__name__} {waited:.2f}s "
                    f"after it started; after restart: {figures['objects']} objects, nothing half-written"
                )
        model({"id": "after", "flavour": "vanilla", "round": 0, "code": "after"}).set()
        assert model.match(code="after").id == "after"
        assert model.check_indexes() == []
    finally:
        server.stop()


def test_kill9_without_persistence_comes_back_empty_and_usable(
    redis_server_binary: str, tmp_path: Path
) -> None:
    server = ThrowawayRedis(redis_server_binary, tmp_path, appendonly=False)
    try:
        server.start()
        model = batch_model(LAYOUTS["simple"], make_client(server))
        writer = Writer(model, chunks_before_signal=3)
        run_until_signal(writer, server.kill9)
        writer.join(JOIN_SECONDS)
        assert not writer.is_alive(), "the writer hung on a dead server"
        assert isinstance(writer.error, redis.ConnectionError | redis.TimeoutError), repr(writer.error)
        # While the server is down every call fails fast with a connection error.
        with pytest.raises(redis.ConnectionError):
            model.match_for_pk("o1")
        server.start()  # --save "" and no AOF: it keeps nothing
        assert model.count() == 0
        assert model.all() == []
        assert model.check_indexes() == []
        model.set_many([model({"id": "x", "flavour": "mint", "round": 1, "code": "x"})])
        assert [o.id for o in model.filter(flavour="mint")] == ["x"]
        assert model.check_indexes() == []
    finally:
        server.stop()


@pytest.mark.parametrize("layout_name", ["simple", "hash"])
def test_frozen_server_times_out_then_recovers_consistently(
    layout_name: str, redis_server_binary: str, tmp_path: Path
) -> None:
    """SIGSTOP: the connection stays open and nothing answers; socket_timeout fires.

    A chunk the server had received before the freeze still runs when it is thawed,
    after the client gave up: a timed-out write may apply later, but whole.
    """
    server = ThrowawayRedis(redis_server_binary, tmp_path, appendonly=False)
    try:
        server.start()
        model = batch_model(LAYOUTS[layout_name], make_client(server, timeout=0.5))
        writer = Writer(model, chunks_before_signal=6)
        started = time.monotonic()
        run_until_signal(writer, server.freeze)
        writer.join(JOIN_SECONDS)
        assert not writer.is_alive(), "the writer hung on a frozen server"
        assert isinstance(writer.error, redis.TimeoutError | redis.ConnectionError), repr(writer.error)
        assert time.monotonic() - started < JOIN_SECONDS
        server.thaw()
        assert_whole(model)
    finally:
        server.stop()
