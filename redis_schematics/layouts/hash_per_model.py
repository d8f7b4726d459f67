"""HashPerModelLayout (Hash): one hash ``Prefix`` whose fields ``Prefix:pk`` hold payloads.

The hash is ``KeySpace.model_hash()``: ``Prefix``, or the name a 0.3.x ``__set_key__``
gives (``settings.py`` reads it), with the same fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from redis_schematics.io import Command, Flow, Scan
from redis_schematics.layouts.base import DocumentLayout
from redis_schematics.ops import Guard, Op
from redis_schematics.util import text


@dataclass(frozen=True)
class HashPerModelLayout(DocumentLayout):
    """Every object of the model is a field of one hash.

    Read: one HGET (HMGET for many). Write: one HSET. Redis can only expire the hash as
    a whole, so per-object expiry is kept by the members set (see docs/layouts.md);
    the hash lives as long as its newest object.
    """

    name: ClassVar[str] = "hash"
    ttl_scope: ClassVar[str] = "model"

    def read(self, pks: Sequence[str], fields: Sequence[str] | None = None) -> Command:
        # One JSON document per object: a partial read still fetches it whole.
        return Command(("HMGET", self.keys.model_hash(), *[self.keys.object(pk) for pk in pks]))

    def guard(self, pk: str, expected: Any, fields: Sequence[str] | None = None) -> Guard:
        return Guard("hget", self.keys.model_hash(), self.keys.object(pk), expected)

    def put_ops(self, pk: str, payload: Any, ttl_ms: int | None) -> list[Op]:
        ops: list[Op] = [("HSET", self.keys.model_hash(), (self.keys.object(pk), payload))]
        if ttl_ms is not None:
            ops.append(("EXTEND", self.keys.model_hash(), (ttl_ms,)))
        return ops

    def delete_ops(self, pk: str) -> list[Op]:
        return [("HDEL", self.keys.model_hash(), (self.keys.object(pk),))]

    def legacy_objects(self) -> Flow[bool]:
        # 0.3.x wrote every object into the one untagged hash
        if self.keys.tagged:
            return False
        return bool((yield Command(("EXISTS", self.keys.model_hash()))))

    def stored_pks(self, batch: int) -> Flow[list[str]]:
        # HSCAN NOVALUES needs Redis 7.4; payloads come along and are dropped here.
        scan = Scan("HSCAN", self.keys.model_hash(), match=self.keys.object_pattern(), count=batch)
        pairs = yield from scan.items()
        return [self.keys.pk_from_object(text(field)) for field, _payload in pairs]
