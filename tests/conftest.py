"""Shared fixtures: every behavioural test runs on fakeredis and on a real Redis, through
the sync and the async API.

The real server comes from ``--redis-url`` or ``REDIS_URL`` (default
``redis://127.0.0.1:6379/15``); its database is flushed before and after each test, so
point it at a database you can spare. When nothing answers, the real half is skipped —
unless ``REDIS_REQUIRED=1`` (CI sets it), which turns the skip into a failure.

Three profiles (``RS_TESTS``): ``quick`` (the default, a few minutes) runs every test on
the client kinds ``fake``, ``fake-async`` and ``real``, without the fault tests;
``full`` adds the ``-str`` (decode_responses) and ``real-async`` kinds and
``tests/faults``; ``rest`` (CI, after a quick run) is what ``full`` adds to ``quick``.
See tests/README.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import redis
from hypothesis import HealthCheck, is_hypothesis_test, settings

from redis_schematics import (
    DistributedHashRedisModel,
    DistributedRedisModel,
    HashRedisModel,
    SimpleRedisModel,
)
from redis_schematics.io import policy
from tests.asyncmode import async_api
from tests.cluster import real_cluster, slot_checked

DEFAULT_URL = "redis://127.0.0.1:6379/15"

settings.register_profile(
    "quick", max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=False,
)
settings.register_profile(
    "deep",
    max_examples=2000,
    stateful_step_count=80,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
# the quick test profile (RS_TESTS unset) samples less unless told otherwise
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "dev" if os.environ.get("RS_TESTS") in ("full", "rest") else "quick")
)


#: what RS_TESTS=quick (the default) leaves out: client kinds, and folders
FULL_ONLY_KINDS = ("fake-str", "real-str", "real-async", "fake-cluster-async", "real-cluster-async")
FULL_ONLY_DIRS = ("faults",)
#: (folder, kind): the real cluster's property machines (two minutes) run in full only;
#: the quick profile runs them on the slot checker
FULL_ONLY_PAIRS = (("property", "real-cluster"),)


PROFILES = ("quick", "full", "rest")


def chosen_profile() -> str:
    """The test profile chosen by ``RS_TESTS``: quick (the default), full or rest."""
    wanted = os.environ.get("RS_TESTS", "quick")
    if wanted not in PROFILES:
        msg = f"RS_TESTS={wanted!r}: use 'quick' (the default), 'full' or 'rest'"
        raise pytest.UsageError(msg)
    return wanted


def full_profile() -> bool:
    """Do tests run at the full profile's sizes (RS_TESTS=full or rest, as CI runs)?"""
    return chosen_profile() != "quick"


def pytest_report_header(config: pytest.Config) -> str:
    omitted = f" (kinds omitted: {', '.join(OMITTED_KINDS)})" if OMITTED_KINDS else ""
    return _header() + omitted


def _header() -> str:
    chosen = chosen_profile()
    if chosen == "full":
        return "redis-schematics tests: full profile (every client kind, faults included)"
    if chosen == "rest":
        return (
            "redis-schematics tests: rest profile (what the full profile adds to a quick run: "
            "the other client kinds, faults, and every sized or hypothesis test at full size)"
        )
    return (
        "redis-schematics tests: quick profile (kinds fake, fake-async, real; no faults); "
        "RS_TESTS=full runs everything"
    )


#: client kinds left out of this run (comma-separated ``RS_OMIT_KINDS``; CI omits
#: ``fake-str``, see .ci/run): deselected, and said in the header
OMITTED_KINDS = tuple(k for k in os.environ.get("RS_OMIT_KINDS", "").split(",") if k)


def _omitted(item: pytest.Item) -> bool:
    kinds = list(item.callspec.params.values()) if hasattr(item, "callspec") else []
    return any(isinstance(k, str) and k in OMITTED_KINDS for k in kinds)


def _full_only(item: pytest.Item) -> bool:
    """Does the quick profile leave this test out?"""
    kinds = list(item.callspec.params.values()) if hasattr(item, "callspec") else []
    folder = item.path.parent.name
    texts = [k for k in kinds if isinstance(k, str)]
    return (
        folder in FULL_ONLY_DIRS
        or any(k in FULL_ONLY_KINDS for k in texts)
        or any((folder, k) in FULL_ONLY_PAIRS for k in texts)
    )


def _sized(item: pytest.Item) -> bool:
    """Does this test do more under the full profile than under the quick one?

    Hypothesis tests and the state machines (more examples), and the tests marked
    ``sized`` (their modules read ``full_profile()`` for their sizes).
    """
    return (
        item.path.parent.name == "property"
        or item.get_closest_marker("sized") is not None
        or is_hypothesis_test(getattr(item, "obj", None))
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    chosen = chosen_profile()
    omitted = [item for item in items if OMITTED_KINDS and _omitted(item)]
    if omitted:
        config.hook.pytest_deselected(items=omitted)
        items[:] = [item for item in items if not _omitted(item)]
    if chosen == "full":
        return
    if chosen == "quick":
        keep = [item for item in items if not _full_only(item)]
    else:  # rest: what a quick run did not already run as full would
        keep = [item for item in items if _full_only(item) or _sized(item)]
    kept = set(keep)
    drop = [item for item in items if item not in kept]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--redis-url",
        default=os.environ.get("REDIS_URL", DEFAULT_URL),
        help="Redis server for the 'real' half of the tests (its db is flushed)",
    )


def real_client(config: pytest.Config, decode: bool = False) -> redis.Redis:
    """A client of the real server, flushed; skips (or fails in CI) if none answers."""
    url = config.getoption("--redis-url")
    client = redis.Redis.from_url(url, decode_responses=decode, socket_timeout=10)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        if os.environ.get("REDIS_REQUIRED") == "1":
            pytest.fail(f"REDIS_REQUIRED=1 but no Redis answers at {url}: {exc}")
        pytest.skip(f"no Redis server at {url}")
    client.flushdb()
    # The drivers read the eviction policy before their first request (io/policy.py):
    # read it here, so that no test's round-trip count depends on running first.
    if not policy.known(policy.server_of(client)):
        policy.note(policy.server_of(client), client.info("memory"))
    return client


def make_client(request: pytest.FixtureRequest, kind: str) -> Iterator[Any]:
    """A flushed sync client of ``kind``; for the ``-async`` kinds the test's sync API
    calls run through the async twins meanwhile (tests/asyncmode.py). The ``-cluster``
    kinds are a slot-checking fakeredis or the real cluster (tests/cluster.py)."""
    decode = kind.endswith("-str")
    if kind.startswith("fake-cluster"):
        client = slot_checked()
    elif kind.startswith("real-cluster"):
        client = real_cluster()
    elif kind.startswith("fake"):
        client = fakeredis.FakeRedis(decode_responses=decode)
    else:
        client = real_client(request.config, decode)
    try:
        if kind.endswith("-async"):
            with async_api(request.getfixturevalue("monkeypatch")):
                yield client
        else:
            yield client
    finally:
        if kind.startswith("real-cluster"):
            client.flushall()
        elif not kind.startswith("fake"):
            client.flushdb()
        client.close()


CLIENT_KINDS = [
    pytest.param("fake", marks=pytest.mark.fake),
    pytest.param("fake-str", marks=pytest.mark.fake),
    pytest.param("fake-async", marks=[pytest.mark.fake, pytest.mark.asyncapi]),
    pytest.param("real", marks=pytest.mark.real),
    pytest.param("real-str", marks=pytest.mark.real),
    pytest.param("real-async", marks=[pytest.mark.real, pytest.mark.asyncapi]),
]
BACKEND_KINDS = [
    pytest.param("fake", marks=pytest.mark.fake),
    pytest.param("fake-async", marks=[pytest.mark.fake, pytest.mark.asyncapi]),
    pytest.param("real", marks=pytest.mark.real),
    pytest.param("real-async", marks=[pytest.mark.real, pytest.mark.asyncapi]),
]


CLUSTER_KINDS = [
    pytest.param("fake-cluster", marks=pytest.mark.fake),
    pytest.param("fake-cluster-async", marks=[pytest.mark.fake, pytest.mark.asyncapi]),
    pytest.param("real-cluster", marks=[pytest.mark.real, pytest.mark.cluster]),
    pytest.param("real-cluster-async", marks=[pytest.mark.real, pytest.mark.cluster, pytest.mark.asyncapi]),
]


#: the sync cluster kinds: the cluster property machines run on these (their async runs
#: would double CI's longest tests; tests/integration/test_cluster.py covers async)
SYNC_CLUSTER_KINDS = [p for p in CLUSTER_KINDS if not str(p.values[0]).endswith("-async")]


@pytest.fixture(params=SYNC_CLUSTER_KINDS)
def sync_cluster(request: pytest.FixtureRequest) -> Iterator[Any]:
    """``cluster``, sync API only (fakeredis slot checker or the real cluster)."""
    yield from make_client(request, request.param)


@pytest.fixture(params=CLUSTER_KINDS)
def cluster(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A cluster client, flushed: fakeredis checking every call's slots, or the real
    Redis Cluster; sync, or with the sync API served by the async twins."""
    yield from make_client(request, request.param)


@pytest.fixture(params=CLIENT_KINDS)
def client(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A flushed Redis client: fakeredis or the real server, bytes or str replies, or
    bytes replies with every sync API call served by its async twin."""
    yield from make_client(request, request.param)


@pytest.fixture(params=BACKEND_KINDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Like ``client`` but bytes replies only: for the slower tests."""
    yield from make_client(request, request.param)


LAYOUTS = {
    "simple": SimpleRedisModel,
    "hash": HashRedisModel,
    "distributed": DistributedRedisModel,
    "distributed_hash": DistributedHashRedisModel,
}


@pytest.fixture(params=list(LAYOUTS))
def layout(request: pytest.FixtureRequest) -> type:
    """The ready-made model class of each layout (subclass it in the test)."""
    return LAYOUTS[request.param]
