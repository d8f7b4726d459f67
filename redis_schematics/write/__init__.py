"""The write unit of work: items, the ``apply_write.lua`` argument contract, entry diffs
and the commit loop with its retries and backoff.

Public to the rest of the library (``transaction``, ``upkeep``, the engine); every
function doing I/O is a flow run by a driver.
"""

from __future__ import annotations

from redis_schematics.write.batch import ABSENT, Batch, build
from redis_schematics.write.commit import MAX_ATTEMPTS, commit, queue, read_state
from redis_schematics.write.items import Item, Owner, diff
from redis_schematics.write.model import CHUNK, ModelWrites

__all__ = [
    "ABSENT",
    "CHUNK",
    "MAX_ATTEMPTS",
    "Batch",
    "Item",
    "ModelWrites",
    "Owner",
    "build",
    "commit",
    "diff",
    "queue",
    "read_state",
]
