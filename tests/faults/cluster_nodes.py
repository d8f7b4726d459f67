"""A throwaway Redis Cluster (3 primaries + 3 replicas) for the fault tests.

Every node is a ``redis-server`` child process on 127.0.0.1 with its own directory; its
client port *and* its cluster bus port (``--cluster-port``, Redis 7) are taken from
7100-7199, so nothing listens outside the range of tests/faults/proxy.py. The cluster is
made by ``redis-cli --cluster create ... --cluster-replicas 1 --cluster-yes`` and is
ready when every node says ``cluster_state:ok``, knows every other node, and every
replica's link to its primary is up.

``stop()`` SIGKILLs every node that is still running; the fixture calls it in a
``finally``, so a failing test never leaves a node behind. Every wait here is bounded.

The by-hand operations the tests need are here too: SIGKILL a node, wait for a replica's
promotion, a replication barrier (a replica has applied everything its primary had),
and a slot migration done step by step (``CLUSTER SETSLOT ... IMPORTING/MIGRATING``,
``MIGRATE`` in batches, ``CLUSTER SETSLOT ... NODE``).
"""

from __future__ import annotations

import contextlib
import random
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import redis.cluster
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.faults.proxy import PORTS

#: seconds a node takes to answer PING after its start, at most
START_SECONDS = 10.0
#: seconds the whole cluster takes to be ready after ``--cluster create``, at most
READY_SECONDS = 30.0


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def free_ports(count: int, rng: random.Random) -> list[int]:
    """``count`` ports of 7100-7199 free on 127.0.0.1 right now (all probed at once)."""
    order = list(PORTS)
    rng.shuffle(order)
    probes: list[socket.socket] = []
    found: list[int] = []
    try:
        for port in order:
            if len(found) == count:
                break
            probe = socket.socket()
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                probe.close()
                continue
            probes.append(probe)
            found.append(port)
    finally:
        for probe in probes:
            probe.close()
    if len(found) < count:
        msg = f"only {len(found)} of the {count} ports needed are free in {PORTS.start}-{PORTS.stop - 1}"
        raise RuntimeError(msg)
    return found


@dataclass
class Node:
    """One redis-server of the cluster."""

    port: int
    bus_port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    #: the cluster node id (CLUSTER MYID), known once the node is up
    id: str = ""

    @property
    def name(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def client(self, timeout: float = 2.0) -> redis.Redis:
        """A plain (non-cluster) client of this one node that does not retry (redis-py's
        default retries back off for seconds on a dead node)."""
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )

    def call(self, *args: Any, timeout: float = 2.0) -> Any:
        """One command on this node, on a connection of its own."""
        with self.client(timeout) as c:
            return c.execute_command(*args)

    def kill9(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
            self.process = None


@dataclass
class Topology:
    """What one node says about the cluster (CLUSTER NODES)."""

    #: node id -> (port, flags, primary id or "-", slot ranges)
    nodes: dict[str, tuple[int, set[str], str, list[tuple[int, int]]]] = field(default_factory=dict)
    #: slots in migration ([slot->-id] / [slot-<-id] entries)
    open_slots: list[str] = field(default_factory=list)

    def owner(self, slot: int) -> str | None:
        for node_id, (_port, flags, _primary, ranges) in self.nodes.items():
            if "fail" in flags:
                continue
            if any(lo <= slot <= hi for lo, hi in ranges):
                return node_id
        return None


def parse_nodes(reply: Any) -> Topology:
    topo = Topology()
    for line in text(reply).splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        node_id, addr, flags, primary = parts[0], parts[1], set(parts[2].split(",")), parts[3]
        port = int(addr.split("@")[0].rsplit(":", 1)[1])
        ranges: list[tuple[int, int]] = []
        for part in parts[8:]:
            if part.startswith("["):
                topo.open_slots.append(part)
            elif "-" in part:
                lo, hi = part.split("-")
                ranges.append((int(lo), int(hi)))
            else:
                ranges.append((int(part), int(part)))
        topo.nodes[node_id] = (port, flags, primary, ranges)
    return topo


def wait_until(what: str, check: Callable[[], bool], seconds: float, pause: float = 0.05) -> float:
    """Call ``check`` until it is true (errors count as false); the seconds it took.

    Raises:
        TimeoutError: still false after ``seconds``.
    """
    start = time.monotonic()
    last: BaseException | None = None
    while True:
        try:
            if check():
                return time.monotonic() - start
        except (redis.RedisError, OSError) as exc:
            last = exc
        if time.monotonic() - start > seconds:
            msg = f"{what}: not true after {seconds} s" + (f" (last error: {last!r})" if last else "")
            raise TimeoutError(msg)
        time.sleep(pause)


class ThrowawayCluster:
    """``primaries`` primaries with ``replicas`` replicas each, on loopback ports 7100-7199."""

    def __init__(
        self,
        server: str,
        cli: str,
        directory: Path,
        primaries: int = 3,
        replicas: int = 1,
        node_timeout_ms: int = 1000,
        seed: int | None = None,
    ) -> None:
        self.server = server
        self.cli = cli
        self.directory = directory
        self.size = primaries * (1 + replicas)
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self.rng = random.Random(seed)
        self.nodes: list[Node] = []

    # -- life cycle -----------------------------------------------------------------------
    def start(self) -> ThrowawayCluster:
        """Start the nodes (new ports if one could not bind), create the cluster, wait."""
        for attempt in range(3):
            ports = free_ports(2 * self.size, self.rng)
            self.nodes = [
                Node(port, bus, self.directory / f"try{attempt}-{port}")
                for port, bus in zip(ports[: self.size], ports[self.size :], strict=True)
            ]
            for node in self.nodes:
                node.directory.mkdir(parents=True)
                node.process = subprocess.Popen(
                    self._command(node), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
            if all(self._wait_ready(node) for node in self.nodes):
                break
            self.stop()  # a port was taken meanwhile: start over on other ports
        else:
            msg = f"could not start {self.size} redis-server nodes; see the logs in {self.directory}"
            raise RuntimeError(msg)
        for node in self.nodes:
            node.id = text(node.call("CLUSTER", "MYID"))
        replicas = ["--cluster-replicas", str(self.replicas), "--cluster-yes"]
        created = subprocess.run(
            [self.cli, "--cluster", "create", *(n.name for n in self.nodes), *replicas],
            capture_output=True,
            timeout=60,
            check=False,
        )
        (self.directory / "create.log").write_bytes(created.stdout + created.stderr)
        if created.returncode != 0:
            msg = f"redis-cli --cluster create failed ({created.returncode}): {created.stdout[-2000:]!r}"
            raise RuntimeError(msg)
        self.wait_healthy(READY_SECONDS)
        return self

    def _command(self, node: Node) -> list[str]:
        return [
            self.server,
            "--bind", "127.0.0.1",
            "--port", str(node.port),
            "--cluster-enabled", "yes",
            "--cluster-port", str(node.bus_port),
            "--cluster-config-file", str(node.directory / "nodes.conf"),
            "--cluster-node-timeout", str(self.node_timeout_ms),
            "--dir", str(node.directory),
            "--logfile", "redis.log",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
        ]  # fmt: skip

    def _wait_ready(self, node: Node) -> bool:
        deadline = time.monotonic() + START_SECONDS
        with node.client(1.0) as probe:
            while time.monotonic() < deadline:
                if not node.alive:
                    return False
                try:
                    if probe.ping():
                        return True
                except (redis.ConnectionError, redis.TimeoutError):
                    time.sleep(0.05)
        return False

    def stop(self) -> None:
        """SIGKILL every node still running (safe to call twice)."""
        for node in self.nodes:
            node.kill9()

    def __enter__(self) -> ThrowawayCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- looking at it --------------------------------------------------------------------
    def alive(self) -> list[Node]:
        return [n for n in self.nodes if n.alive]

    def by_id(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.id == node_id)

    def topology(self, node: Node | None = None) -> Topology:
        """CLUSTER NODES as one live node (the first, unless named) sees it."""
        asked = node or self.alive()[0]
        return parse_nodes(asked.call("CLUSTER", "NODES"))

    def primaries(self) -> list[Node]:
        topo = self.topology()
        return [self.by_id(i) for i, (_p, flags, _m, ranges) in topo.nodes.items()
                if "master" in flags and "fail" not in flags and ranges]  # fmt: skip

    def owner(self, slot: int) -> Node:
        found = self.topology().owner(slot)
        if found is None:
            msg = f"no live node serves slot {slot}"
            raise LookupError(msg)
        return self.by_id(found)

    def replicas_of(self, primary: Node) -> list[Node]:
        topo = self.topology()
        return [self.by_id(i) for i, (_p, _f, master, _r) in topo.nodes.items() if master == primary.id]

    def healthy(self) -> bool:
        """Every live node: cluster_state:ok, the same view of which node serves which
        slot, no slot in migration, every replica linked to its primary."""
        views = []
        for node in self.alive():
            info = text(node.call("CLUSTER", "INFO"))
            if "cluster_state:ok" not in info:
                return False
            topo = self.topology(node)
            if topo.open_slots:
                return False
            views.append(
                sorted((i, tuple(r)) for i, (_p, f, _m, r) in topo.nodes.items() if r and "fail" not in f)
            )
            if "slave" in topo.nodes[node.id][1]:
                with node.client() as c:
                    if c.info("replication").get("master_link_status") != "up":
                        return False
        return all(v == views[0] for v in views)

    def wait_healthy(self, seconds: float) -> float:
        return wait_until("cluster healthy", self.healthy, seconds)

    def client(self, **kwargs: Any) -> redis.cluster.RedisCluster:
        """A RedisCluster client that knows every node as a startup node."""
        options: dict[str, Any] = {"socket_timeout": 5, "socket_connect_timeout": 1}
        options.update(kwargs)
        startup = [redis.cluster.ClusterNode("127.0.0.1", n.port) for n in self.nodes]
        return redis.cluster.RedisCluster(startup_nodes=startup, **options)

    # -- faults ---------------------------------------------------------------------------
    def replicated(self, primary: Node, replica: Node, seconds: float = 2.0) -> bool:
        """A replication barrier: has ``replica`` applied every write ``primary`` had
        applied when this was called? False when the primary cannot be asked (dead) or
        the replica lags more than ``seconds``; at once when the primary process dies)."""
        try:
            with primary.client(1.0) as c:
                info = c.info("replication")
        except (redis.ConnectionError, redis.TimeoutError):
            return False
        target = int(info["master_repl_offset"])
        deadline = time.monotonic() + seconds
        with replica.client(1.0) as c:
            while time.monotonic() < deadline and primary.alive:
                try:
                    if int(c.info("replication").get("slave_repl_offset", -1)) >= target:
                        return True
                except (redis.ConnectionError, redis.TimeoutError):
                    return False
                time.sleep(0.001)
        return False

    def wait_promoted(self, replica: Node, seconds: float) -> float:
        """Wait until ``replica`` calls itself a primary serving slots."""

        def promoted() -> bool:
            topo = self.topology(replica)
            _port, flags, _master, ranges = topo.nodes[replica.id]
            return "master" in flags and bool(ranges)

        return wait_until(f"promotion of {replica.name}", promoted, seconds, pause=0.02)

    def migrate_slot(
        self,
        slot: int,
        source: Node,
        target: Node,
        batch: int = 4,
        pause: float = 0.03,
        seconds: float = 20.0,
    ) -> dict[str, int]:
        """Move ``slot`` from ``source`` to ``target`` by hand, as redis-cli --cluster
        reshard does: IMPORTING on the target, MIGRATING on the source, MIGRATE the keys
        in batches of ``batch`` (``pause`` seconds apart, so that clients meet the slot
        half moved), then SETSLOT NODE on every primary (target first). Returns counts."""
        start = time.monotonic()
        target.call("CLUSTER", "SETSLOT", slot, "IMPORTING", source.id)
        source.call("CLUSTER", "SETSLOT", slot, "MIGRATING", target.id)
        moved = batches = 0
        while True:
            if time.monotonic() - start > seconds:
                msg = f"slot {slot}: keys still on {source.name} after {seconds} s"
                raise TimeoutError(msg)
            keys = source.call("CLUSTER", "GETKEYSINSLOT", slot, batch)
            if not keys:
                break
            source.call("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys, timeout=10)
            moved += len(keys)
            batches += 1
            time.sleep(pause)
        others = [n for n in self.primaries() if n not in (source, target)]
        for node in (target, source, *others):
            node.call("CLUSTER", "SETSLOT", slot, "NODE", target.id)
        return {"keys": moved, "batches": batches}
