"""HashPerObjectLayout (Distributed): one hash ``Prefix:pk`` per object, a field per model field.

Redis structures, for ``__prefix__ = "IceCream"``::

    hash IceCream:v1   pk -> v1, flavour -> vanilla, amount_kg -> 42, vegan -> true,
                       tags -> ["a","b"], price -> \\0null, ...

plus the members set and index keys every layout keeps (``IceCream#members``,
``IceCream#eq:...``). The hash fields are the primitive names of the model's fields
(``serialized_name`` when set). How a value is written (:class:`FieldCodec`):

* strings and string-like primitives (``StringType`` and its kinds, ``DateTimeType``,
  ``DateType``, ``DecimalType``, ``UUIDType``): the primitive text itself;
* numbers, booleans and untyped fields: their JSON text (``42``, ``1.5``, ``true``);
* ``ListType``, ``DictType``, ``ModelType``: the model's ``__serializer__`` (compact
  JSON unless overridden) of the primitive value;
* ``None``: ``null`` for the JSON kinds; for string fields ``"\\0"`` followed by the
  JSON of the value (``"\\0null"``). A string that itself starts with ``"\\0"`` is
  written the same way, so every stored text reads back to exactly one value;
* a key missing from ``to_primitive()`` (``serialize_when_none=False``): no hash field.

So ``to_primitive()`` of an object read back equals that of the object written, ``None``
and "absent" included, exactly as on the JSON layouts (a field absent from storage loads
its default, a stored ``None`` stays ``None``). Hash fields the model does not know are
ignored when reading. An object must store at least one field (a hash cannot be empty):
one whose primitive is ``{}`` is refused with ``InvalidModel``.

Round trips and complexity (F = fields of the model, P = pks asked for). Round trips
are those of every layout: ``set()`` of a new object 1, of a stored one 2 (the first
write reports the stored state), ``set(only=...)`` 2 (read, write), ``match_for_pk`` 1.

* read (``match_for_pk``, and every load): one ``read_fields.lua`` call, one HGETALL per
  object, O(F) each; P objects in one round trip. A partial read (``only=...``, R
  fields) is an EXISTS and an HMGET of those fields per object, O(R) each.
* whole write (``set``): one ``apply_write.lua`` call: DEL + HSET of the F fields (+
  PEXPIRE when expiring), O(F); its guard compares the object's *state* (every hash
  field and value, sorted by field: what ``read`` returned) with the one the write was
  computed from, so a concurrent writer can never leave a stale index entry.
* partial write (``set(only=["amount_kg"])``): HSET (or HDEL) of those fields only, plus
  only the index entries of those fields, O(len(only)). Its guard checks just those
  fields (HMGET) and that the object exists: writers of other fields of the same object
  do not make it retry. The first write of an object, or of one that expired, is whole.
* delete: DEL, O(F).

TTL: per object, like the Simple layout: each write gives the object's hash the
model's ``__expire__`` (doubled when the model has indexes, so that expired entries can
still be found and removed; visibility follows the deadline in ``Prefix#members``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from schematics.types import (
    BaseType,
    CompoundType,
    DateTimeType,
    DateType,
    DecimalType,
    StringType,
    TimestampType,
    UUIDType,
)

from redis_schematics import serializers
from redis_schematics.exceptions import InvalidModel
from redis_schematics.io import Flow, RunScript, Scan, done
from redis_schematics.keys import KeySpace
from redis_schematics.layouts.base import Fields
from redis_schematics.ops import Guard, Op
from redis_schematics.util import text

#: starts the stored text of a string field whose value is not a plain string (None)
MARK = "\0"
#: field kinds: how a field's primitive value is written (see the module docstring)
TEXT, JSON, COMPOUND = "text", "json", "compound"
#: types whose primitive value is a string (TimestampType, a DateTimeType, is a number)
TEXT_TYPES = (StringType, DateTimeType, DateType, DecimalType, UUIDType)


def field_kind(field: BaseType) -> str:
    """How the values of ``field`` are written: TEXT, JSON or COMPOUND."""
    if isinstance(field, CompoundType):
        return COMPOUND
    if isinstance(field, TEXT_TYPES) and not isinstance(field, TimestampType):
        return TEXT
    return JSON


def cell(value: str | bytes | None) -> bytes:
    """One cell of a state: ``<byte length>:<bytes>``, or ``-`` for no value."""
    if value is None:
        return b"-"
    raw = value.encode("utf-8") if isinstance(value, str) else value
    return b"%d:%s" % (len(raw), raw)


def cells(values: Sequence[str]) -> str:
    """Strings as a list of cells, for a guard's ``field`` (apply_write.lua splits it)."""
    return "".join(f"{len(v.encode('utf-8'))}:{v}" for v in values)


def state_cells(state: Any) -> list[bytes | None]:
    """Split a state from ``read_fields.lua`` into its cells ("-" = None).

    Raises:
        ValueError: ``state`` is not a well-formed state.
    """
    data = state.encode("utf-8") if isinstance(state, str) else bytes(state)
    out: list[bytes | None] = []
    i, n = 0, len(data)
    while i < n:
        if data[i] == 0x2D:  # "-": no value in this column
            out.append(None)
            i += 1
            continue
        colon = data.index(b":", i)
        end = colon + 1 + int(data[i:colon])
        if end > n:
            msg = f"truncated state at byte {i}"
            raise ValueError(msg)
        out.append(data[colon + 1 : end])
        i = end
    return out


@dataclass(frozen=True)
class FieldCodec:
    """Turns a primitive dict into one stored text per field, and back.

    ``names`` are the primitive names (``serialized_name`` or the field name) in the
    model's field order; compound values use the model's ``__serializer__`` /
    ``__deserializer__``.
    """

    model_name: str
    names: tuple[str, ...]
    kinds: Mapping[str, str]
    serializer: Callable[[Any], Any]
    deserializer: Callable[[Any], Any]

    @classmethod
    def for_model(
        cls, model: Any, serializer: Callable[[Any], Any], deserializer: Callable[[Any], Any]
    ) -> FieldCodec:
        kinds = {(f.serialized_name or name): field_kind(f) for name, f in model.fields.items()}
        return cls(model.__name__, tuple(kinds), kinds, serializer, deserializer)

    def encode_value(self, name: str, value: Any) -> str | bytes:
        kind = self.kinds[name]
        if kind == TEXT:
            if isinstance(value, str) and not value.startswith(MARK):
                return value
            return MARK + serializers.dumps(value)
        if kind == COMPOUND:
            dump: str | bytes = self.serializer(value)
            return dump
        return serializers.dumps(value)

    def decode_value(self, name: str, raw: bytes) -> Any:
        kind = self.kinds[name]
        if kind == TEXT:
            value = raw.decode("utf-8")
            return json.loads(value[1:]) if value.startswith(MARK) else value
        if kind == COMPOUND:
            return self.deserializer(raw)
        # json, not a faster parser: one small value, and every integer must stay exact
        return json.loads(raw)

    def encode(self, primitive: Mapping[str, Any]) -> Fields:
        """The whole write of ``primitive``.

        Raises:
            InvalidModel: the primitive has no field to store.
        """
        values: dict[str, str | bytes | None] = {
            name: self.encode_value(name, primitive[name]) for name in self.names if name in primitive
        }
        if not values:
            msg = (
                f"{self.model_name}: the object has no field to store (its to_primitive() is empty); "
                "give it a pk or id field, or a value in one field."
            )
            raise InvalidModel(msg)
        return Fields(values)

    def decode_pairs(self, state: Any) -> dict[str, Any]:
        """The primitive dict of a hash state: (field, value) cells; unknown fields skipped."""
        cells = state_cells(state)
        out: dict[str, Any] = {}
        for j in range(0, len(cells) - 1, 2):
            name, raw = cells[j], cells[j + 1]
            if name is None or raw is None:
                msg = "a hash state has no '-' cell"
                raise ValueError(msg)
            key = name.decode("utf-8")
            if key in self.kinds:
                out[key] = self.decode_value(key, raw)
        return out

    def decode_columns(self, state: Any, names: Sequence[str] | None = None) -> dict[str, Any]:
        """The primitive dict of a columns state: one cell per name of ``names`` (every
        field, by default), in order."""
        names = self.names if names is None else names
        cells = state_cells(state)
        if len(cells) != len(names):
            msg = f"{len(cells)} columns stored, {len(names)} were read"
            raise ValueError(msg)
        return {
            name: self.decode_value(name, raw)
            for name, raw in zip(names, cells, strict=True)
            if raw is not None
        }


def read_states(keys: list[str], args: list[Any]) -> RunScript:
    """A call of ``read_fields.lua`` (see its header for the modes)."""
    return RunScript("read_fields", keys, args)


@dataclass(frozen=True)
class HashPerObjectLayout:
    """Each object is a hash ``Prefix:pk`` with one field per model field; TTL per object."""

    keys: KeySpace
    codec: FieldCodec
    name: ClassVar[str] = "distributed"
    writes_fields: ClassVar[bool] = True
    ttl_scope: ClassVar[str] = "object"

    @classmethod
    def for_model(
        cls, keys: KeySpace, model: Any, serializer: Callable[[Any], Any], deserializer: Callable[[Any], Any]
    ) -> HashPerObjectLayout:
        return cls(keys, FieldCodec.for_model(model, serializer, deserializer))

    def object_key(self, pk: str) -> str:
        return self.keys.object(pk)

    def read(self, pks: Sequence[str], fields: Sequence[str] | None = None) -> RunScript:
        keys = [self.keys.object(pk) for pk in pks]
        if not fields:
            return read_states(keys, ["hash"])
        return read_states(keys, ["fields", *fields])

    def guard(self, pk: str, expected: Any, fields: Sequence[str] | None = None) -> Guard:
        key = self.keys.object(pk)
        if not fields or expected is None:
            return Guard("hash", key, "", expected)
        cut = state_cells(expected)
        stored = {cut[j]: cut[j + 1] for j in range(0, len(cut) - 1, 2)}
        sub = b"".join(cell(stored.get(name.encode("utf-8"))) for name in fields)
        return Guard("hash", key, cells(fields), sub)

    def put_ops(self, pk: str, payload: Fields, ttl_ms: int | None) -> list[Op]:
        key = self.keys.object(pk)
        ops: list[Op] = []
        if not payload.partial:
            ops.append(("DEL", key, ()))  # the new object replaces every stored field
        pairs = [x for name, value in payload.values.items() if value is not None for x in (name, value)]
        if pairs:
            ops.append(("HSET", key, tuple(pairs)))
        gone = tuple(name for name, value in payload.values.items() if value is None)
        if gone and payload.partial:
            ops.append(("HDEL", key, gone))
        if ttl_ms is not None:
            # after DEL the key has no TTL; after a partial write the new deadline is later
            ops.append(("EXTEND", key, (ttl_ms,)))
        return ops

    def delete_ops(self, pk: str) -> list[Op]:
        return [("DEL", self.keys.object(pk), ())]

    def legacy_objects(self) -> Flow[bool]:
        return done(False)  # a layout redis-schematics 0.3.x did not have

    def stored_pks(self, batch: int) -> Flow[list[str]]:
        # Only hashes: the pattern is the Simple layout's, and a model may have moved.
        scan = Scan("SCAN", match=self.keys.object_pattern(), count=batch, type="hash")
        found = yield from scan.items()
        return [self.keys.pk_from_object(text(key)) for key in found]

    def encode(self, primitive: Mapping[str, Any]) -> Fields:
        return self.codec.encode(primitive)

    def decode(self, payload: Any, fields: Sequence[str] | None = None) -> dict[str, Any]:
        if not fields:
            return self.codec.decode_pairs(payload)
        return self.codec.decode_columns(payload, fields)

    def partial(self, payload: Fields, names: Iterable[str]) -> Fields:
        return payload.only(names)

    def meta_keys(self) -> tuple[str, ...]:
        return ()
