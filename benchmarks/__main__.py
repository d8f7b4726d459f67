"""``python -m benchmarks``: redis-schematics measured against baselines of the same run.

Usage::

    python -m benchmarks                  # N = 1k, 10k, 100k; writes docs/benchmarks.json (+ .png)
    python -m benchmarks --quick          # smoke run, small N, < 1 minute, writes nothing
    python -m benchmarks --large          # also N = 1M in the scale section (many minutes, ~1 GB in Redis)
    python -m benchmarks --n 1000,50000   # choose N
    python -m benchmarks --only writes,memory
    python -m benchmarks --url redis://127.0.0.1:6379/9   # an existing server (db is FLUSHED)
    python -m benchmarks --cluster        # only section 8, on the Redis Cluster at REDIS_CLUSTER_URL
    python -m benchmarks.report docs/benchmarks.json      # that file as a Markdown table

By default it starts its own ``redis-server`` (from PATH) on a free loopback port
(6399 if free) with persistence off and a temporary directory, so that ``INFO memory``
sees only the benchmark's data, and stops it at the end, also on an error or Ctrl-C.
It prints one table; every figure is a median and comes with a ratio to a baseline
measured in the same run:

1. hydration: ``Records.hydrate(pk, payload)`` vs ``json.loads`` and plain schematics;
2. writes: ``obj.set()`` (4 indexes) and ``set_many`` vs hand-written MULTI pipelines;
3. reads by pk: ``match_for_pk`` vs GET + ``json.loads``;
4. indexed filters and counts at N = 100k (or the largest N <= 100k) vs hand-written
   redis-py on the same index keys + the same hydration, and vs the scan path;
5. scale: a range query returning ~100 / ~50 rows at each N, vs N = smallest;
6. memory: ``used_memory`` per object for each layout in ``workload.LAYOUTS``, without
   and with the 4 indexes, at N = 100k (or the largest N <= 100k);
7. async: ``amatch_for_pk`` / ``afilter`` vs their sync twins, and 100 concurrent
   ``afilter`` calls (``asyncio.gather``, one pool) vs 100 sequential sync calls;
8. cluster (only when asked: ``--cluster`` or ``--only ...,cluster``): the same model
   sharded over 3 nodes of the Redis Cluster at ``REDIS_CLUSTER_URL`` (default
   redis://127.0.0.1:7000), hash-tagged on one node, and on the single Redis of the run:
   indexed queries per call and ``set_many`` throughput (``clusterbench``). A default
   run leaves it out even when a cluster answers, so that its rows and its duration do
   not depend on what else runs on the machine. A run of section 8 alone writes no file
   unless ``--out`` is given (``docs/benchmarks.json`` keeps the full run).

Results go to ``<out>/benchmarks.json`` and, when matplotlib is installed,
``<out>/benchmarks.png``. See docs/benchmarks.md for what each row means.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import importlib.util
import os
import platform
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

from benchmarks import asyncbench, cases, clusterbench, report, server
from benchmarks.timing import Settings

SECTIONS = ("hydration", "writes", "reads", "memory", "filters", "scale", "async")
#: sections run only when named (``--only``, ``--cluster``), never by default
OPT_IN = ("cluster",)
DEFAULT_NS = (1_000, 10_000, 100_000)
QUICK_NS = (500, 2_000)
LARGE_N = 1_000_000
#: sections 4 and 6 run at the largest N not above this
SECTION_N_CAP = 100_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark redis-schematics against hand-written redis-py in the same run.",
    )
    parser.add_argument(
        "--n",
        type=lambda s: [int(x.replace("_", "")) for x in s.split(",") if x.strip()],
        default=None,
        help="comma-separated object counts for the scale section (default 1000,10000,100000)",
    )
    parser.add_argument("--large", action="store_true", help="also N = 1,000,000 in the scale section")
    parser.add_argument("--quick", action="store_true", help="smoke run: small N, few samples (< 1 minute)")
    parser.add_argument(
        "--url",
        help="use this Redis instead of a private redis-server; its database is FLUSHED, "
        "and memory figures include anything else writing there",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="directory for benchmarks.json/.png (default docs/; --quick and --cluster "
        "write nothing unless given)",
    )
    parser.add_argument(
        "--only",
        type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
        default=None,
        help=f"comma-separated sections to run, from {','.join(SECTIONS + OPT_IN)} "
        f"(default: all but {','.join(OPT_IN)})",
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="run only the cluster section, on the Redis Cluster at REDIS_CLUSTER_URL "
        f"(default {clusterbench.DEFAULT_CLUSTER_URL}); exits with 2 when none answers",
    )
    args = parser.parse_args(argv)
    if args.cluster:
        if args.only is not None:
            parser.error(
                "--cluster runs only the cluster section; use --only ...,cluster to add it to others"
            )
        args.only = ["cluster"]
    elif args.only is None:
        args.only = list(SECTIONS)
    known = SECTIONS + OPT_IN
    unknown = [s for s in args.only if s not in known]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    if args.n is None:
        args.n = list(QUICK_NS if args.quick else DEFAULT_NS)
    if args.large and LARGE_N not in args.n:
        args.n.append(LARGE_N)
    args.n = sorted(set(args.n))
    if not args.n or min(args.n) < 100:
        parser.error("--n needs counts of at least 100 objects")
    if args.out is None and not args.quick and set(args.only) - set(OPT_IN):
        args.out = Path("docs")
    return args


@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """Make SIGTERM unwind like Ctrl-C does, so the private server is stopped."""

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def metadata(client: redis.Redis, args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    info: Any = client.info("server")
    return {
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv[1:],
        "n": args.n,
        "quick": args.quick,
        "server": "--url" if args.url else "private redis-server",
        "redis_server": info.get("redis_version"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "redis_py": _version("redis"),
        "schematics": _version("schematics"),
        "redis_schematics": _version("redis-schematics"),
        "hiredis": importlib.util.find_spec("hiredis") is not None,
        "orjson": importlib.util.find_spec("orjson") is not None,
        "repeat": settings.repeat,
        "min_sample_s": settings.min_time,
        "loadavg_start": os.getloadavg(),
    }


def run(client: redis.Redis, args: argparse.Namespace, cluster: Any = None) -> int:
    settings = Settings(repeat=3, min_time=0.02) if args.quick else Settings(repeat=9, min_time=0.2)
    bench = cases.Bench(client, settings, args.quick, own_server=not args.url)
    meta = metadata(client, args, settings)
    if cluster is not None:
        meta["cluster"] = clusterbench.describe(cluster)
    started = time.perf_counter()
    section_n = max([n for n in args.n if n <= SECTION_N_CAP] or [min(args.n)])
    client.flushdb()
    try:
        if "hydration" in args.only:
            cases.hydration(bench)
        if "writes" in args.only:
            cases.writes(bench)
        if "reads" in args.only:
            cases.reads(bench)
        if "async" in args.only:
            asyncbench.asyncio_api(bench)
        if "memory" in args.only:
            cases.memory(bench, section_n)
        if "scale" in args.only or "filters" in args.only:
            ns = args.n if "scale" in args.only else [section_n]
            filter_n = section_n if "filters" in args.only else None
            cases.scale_and_filters(bench, ns, filter_n)
            if "scale" not in args.only:
                bench.rows = [r for r in bench.rows if not r.section.startswith("5")]
        if "cluster" in args.only:
            clusterbench.cluster(bench, cluster)
    finally:
        with contextlib.suppress(redis.RedisError):
            client.flushdb()
    order = {name: i for i, name in enumerate(sorted({r.section for r in bench.rows}))}
    rows = sorted(bench.rows, key=lambda r: order[r.section])  # stable: keeps order inside a section
    meta["seconds"] = round(time.perf_counter() - started, 1)
    meta["loadavg_end"] = os.getloadavg()
    meta["notes"] = bench.notes

    print(report.table(rows))
    for note in bench.notes:
        print(f"note: {note}")
    met = [r for r in rows if r.met is True]
    missed = [r for r in rows if r.met is False]
    print(
        f"\ntargets: {len(met)} met, {len(missed)} missed; {meta['seconds']} s; "
        f"load average {meta['loadavg_start'][0]:.2f} -> {meta['loadavg_end'][0]:.2f}"
    )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        report.write_json(args.out / "benchmarks.json", meta, rows, bench.series)
        print(f"wrote {args.out / 'benchmarks.json'}")
        if report.write_png(args.out / "benchmarks.png", rows, bench.series):
            print(f"wrote {args.out / 'benchmarks.png'}")
        else:
            print("matplotlib is not installed: no chart (pip install matplotlib)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cluster = None
    if "cluster" in args.only:
        try:
            cluster = clusterbench.connect(clusterbench.cluster_url())
        except clusterbench.ClusterUnavailable as exc:
            print(f"python -m benchmarks: {exc}", file=sys.stderr)
            return 2
    try:
        with sigterm_as_exit():
            if args.url:
                with server.existing_redis(args.url) as client:
                    return run(client, args, cluster)
            with server.throwaway_redis() as client:
                return run(client, args, cluster)
    except KeyboardInterrupt:
        print("\ninterrupted; no results written", file=sys.stderr)
        return 130
    finally:
        if cluster is not None:
            cluster.close()


if __name__ == "__main__":
    sys.exit(main())
