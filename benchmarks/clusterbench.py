"""Section 8, cluster: the same model on a Redis Cluster and on a single Redis, in one run.

Three copies of the benchmark model (``workload.make_model``, 4 indexes) hold the same
``N`` objects (20,000; 2,000 with ``--quick``):

* **3 shards**: ``__shards__ = 3`` on the cluster at ``REDIS_CLUSTER_URL`` (default
  redis://127.0.0.1:7000). On a 3-primary cluster made by ``redis-cli --cluster create``
  the 3 shards sit on 3 different nodes; the section notes where each one is;
* **tagged**: ``__hash_tag__ = True`` on the same cluster: every key in one slot, so on
  one node;
* **single**: the plain model on the run's single Redis (the private redis-server, or
  ``--url``): the baseline of every ratio.

Measured:

* ``set_many`` throughput (objects/s): each copy is filled from empty to ``N`` objects
  in ``repeat // 3`` calls of ``N / 3`` new objects (6,667), the copies interleaved, so
  that each goes through the same states; the median of the calls, each copy vs single
  and 3 shards vs tagged. That is also how the data the queries read is stored;
* four indexed queries, per call, the three copies sampled round-robin: an equality
  filter returning ~2 % and ~0.05 % of the objects, the count of the ~2 % one, and its
  page ``order_by("-amount_kg").limit(10)``. Every copy must return the same rows (same
  pks, same order) before it is timed, and still hold ``N`` objects after;
* the clients' own cost, for the rows above: one pipeline of 3 commands, or of 3 calls
  of a one-line script, spread over the 3 nodes (``ClusterPipeline``, what a sharded
  query sends) vs a ``redis.Redis`` pipeline of the same (the script stays in the
  servers' script caches). One command through ``RedisCluster`` vs ``redis.Redis`` is
  the tagged count row: one SCARD each.

The cluster is never flushed: the section deletes its own keys (SCAN + UNLINK on the node
of each hash tag) before it writes and at the end. Anything else writing to
or flushing the cluster during the run shows up as a failed check, not as a figure.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from functools import partial
from typing import Any

import redis
from redis.cluster import RedisCluster

from benchmarks import workload as w
from benchmarks.cases import SIMPLE, Bench
from benchmarks.report import Row
from benchmarks.timing import compare, once
from redis_schematics.keys import KeySpace, escape_glob

DEFAULT_CLUSTER_URL = "redis://127.0.0.1:7000"
SECTION = "8 cluster"
SHARDS = 3
#: objects in each copy (--quick: QUICK_N)
N = 20_000
QUICK_N = 2_000
PAGE = 10


class ClusterUnavailable(Exception):
    """No Redis Cluster answers at the URL (the message is one line)."""


def cluster_url() -> str:
    return os.environ.get("REDIS_CLUSTER_URL", DEFAULT_CLUSTER_URL)


def connect(url: str) -> RedisCluster:
    """A (bytes) client of the cluster at ``url``, or :class:`ClusterUnavailable`."""
    try:
        client = RedisCluster.from_url(url, socket_connect_timeout=2, socket_timeout=10)
        client.ping()
    except (redis.RedisError, redis.exceptions.RedisClusterException, OSError) as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        msg = (
            f"no Redis Cluster answers at {url} (set REDIS_CLUSTER_URL, or start one: "
            f".ci/cluster start /tmp/rscluster 7000 7001 7002): {detail}"
        )
        raise ClusterUnavailable(msg) from exc
    return client


def describe(client: Any) -> dict[str, Any]:
    """The cluster's URL, primaries and server version, for the run's metadata."""
    primaries = client.get_primaries()
    info: Any = client.get_redis_connection(primaries[0]).info("server")
    return {
        "url": cluster_url(),
        "primaries": sorted(node.name for node in primaries),
        "redis_server": info.get("redis_version"),
    }


# -- the three copies and their keys ----------------------------------------------------------
def _spaces(model: Any) -> list[KeySpace]:
    """The key spaces of ``model``: one per shard, or its own."""
    engine = model._engine()
    return [shard.keys for shard in engine.shards] or [engine.keys]


def _nodes(client: Any, model: Any) -> list[str]:
    """The node (host:port) holding each key space of ``model``."""
    return [client.get_node_from_key(ks.base).name for ks in _spaces(model)]


def clear(client: Any, model: Any) -> int:
    """Delete every key of ``model`` on the cluster (SCAN + UNLINK on each tag's node;
    all keys of one tag share a slot, so one UNLINK takes a batch). Returns how many."""
    deleted = 0
    for ks in _spaces(model):
        node: Any = client.get_redis_connection(client.get_node_from_key(ks.base))
        batch: list[Any] = []
        for key in node.scan_iter(match=escape_glob(ks.base) + "*", count=1000):
            batch.append(key)
            if len(batch) == 1000:
                deleted += node.unlink(*batch)
                batch = []
        if batch:
            deleted += node.unlink(*batch)
    return deleted


def _where(client: Any) -> str:
    kw = client.connection_pool.connection_kwargs
    return f"{kw.get('host', '?')}:{kw.get('port', '?')}/{kw.get('db', 0)}"


# -- the measurements -------------------------------------------------------------------------
def _set_many(b: Bench, models: dict[str, Any], clearers: dict[str, Callable[[], Any]], n: int) -> None:
    """``set_many`` throughput of each copy, storing the ``n`` objects the queries read.

    The objects are written in ``repeat // 3`` runs of one slice each (new pks every
    run), the copies interleaved, so every copy is written in the same states (0, n/3,
    2n/3 stored); the figure is the median of the runs' objects/s.
    """
    runs = max(1, b.settings.repeat // 3)
    size = -(-n // runs)
    b.say(f"cluster: set_many, {runs} runs of {size:,} new objects per copy")
    warm = list(w.records(10, seed=w.WRITE_SEED))
    for name, model in models.items():  # loads the write script on each node
        model.set_many([model(r) for r in warm])
        clearers[name]()
    recs = list(w.records(n))
    objs = {name: [model(r) for r in recs] for name, model in models.items()}
    rates: dict[str, list[float]] = {name: [] for name in models}
    for start in range(0, n, size):
        for name, model in models.items():
            part = objs[name][start : start + size]
            rates[name].append(len(part) / once(partial(model.set_many, part)))
    rate = {name: statistics.median(rs) for name, rs in rates.items()}
    case = f"set_many({size:,} new objects)"
    b.add(
        Row(
            SECTION,
            f"{case}, 3 shards on 3 primaries",
            rate["sharded"],
            "obj/s",
            "same, single Redis",
            rate["single"],
        )
    )
    b.add(
        Row(
            SECTION,
            f"{case}, tagged, 1 primary",
            rate["tagged"],
            "obj/s",
            "same, single Redis",
            rate["single"],
        )
    )
    b.add(
        Row(
            SECTION,
            f"{case}, 3 shards on 3 primaries",
            rate["sharded"],
            "obj/s",
            "same, tagged (1 primary)",
            rate["tagged"],
        )
    )
    b.rows[-3].note = f"median of {runs} runs per copy, interleaved, filling each copy to {n:,} objects"
    b.series.setdefault("cluster", {})["set_many_obj_per_s"] = rate


def _same(case: str, results: dict[str, Any]) -> Any:
    """The result every copy returned (pks in order, or a count); raises if they differ."""
    shapes = {name: got if isinstance(got, int) else [obj.id for obj in got] for name, got in results.items()}
    expected = shapes["single"]
    for name, got in shapes.items():
        if got != expected:
            size = got if isinstance(got, int) else len(got)
            want = expected if isinstance(expected, int) else len(expected)
            msg = f"cluster: {case} on the {name} copy returned {size} (other rows), on single Redis {want}"
            raise AssertionError(msg)
    return expected


def _queries(b: Bench, models: dict[str, Any], n: int) -> None:
    common, rare = w.COMMON_FLAVOUR, w.RARE_FLAVOUR
    queries: list[tuple[str, Callable[[Any], Any]]] = [
        (f"filter(flavour={common!r})", lambda m: m.filter(flavour=common)),
        (f"filter(flavour={rare!r})", lambda m: m.filter(flavour=rare)),
        (f"count(flavour={common!r})", lambda m: m.count(flavour=common)),
        (
            f"{common}, order_by('-amount_kg').limit({PAGE})",
            lambda m: m.query(flavour=common).order_by("-amount_kg").limit(PAGE).all(),
        ),
    ]
    series = b.series.setdefault("cluster", {}).setdefault("per_call_s", {})
    for case, query in queries:
        b.say(f"cluster: {case}")
        found = _same(case, {name: query(model) for name, model in models.items()})
        if isinstance(found, int):
            label = f"{case} = {found:,}"
        else:  # a page says its size itself
            label = case if "limit(" in case else f"{case} -> {len(found):,} rows"

        def batch(model: Any, query: Callable[[Any], Any] = query) -> Callable[[], int]:
            def run() -> int:
                query(model)
                return 1

            return run

        t = compare({name: batch(model) for name, model in models.items()}, b.settings)
        b.add(Row(SECTION, f"{label}, 3 shards", t["sharded"], "s", "same query, single Redis", t["single"]))
        b.add(Row(SECTION, f"{label}, tagged", t["tagged"], "s", "same query, single Redis", t["single"]))
        series[case] = t
    for name, model in models.items():
        stored = model.count()
        if stored != n:
            msg = (
                f"cluster: the {name} copy holds {stored:,} objects after the timings, not {n:,}: "
                "another client wrote to or flushed the server during the run; run again"
            )
            raise AssertionError(msg)


#: the floor's script: one keyed command, so that its cost is the client's and the call's
FLOOR_SCRIPT = "return redis.call('SCARD', KEYS[1])"


def _floors(b: Bench, client: RedisCluster, models: dict[str, Any]) -> None:
    """The clients' own cost: a pipeline of 3 commands or of 3 script calls over the 3
    nodes (what a sharded query sends), cluster vs single. (One command through
    ``RedisCluster`` is the tagged count: one SCARD.)"""
    b.say("cluster: client floors (pipelines of 3)")
    common = w.COMMON_FLAVOUR
    single: Any = b.client
    cluster: Any = client
    key_single = models["single"]._engine().keys.equality("flavour", common)
    shard_keys = [ks.equality("flavour", common) for ks in _spaces(models["sharded"])]
    sha = single.script_load(FLOOR_SCRIPT)
    cluster.script_load(FLOOR_SCRIPT)  # on every primary

    def pipeline(on: Any, keys: list[str], script: bool = False) -> Callable[[], int]:
        def run() -> int:
            pipe = on.pipeline(transaction=False)
            for key in keys:
                if script:
                    pipe.execute_command("EVALSHA", sha, 1, key)
                else:
                    pipe.execute_command("SCARD", key)
            pipe.execute()
            return 1

        return run

    t = compare(
        {
            "pipe_3_nodes": pipeline(cluster, shard_keys),
            "pipe_single": pipeline(single, [key_single] * SHARDS),
            "script_3_nodes": pipeline(cluster, shard_keys, script=True),
            "script_single": pipeline(single, [key_single] * SHARDS, script=True),
        },
        b.settings,
    )
    b.add(
        Row(
            SECTION,
            "ClusterPipeline: 3 x SCARD on 3 nodes",
            t["pipe_3_nodes"],
            "s",
            "redis.Redis pipeline: 3 x SCARD",
            t["pipe_single"],
            note="the clients' own cost, for the rows above (one SCARD through RedisCluster "
            "vs redis.Redis: the tagged count row)",
        )
    )
    b.add(
        Row(
            SECTION,
            "ClusterPipeline: 3 x EVALSHA on 3 nodes",
            t["script_3_nodes"],
            "s",
            "redis.Redis pipeline: 3 x EVALSHA",
            t["script_single"],
            note="redis-py asks the server for an EVALSHA's keys (COMMAND GETKEYS, one round trip "
            "each) before it sends a cluster pipeline",
        )
    )
    b.series.setdefault("cluster", {})["floors_s"] = t


def cluster(b: Bench, client: RedisCluster) -> None:
    """Section 8: 3 shards on 3 nodes vs tagged on one node vs single Redis."""
    n = QUICK_N if b.quick else N
    b.say(f"cluster at {cluster_url()}: N={n:,}")
    b.flush()
    models = {
        "sharded": w.make_model(
            SIMPLE, client, indexed=True, prefix="BenchSharded", settings={"__shards__": SHARDS}
        ),
        "tagged": w.make_model(
            SIMPLE, client, indexed=True, prefix="BenchTagged", settings={"__hash_tag__": True}
        ),
        "single": w.make_model(SIMPLE, b.client, indexed=True, prefix="Bench"),
    }
    clearers: dict[str, Callable[[], Any]] = {
        "sharded": lambda: clear(client, models["sharded"]),
        "tagged": lambda: clear(client, models["tagged"]),
        "single": b.flush,
    }
    shard_nodes = _nodes(client, models["sharded"])
    tagged_node = _nodes(client, models["tagged"])[0]
    if len(set(shard_nodes)) < SHARDS:
        where = ", ".join(shard_nodes)
        b.note(
            f"cluster: the {SHARDS} shards sit on {len(set(shard_nodes))} node(s) ({where}), "
            f"not {SHARDS}: the cluster has fewer primaries or another slot layout"
        )
    b.series.setdefault("cluster", {})["nodes"] = {"sharded": shard_nodes, "tagged": tagged_node}
    try:
        for name in ("sharded", "tagged"):
            clearers[name]()  # what an interrupted run left
        _set_many(b, models, clearers, n)
        first_query = len(b.rows)
        _queries(b, models, n)
        b.rows[first_query].note = (
            f"3 shards on {', '.join(shard_nodes)}; tagged on {tagged_node}; "
            f"single: {'the private redis-server' if b.own_server else '--url ' + _where(b.client)}"
        )
        _floors(b, client, models)
    finally:
        for name in ("sharded", "tagged"):
            clearers[name]()
        b.flush()
