"""HashPerFieldLayout (DistributedHash): a column store, one hash per model field.

Redis structures, for ``__prefix__ = "IceCream"``::

    hash IceCream#col:pk          v1 -> v1, m1 -> m1
    hash IceCream#col:flavour     v1 -> vanilla, m1 -> \\0null
    hash IceCream#col:amount_kg   v1 -> 42, m1 -> null
    ...

plus the members set and index keys every layout keeps (``IceCream#members``,
``IceCream#eq:...``). Column names are the primitive names of the model's fields
(``serialized_name`` when set); they live under ``Prefix#col:`` so that they can be
neither an object key (``Prefix:pk``) nor an index key (``Prefix#eq:``, ``#range:``,
``#unique:``, ``#members``). Values are written as in the Distributed layout (see
:class:`~redis_schematics.layouts.hash_per_object.FieldCodec`): primitive text for
strings, JSON for numbers, booleans, lists, dicts and models, ``None`` stored
explicitly, a key missing from ``to_primitive()`` left out of its column. So
``to_primitive()`` round-trips exactly, ``None`` and "absent" included. An object exists
when at least one column holds its pk.

Round trips and complexity (F = fields of the model, P = pks asked for). Round trips
are those of every layout: ``set()`` of a new object 1, of a stored one 2 (the first
write reports the stored state), ``set(only=...)`` 2 (read, write), ``match_for_pk`` 1.

* read (``match_for_pk``, and every load): one ``read_fields.lua`` call: one HMGET per
  column for all P pks, O(F·P). A partial read (``only=...``, R fields) reads just
  those R columns, O(R·P) (plus an HEXISTS per other column for a pk none of the R
  columns holds, to tell a stored object from a missing one).
* whole write (``set``): one ``apply_write.lua`` call: one HSET (or HDEL) per column,
  O(F); its guard compares the object's *state* (its cell in every column: what
  ``read`` returned) with the one the write was computed from, so a concurrent writer
  can never leave a stale index entry.
* partial write (``set(only=["amount_kg"])``): HSET (or HDEL) in those columns only,
  plus only the index entries of those fields. Its guard compares just those cells (and
  that some column still holds the pk, an HGET per column): writers of other fields do
  not make it retry.
* delete: HDEL in every column, O(F).

TTL: per model, like the Hash layout. Redis can only expire a whole column hash, so every
write makes each column live at least the model's ``__expire__`` more (doubled when the
model has indexes, as on every layout): a column lives as long as its newest object.
Per-object expiry is exact anyway: each object's deadline is kept in the members ZSET,
an object past it is never returned or counted, and its cells are removed with its index
entries by ``purge_expired`` (or lazily, when a query meets it). A partial write also
extends the columns it does not write, which hold the rest of the object.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from redis_schematics.exceptions import ConfigurationError
from redis_schematics.io import Flow, RunScript, Scan, done
from redis_schematics.keys import KeySpace
from redis_schematics.layouts.base import Fields
from redis_schematics.layouts.hash_per_object import FieldCodec, cell, cells, read_states, state_cells
from redis_schematics.ops import Guard, Op
from redis_schematics.util import text, unique


@dataclass(frozen=True)
class HashPerFieldLayout:
    """One hash ``Prefix#col:field`` per model field, mapping pk -> value; TTL per model."""

    keys: KeySpace
    codec: FieldCodec
    #: the column hashes, in the order of ``codec.names``
    columns: tuple[str, ...]
    name: ClassVar[str] = "distributed_hash"
    writes_fields: ClassVar[bool] = True
    ttl_scope: ClassVar[str] = "model"

    @classmethod
    def for_model(
        cls, keys: KeySpace, model: Any, serializer: Callable[[Any], Any], deserializer: Callable[[Any], Any]
    ) -> HashPerFieldLayout:
        codec = FieldCodec.for_model(model, serializer, deserializer)
        if not codec.names:
            msg = f"{model.__name__} has no field; the DistributedHash layout stores one hash per field."
            raise ConfigurationError(msg)
        return cls(keys, codec, tuple(keys.column(name) for name in codec.names))

    def object_key(self, pk: str) -> str:
        # No key holds the object; this names it (in messages and ``obj.key``).
        return self.keys.object(pk)

    def read(self, pks: Sequence[str], fields: Sequence[str] | None = None) -> RunScript:
        if not fields:
            return read_states(list(self.columns), ["cols", len(self.columns), *pks])
        wanted = [self.keys.column(name) for name in fields]
        rest = [column for column in self.columns if column not in wanted]
        return read_states(wanted + rest, ["cols", len(wanted), *pks])

    def guard(self, pk: str, expected: Any, fields: Sequence[str] | None = None) -> Guard:
        if not fields or expected is None:
            return Guard("cols", self.columns[0], cells([pk]), expected, self.columns[1:])
        numbers = [self.codec.names.index(name) + 1 for name in fields]
        cut = state_cells(expected)
        sub = b"".join(cell(cut[n - 1]) for n in numbers)
        return Guard("cols", self.columns[0], cells([pk, *map(str, numbers)]), sub, self.columns[1:])

    def put_ops(self, pk: str, payload: Fields, ttl_ms: int | None) -> list[Op]:
        ops: list[Op] = []
        for name, column in zip(self.codec.names, self.columns, strict=True):
            if payload.partial and name not in payload.values:
                continue
            value = payload.values.get(name)
            ops.append(("HDEL", column, (pk,)) if value is None else ("HSET", column, (pk, value)))
        if ttl_ms is not None:
            # every column, written or not: together they hold the object
            ops += [("EXTEND", column, (ttl_ms,)) for column in self.columns]
        return ops

    def delete_ops(self, pk: str) -> list[Op]:
        return [("HDEL", column, (pk,)) for column in self.columns]

    def legacy_objects(self) -> Flow[bool]:
        return done(False)  # a layout redis-schematics 0.3.x did not have

    def stored_pks(self, batch: int) -> Flow[list[str]]:
        # HSCAN NOVALUES needs Redis 7.4; values come along and are dropped here.
        found: list[str] = []
        for column in self.columns:
            pairs = yield from Scan("HSCAN", column, count=batch).items()
            found += [text(m) for m, _value in pairs]
        return list(unique(found))

    def encode(self, primitive: Mapping[str, Any]) -> Fields:
        return self.codec.encode(primitive)

    def decode(self, payload: Any, fields: Sequence[str] | None = None) -> dict[str, Any]:
        return self.codec.decode_columns(payload, fields or None)

    def partial(self, payload: Fields, names: Iterable[str]) -> Fields:
        return payload.only(names)

    def meta_keys(self) -> tuple[str, ...]:
        return self.columns
