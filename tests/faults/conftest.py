"""Fixtures of the fault tests: the real server (``REDIS_URL``) and throwaway servers.

Every test here needs a real Redis: each module is marked ``real`` and skipped when nothing
answers at ``REDIS_URL`` (a failure instead with ``REDIS_REQUIRED=1``, as in CI).
Throwaway servers (tests/faults/servers.py) listen on 127.0.0.1 ports 7100-7199 only.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.conftest import real_client


@pytest.fixture
def upstream(request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    """A flushed bytes client of the real server at REDIS_URL (flushed again after)."""
    client = real_client(request.config)
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def redis_server_binary() -> str:
    """Path of redis-server, for throwaway servers; skip (or fail in CI) without it."""
    found = shutil.which("redis-server")
    if found is None:
        if os.environ.get("REDIS_REQUIRED") == "1":
            pytest.fail("REDIS_REQUIRED=1 but redis-server is not on PATH")
        pytest.skip("redis-server is not installed")
    return found


def connection_kwargs(client: Any) -> dict[str, Any]:
    """host, port and db of a client built from REDIS_URL."""
    kw = client.connection_pool.connection_kwargs
    return {"host": kw.get("host", "127.0.0.1"), "port": kw.get("port", 6379), "db": kw.get("db", 0)}
