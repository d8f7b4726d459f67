"""The one I/O seam: requests (plain data), flows (generators of requests) and the two
drivers that run them, sync and async. Nothing else in the library holds a client."""

from __future__ import annotations

from redis_schematics.io.aio import AsyncDriver
from redis_schematics.io.drivers import (
    Driver,
    async_driver,
    intercept,
    is_async_client,
    is_cluster_client,
    sync_driver,
    treat_as_cluster,
)
from redis_schematics.io.requests import (
    Command,
    Emit,
    Evicting,
    Flow,
    Pipeline,
    Queue,
    Request,
    RunScript,
    Scan,
    Sleep,
    collect,
    done,
    gather,
)
from redis_schematics.io.sync import SyncDriver

__all__ = [
    "AsyncDriver",
    "Command",
    "Driver",
    "Emit",
    "Evicting",
    "Flow",
    "Pipeline",
    "Queue",
    "Request",
    "RunScript",
    "Scan",
    "Sleep",
    "SyncDriver",
    "async_driver",
    "collect",
    "done",
    "gather",
    "intercept",
    "is_async_client",
    "is_cluster_client",
    "sync_driver",
    "treat_as_cluster",
]
