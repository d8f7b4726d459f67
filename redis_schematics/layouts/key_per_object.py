"""KeyPerObjectLayout (Simple): one string key ``Prefix:pk`` per object."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from redis_schematics.io import Command, Flow, Scan
from redis_schematics.layouts.base import DocumentLayout
from redis_schematics.ops import Guard, Op
from redis_schematics.util import text


@dataclass(frozen=True)
class KeyPerObjectLayout(DocumentLayout):
    """Each object is a string key holding its payload; TTL per key.

    Read: one GET (MGET for many). Write: one SET. Memory: one key per object.
    """

    name: ClassVar[str] = "simple"
    ttl_scope: ClassVar[str] = "object"

    def read(self, pks: Sequence[str], fields: Sequence[str] | None = None) -> Command:
        # One JSON document per object: a partial read still fetches it whole.
        return Command(("MGET", *[self.keys.object(pk) for pk in pks]))

    def guard(self, pk: str, expected: Any, fields: Sequence[str] | None = None) -> Guard:
        return Guard("get", self.keys.object(pk), "", expected)

    def put_ops(self, pk: str, payload: Any, ttl_ms: int | None) -> list[Op]:
        args = (payload,) if ttl_ms is None else (payload, "PX", ttl_ms)
        return [("SET", self.keys.object(pk), args)]

    def delete_ops(self, pk: str) -> list[Op]:
        return [("DEL", self.keys.object(pk), ())]

    def legacy_objects(self) -> Flow[bool]:
        # 0.3.x wrote untagged "Prefix:pk" strings; the SCAN stops at the first one (it
        # walks the whole keyspace only when there is none, once per model and Redis).
        if self.keys.tagged:
            return False
        scan = Scan("SCAN", match=self.keys.object_pattern(), count=1000, type="string")
        cursor = 0
        while True:
            cursor, page = yield scan.page(cursor)
            if page:
                return True
            if int(cursor) == 0:
                return False

    def stored_pks(self, batch: int) -> Flow[list[str]]:
        # The pattern escapes the prefix and requires the ":" after it, so it can match
        # neither another model's keys nor this model's own "Prefix#..." keys; only
        # strings can be objects of this layout.
        found = yield from Scan("SCAN", match=self.keys.object_pattern(), count=batch, type="string").items()
        return [self.keys.pk_from_object(text(key)) for key in found]
