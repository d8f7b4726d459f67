"""KeyPerObjectLayout (Simple): one string key ``Prefix:pk`` per object."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from redis_schematics.keys import KeySpace
from redis_schematics.layouts.base import Guard, Op
from redis_schematics.util import batched, text


@dataclass(frozen=True)
class KeyPerObjectLayout:
    """Each object is a string key holding its payload; TTL per key.

    Read: one GET (MGET for many). Write: one SET. Memory: one key per object.
    """

    keys: KeySpace
    name: ClassVar[str] = "simple"

    def object_key(self, pk: str) -> str:
        return self.keys.object(pk)

    def read(self, target: Any, pks: Sequence[str], fields: Sequence[str] | None = None) -> Any:
        # One JSON document per object: a partial read still fetches it whole.
        return target.mget([self.keys.object(pk) for pk in pks])

    def guard(self, pk: str, expected: Any) -> Guard:
        return Guard("get", self.keys.object(pk), "", expected)

    def put_ops(self, pk: str, payload: Any, ttl_ms: int | None) -> list[Op]:
        args = (payload,) if ttl_ms is None else (payload, "PX", ttl_ms)
        return [("SET", self.keys.object(pk), args)]

    def delete_ops(self, pk: str) -> list[Op]:
        return [("DEL", self.keys.object(pk), ())]

    def stored_pks(self, client: Any, batch: int) -> Iterator[list[str]]:
        # The pattern escapes the prefix and requires the ":" after it, so it can match
        # neither another model's keys nor this model's own "Prefix#..." keys; only
        # strings can be objects of this layout.
        keys = client.scan_iter(match=self.keys.object_pattern(), count=batch, _type="string")
        yield from batched((self.keys.pk_from_object(text(key)) for key in keys), batch)
