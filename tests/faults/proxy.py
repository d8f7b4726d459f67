"""A small threaded TCP proxy on 127.0.0.1 that breaks connections on purpose.

It sits between a redis-py client and a real Redis server and forwards bytes both ways.
Each connection gets its own seeded random generator, which draws how many bytes may
pass in each direction before the connection is cut: the cut lands at a random point of
a RESP message, in a request (the server sees half a command and drops it) or in a
reply (the command ran; the client never hears about it). Some cuts are *stalls*: the
proxy holds the data past the client's ``socket_timeout`` first, so the client sees a
``TimeoutError`` rather than a closed connection. Small random delays shuffle timing.

Only loopback addresses: it listens on 127.0.0.1 (a port of 7100-7199) and connects to
the upstream given, which the tests take from ``REDIS_URL`` (127.0.0.1).
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

#: the ports throwaway servers of these tests may use
PORTS = range(7100, 7200)


def bind_free_port(sock: socket.socket, ports: range = PORTS, rng: random.Random | None = None) -> int:
    """Bind ``sock`` to 127.0.0.1 on a free port of ``ports``; returns the port."""
    order = list(ports)
    (rng or random.Random()).shuffle(order)
    for port in order:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    msg = f"no free port in {ports.start}-{ports.stop - 1} on 127.0.0.1"
    raise RuntimeError(msg)


def _reset(sock: socket.socket) -> None:
    """Close abruptly: a TCP RST (SO_LINGER 0) rather than a clean FIN where possible.

    ``shutdown`` first wakes the other pump thread if it is blocked reading this socket
    (a plain ``close`` would leave it blocked).
    """
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


@dataclass
class Stats:
    connections: int = 0
    cuts: int = 0  # connections cut at a random byte, or with a reply lost whole
    stalls: int = 0  # connections held past the client's timeout, then cut
    bytes_up: int = 0
    bytes_down: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def faults(self) -> int:
        return self.cuts + self.stalls


class FaultyProxy:
    """Forward 127.0.0.1:<port> to ``upstream``, cutting connections at random points.

    Args:
        upstream: (host, port) of the real server (loopback).
        seed: makes every connection's fault plan reproducible (connection n uses
            ``Random(f"{seed}-{n}")``; thread timing still varies a little).
        budget: (low, high) bytes a connection may carry in each direction before the
            cut; drawn uniformly per connection and direction.
        lose_reply_probability: chance that a chunk of replies is dropped whole and the
            connection cut: the commands ran, the client never hears so (a reply is a
            few bytes, so byte budgets alone rarely land in one).
        stall_probability: share of cuts preceded by a hold of ``stall_seconds``.
        delay_probability / max_delay: chance and size of a small pause before a chunk.
    """

    def __init__(
        self,
        upstream: tuple[str, int],
        seed: int = 0,
        budget: tuple[int, int] = (200, 20000),
        lose_reply_probability: float = 0.01,
        stall_probability: float = 0.01,
        stall_seconds: float = 0.3,
        delay_probability: float = 0.02,
        max_delay: float = 0.003,
    ) -> None:
        self.upstream = upstream
        self.seed = seed
        self.budget = budget
        self.lose_reply_probability = lose_reply_probability
        self.stall_probability = stall_probability
        self.stall_seconds = stall_seconds
        self.delay_probability = delay_probability
        self.max_delay = max_delay
        #: False = forward faithfully (no new faults)
        self.enabled = True
        self.stats = Stats()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.port = bind_free_port(self._listener, rng=random.Random(seed))
        self._listener.listen(64)
        self._stopping = threading.Event()
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept_loop, name="proxy-accept", daemon=True)

    # -- life cycle -----------------------------------------------------------------------
    def start(self) -> FaultyProxy:
        self._acceptor.start()
        return self

    def stop(self) -> None:
        """Stop accepting, reset every open connection, wait for the threads."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._open_lock:
            for sock in list(self._open):
                _reset(sock)
            self._open.clear()
        self._acceptor.join(timeout=5)
        for t in list(self._threads):
            t.join(timeout=5)

    def __enter__(self) -> FaultyProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- forwarding ---------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stopping.is_set():
            try:
                down, _addr = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                up = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _reset(down)
                continue
            for sock in (down, up):
                sock.settimeout(None)
                # as redis-py and Redis do: without it Nagle's algorithm meets delayed ACKs
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.stats.lock:
                self.stats.connections += 1
                number = self.stats.connections
            rng = random.Random(f"{self.seed}-{number}")
            conn = _Connection(self, down, up, rng)
            with self._open_lock:
                self._open.update((down, up))
            self._threads = [t for t in self._threads if t.is_alive()]
            for src, dst, budget, name in (
                (down, up, rng.randint(*self.budget), "up"),
                (up, down, rng.randint(*self.budget), "down"),
            ):
                t = threading.Thread(target=conn.pump, args=(src, dst, budget, name), daemon=True)
                self._threads.append(t)
                t.start()

    def _forget(self, *socks: socket.socket) -> None:
        with self._open_lock:
            for s in socks:
                self._open.discard(s)


class _Connection:
    """One client connection and its upstream twin; the first fault closes both."""

    def __init__(self, proxy: FaultyProxy, down: socket.socket, up: socket.socket, rng: random.Random):
        self.proxy = proxy
        self.down = down
        self.up = up
        self.lock = threading.Lock()
        self.rng = rng  # used under self.lock only
        self.closed = False

    def close(self, fault: str | None) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
        stats = self.proxy.stats
        if fault is not None:
            with stats.lock:
                if fault == "stall":
                    stats.stalls += 1
                else:
                    stats.cuts += 1
        _reset(self.down)
        _reset(self.up)
        self.proxy._forget(self.down, self.up)

    def pump(self, src: socket.socket, dst: socket.socket, budget: int, direction: str) -> None:
        proxy = self.proxy
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    self.close(None)
                    return
                with self.lock:
                    if self.closed:
                        return
                    pause = (
                        self.rng.uniform(0, proxy.max_delay)
                        if self.rng.random() < proxy.delay_probability
                        else 0.0
                    )
                    stall = self.rng.random() < proxy.stall_probability
                    lose = direction == "down" and self.rng.random() < proxy.lose_reply_probability
                if pause:
                    time.sleep(pause)
                if proxy.enabled and (lose or sent + len(data) > budget):
                    head = b"" if lose else data[: max(0, budget - sent)]
                    if stall:
                        time.sleep(proxy.stall_seconds)
                    if head:
                        dst.sendall(head)
                    self.close("stall" if stall else "cut")
                    return
                dst.sendall(data)
                sent += len(data)
                with proxy.stats.lock:
                    if direction == "up":
                        proxy.stats.bytes_up += len(data)
                    else:
                        proxy.stats.bytes_down += len(data)
        except OSError:
            self.close(None)
