"""Records: the boundary between model instances, primitive dicts and stored payloads.

One :class:`Records` per model class (built from its :class:`~redis_schematics.settings.
Settings` and layout) knows the pk policy, validates objects about to be written, turns
payloads into instances (hydration) and instances into payloads, resolves partial reads
(projections) and computes the index entries an object implies. It does no I/O.

Letters in ``Complexity:`` sections: N = objects of the model, M = matches, K = filters.
"""

from __future__ import annotations

import difflib
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from schematics.exceptions import BaseError
from schematics.types import DateTimeType, DateType, StringType

from redis_schematics import serializers
from redis_schematics.exceptions import (
    CorruptPayload,
    InvalidModel,
    InvalidPrimaryKey,
    PartiallyLoaded,
    UnknownField,
)
from redis_schematics.hydration import Unstorable, dumper_for, loader_for, snapshot, storable_for, value_in
from redis_schematics.indexes import Entry
from redis_schematics.layouts import Fields, Layout
from redis_schematics.settings import Settings
from redis_schematics.util import text
from redis_schematics.validation import compile_validator

#: the instance attribute naming the fields an ``only=`` read loaded (absent: all of them)
LOADED = "_rs_loaded"
#: a key missing from a primitive dict
_ABSENT_KEY = object()


@dataclass(frozen=True)
class Projection:
    """The fields a partial read loads: ``names`` (field names, as marked on the loaded
    objects) and ``primitive``, the stored names read, in the model's field order."""

    names: frozenset[str]
    primitive: tuple[str, ...]


@dataclass(frozen=True)
class Prepared:
    """An object ready to be written: its pk, payload and index entries."""

    pk: str
    payload: Any
    entries: frozenset[Entry]


#: a partial write, given the stored (payload, alive) it applies to: its payload, entries
#: and the fields its guard compares (None: the whole stored payload)
Merge = Callable[[Any, bool], tuple[Any, frozenset[Entry], tuple[str, ...] | None]]


class Records:
    """Instances <-> primitives <-> payloads for one model; no I/O."""

    def __init__(self, settings: Settings, layout: Layout) -> None:
        model = settings.model
        self.settings = settings
        self.layout = layout
        self.name = settings.name
        self.fields = settings.fields
        self.primitive_names = settings.primitive_names
        self.indexes = settings.indexes
        self.indexed_fields = settings.indexed_fields
        self.unique_together = settings.unique_together
        #: primitive dict -> instance, exactly as schematics would build it, but faster
        self.loader = loader_for(model)
        #: instance -> primitive dict, byte-for-byte what to_primitive() gives, but faster
        self.dumper = dumper_for(model)
        #: a fresh primitive dict -> what is stored (years padded; unreadable values refused)
        self.storable = storable_for(model)
        #: obj.validate() for objects that already hold valid native values, much faster;
        #: False (untouched) otherwise, then schematics validates (validation.py)
        self.fast_validate = compile_validator(model)
        self.date_fields = tuple(n for n, f in self.fields.items() if isinstance(f, DateType | DateTimeType))
        #: where the pk is read from a primitive: (primitive name, plain string field?)
        self._pk_sources = tuple(
            (self.primitive_names[n], type(f).to_native is StringType.to_native)
            for n in ("pk", "id")
            if (f := self.fields.get(n)) is not None
        )
        #: partial reads already resolved: (only, also) -> Projection (see ``projection``)
        self._projections: dict[tuple[tuple[str, ...], tuple[str, ...]], Projection | None] = {}
        self._decode = layout.decode

    # -- primary keys -------------------------------------------------------------------
    def pk_text(self, name: str, value: Any) -> str:
        """A field value as it appears in a pk (its primitive, as text)."""
        if isinstance(value, str):
            return value
        return str(self.fields[name].to_primitive(value))

    def pk_of(self, obj: Any) -> str | None:
        """The pk of ``obj``: from ``pk``, else ``id``, else ``__unique_together__``."""
        for name in ("pk", "id"):
            if name in self.fields:
                value = getattr(obj, name, None)
                if value is not None and value != "":
                    return self.pk_text(name, value)
        if self.unique_together:
            values = [getattr(obj, name, None) for name in self.unique_together]
            if all(v is not None and v != "" for v in values):
                return ".".join(self.pk_text(n, v) for n, v in zip(self.unique_together, values, strict=True))
        return None

    def pk_from_conditions(self, eq: dict[str, Any]) -> str | None:
        """The pk that equality filters pin down, if they do (see ``match``)."""
        for name in ("pk", "id"):
            if name in self.fields and eq.get(name) not in (None, ""):
                return self.pk_text(name, eq[name])
        if self.unique_together and all(eq.get(n) not in (None, "") for n in self.unique_together):
            return ".".join(self.pk_text(n, eq[n]) for n in self.unique_together)
        return None

    def check_pk(self, pk: Any) -> str:
        """``pk`` as text; refuses an empty one (no I/O)."""
        if pk is None or (isinstance(pk, str | bytes) and len(pk) == 0):
            msg = f"{self.name}: the primary key is empty; give pk, id or __unique_together__ values."
            raise InvalidPrimaryKey(msg)
        pk_text = text(pk)
        self.refuse_unsendable_pk(pk_text)
        return pk_text

    def refuse_unsendable_pk(self, pk: str) -> None:
        """Refuse a pk that holds a lone surrogate (no UTF-8 encoding, so no key name); no I/O.

        Raises:
            InvalidPrimaryKey: naming the pk and the character.
        """
        at = serializers.lone_surrogate(pk)
        if at is not None:
            msg = (
                f"{self.name}: the primary key {pk!r:.80} holds a lone surrogate ({pk[at]!r} at "
                f"position {at}), which a Redis key cannot hold (keys are UTF-8); use text of "
                "whole Unicode characters."
            )
            raise InvalidPrimaryKey(msg)

    def pk_of_stored(self, obj: Any) -> str:
        """The pk of an object to delete or refresh (it must have one)."""
        return self.check_pk(self.pk_of(obj))

    # -- payloads -> instances ------------------------------------------------------------
    def primitive(self, pk: str, payload: Any, fields: Sequence[str] | None = None) -> dict[str, Any]:
        """The primitive dict of a stored payload.

        Raises:
            CorruptPayload: it cannot be read, or is not an object.
        """
        try:
            data = self._decode(payload, fields)
        except Exception as exc:
            why = f"cannot be read ({exc})"
            raise self.corrupt(pk, why) from exc
        if not isinstance(data, dict):
            raise self.corrupt(pk, f"is a {type(data).__name__}, not an object")
        return data

    def corrupt(self, pk: str, why: str) -> CorruptPayload:
        """The error for the payload of ``pk`` that ``why`` describes."""
        key = self.layout.object_key(pk)
        msg = f"{self.name} object {pk!r} ({key!r}): the stored payload {why}; rewrite or delete it."
        return CorruptPayload(msg, key=key)

    def hydrate(self, pk: str, payload: Any, only: Projection | None = None) -> Any:
        """Build a model instance from a stored payload (of a partial read: ``only``).

        Raises:
            CorruptPayload: the payload is not data of this model; names the key.

        Complexity: O(F) for F fields, no I/O.
        """
        data = self.primitive(pk, payload, None if only is None else only.primitive)
        try:
            obj = self.loader(data)
        except BaseError as exc:
            raise self.corrupt(pk, f"does not fit the model ({exc})") from exc
        claimed = self._stored_pk(data, obj)
        if claimed is not None and claimed != pk:
            # Loading it would make a later set()/delete() act on the object it names.
            raise self.corrupt(pk, f"says its pk is {claimed!r}")
        if only is not None:
            setattr(obj, LOADED, only.names)
        return obj

    def _stored_pk(self, data: dict[str, Any], obj: Any) -> str | None:
        """``pk_of(obj)``, read straight from the primitive ``data`` in the usual case (a
        plain string field ``pk`` or ``id``), which is much cheaper."""
        for primitive_name, plain in self._pk_sources:
            raw = data.get(primitive_name, _ABSENT_KEY)
            if raw is None:
                continue  # as pk_of: the next source
            if not (plain and type(raw) is str):
                break  # the default of a missing key, or a value to convert: ask pk_of
            if raw:
                return raw
        else:
            if not self.unique_together:
                return None
        return self.pk_of(obj)

    # -- index entries --------------------------------------------------------------------
    def entries(self, pk: str, values: dict[str, Any]) -> frozenset[Entry]:
        """Every index entry of an object whose indexed fields hold ``values``."""
        out: list[Entry] = []
        for index in self.indexes:
            out += index.entries(pk, values.get(index.field))
        return frozenset(out)

    def indexed_values(self, data: dict[str, Any]) -> dict[str, Any]:
        """The normalized native values of the indexed fields of a primitive dict."""
        values = {}
        for name in self.indexed_fields:
            raw = data.get(self.primitive_names[name])
            values[name] = None if raw is None else serializers.normalize(self.fields[name].to_native(raw))
        return values

    def stored_entries(self, pk: str, payload: Any) -> frozenset[Entry]:
        """Index entries implied by a stored payload (best effort when it is corrupt)."""
        if payload is None:
            return frozenset()
        try:
            return self.entries(pk, self.indexed_values(self.primitive(pk, payload)))
        except (CorruptPayload, BaseError, TypeError, ValueError, InvalidModel):
            # Unreadable: only entries found by pk alone can be removed (a range ZREM).
            return frozenset(e for index in self.indexes for e in index.entries_of_pk(pk))

    # -- instances -> payloads --------------------------------------------------------------
    def prepare(self, obj: Any, names: tuple[str, ...] | None = None) -> Prepared:
        """Validate ``obj``, settle its pk and build what it should be stored as.

        ``names``: a partial write of just these fields (``set(only=...)``): only they
        are validated (a field it does not write, maybe not even loaded, is not looked at).

        Raises:
            InvalidModel, InvalidPrimaryKey: before anything is written.
        """
        model: Any = self.settings.model
        if not isinstance(obj, model):
            msg = (
                f"{self.name} can only store {self.name} instances, not {type(obj).__name__} "
                f"({obj!r:.60}); build one with {self.name}(data)."
            )
            raise InvalidModel(msg)
        pk = self.pk_of(obj)
        if pk is None:
            pk = uuid.uuid4().hex
        self.refuse_unsendable_pk(pk)
        if "pk" in self.fields and getattr(obj, "pk", None) != pk:
            obj.pk = pk
        if names is not None:
            self._validate_fields(pk, obj, names)
        elif self.fast_validate is None or not self.fast_validate(obj):
            self._validate(pk, obj)
        held = snapshot(obj)
        self._refuse_outside_utc(pk, held)
        primitive = self.dump(pk, obj)
        values = {n: serializers.normalize(value_in(held, n)) for n in self.indexed_fields}
        payload = self.layout.encode(primitive)
        self._refuse_unencodable(pk, payload, primitive, values)
        return Prepared(pk, payload, self.entries(pk, values))

    def dump(self, pk: str, obj: Any) -> dict[str, Any]:
        """The primitive dict to store for ``obj``: ``to_primitive()``, with years below
        1000 padded to four digits. No I/O.

        Raises:
            InvalidModel: a value schematics writes in a form it cannot read back (a
                datetime whose UTC offset has seconds, a NaN Decimal), nested ones too.
        """
        try:
            return self.storable(self.dumper(obj))
        except Unstorable as exc:
            msg = (
                f"{self.name} {pk!r}: {exc.where} = {exc.value!r:.60} cannot be stored: "
                f"{exc.why}; nothing was written. Store {exc.allowed}."
            )
            raise InvalidModel(msg, {exc.where: exc.why}) from exc

    def _refuse_unencodable(self, pk: str, payload: Any, primitive: Any, values: dict[str, Any]) -> None:
        """Refuse an object holding a lone surrogate (text with no UTF-8 encoding, which
        redis-py cannot send): in the payload, or in a value an index key is made of."""
        texts: Iterable[Any] = payload.values.values() if isinstance(payload, Fields) else (payload,)
        bad = any(type(t) is str and serializers.lone_surrogate(t) is not None for t in texts)
        if not bad:  # a serializer may escape it (ensure_ascii); index keys hold it raw
            bad = any(serializers.lone_surrogate(t) is not None for t in _strings(values))
        if not bad:
            return
        where, value = next(
            ((w, v) for w, v in _walk(primitive) if serializers.lone_surrogate(v) is not None),
            ("?", ""),
        )
        at = serializers.lone_surrogate(value) or 0
        msg = (
            f"{self.name} {pk!r}: {where} = {value!r:.60} holds a lone surrogate "
            f"({value[at : at + 1]!r} at position {at}), which cannot be stored (Redis gets "
            "UTF-8); nothing was written. Store text of whole Unicode characters."
        )
        raise InvalidModel(msg, {where: "lone surrogate"})

    def _validate(self, pk: str, obj: Any) -> None:
        """``obj.validate()``, its errors as InvalidModel (nothing written yet)."""
        before = snapshot(obj)  # validate() may drop values it crashes on
        try:
            obj.validate()
        except BaseError as exc:
            errors = exc.to_primitive() if hasattr(exc, "to_primitive") else str(exc)
            msg = f"{self.name} {pk!r} is not valid, nothing was written: {errors}"
            raise InvalidModel(msg, errors) from exc
        except (TypeError, ValueError, AttributeError, ArithmeticError) as exc:
            # schematics' own validators crash on some values (True in a UUIDType, an int
            # too large for a FloatType) instead of reporting them
            raise self._crashed_validation(pk, before, exc) from exc

    def _crashed_validation(self, pk: str, held: dict[str, Any], exc: Exception) -> InvalidModel:
        """InvalidModel naming the field whose value (in ``held``, the object's data
        before validation) made schematics' validation raise ``exc``, found by validating
        each field alone."""
        for name, kind in self.fields.items():
            value = value_in(held, name)
            try:
                kind.validate(value)
            except BaseError:
                continue  # reported as usual if it were the only problem
            except Exception as culprit:  # any crash names its field
                problem = f"{type(culprit).__name__}: {culprit}"
                msg = (
                    f"{self.name} {pk!r} is not valid, nothing was written: {name} = {value!r:.60} "
                    f"cannot be validated by {type(kind).__name__} ({problem})."
                )
                return InvalidModel(msg, {name: problem})
        msg = f"{self.name} {pk!r} is not valid, nothing was written: {type(exc).__name__}: {exc}"
        return InvalidModel(msg, str(exc))

    def _validate_fields(self, pk: str, obj: Any, names: tuple[str, ...]) -> None:
        """Validate just the fields ``names`` of ``obj`` (a partial write), as
        ``validate()`` would (required, conversion, the field's validators), keeping the
        converted values. A written field with a model-level ``validate_<field>`` method
        makes it ``obj.validate(partial=True)`` (which needs the whole data).

        Raises:
            InvalidModel: naming the fields and schematics' messages; nothing written.
        """
        schema: Any = self.settings.model._schema  # type: ignore[attr-defined]
        if any(n in schema.validators for n in names):
            before = snapshot(obj)
            try:
                obj.validate(partial=True)
            except BaseError as exc:
                found = exc.to_primitive() if hasattr(exc, "to_primitive") else str(exc)
                msg = f"{self.name} {pk!r} is not valid, nothing was written: {found}"
                raise InvalidModel(msg, found) from exc
            except (TypeError, ValueError, AttributeError, ArithmeticError) as exc:
                raise self._crashed_validation(pk, before, exc) from exc
            return
        errors: dict[str, Any] = {}
        converted: dict[str, Any] = {}
        for name in names:
            kind = self.fields[name]
            value = getattr(obj, name, None)
            if value is None:
                if kind.required:
                    errors[name] = ["This field is required."]
                continue
            try:
                converted[name] = kind.validate(value)
            except BaseError as exc:
                errors[name] = exc.to_primitive() if hasattr(exc, "to_primitive") else str(exc)
            except (TypeError, ValueError, AttributeError, ArithmeticError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
                msg = (
                    f"{self.name} {pk!r} is not valid, nothing was written: {name} = {value!r:.60} "
                    f"cannot be validated by {type(kind).__name__} ({problem})."
                )
                raise InvalidModel(msg, {name: problem}) from exc
        if errors:
            msg = f"{self.name} {pk!r} is not valid, nothing was written: {errors}"
            raise InvalidModel(msg, errors)
        for name, value in converted.items():
            setattr(obj, name, value)

    def _refuse_outside_utc(self, pk: str, held: dict[str, Any]) -> None:
        """Refuse datetimes that could be stored but never compared: past year 9999 (or
        before year 1) once converted to UTC."""
        for name in self.date_fields:
            value = value_in(held, name)
            try:
                serializers.normalize(value)
            except OverflowError as exc:  # e.g. 9999-12-31T23:00-08:00 is past 9999 in UTC
                msg = (
                    f"{self.name} {pk!r}: {name} = {value!r} is outside the datetime range once "
                    "converted to UTC, so it cannot be compared; nothing was written."
                )
                raise InvalidModel(msg, {name: "outside the UTC datetime range"}) from exc

    # -- partial writes: obj.set(only=[...]) ----------------------------------------------
    def field_names(self, only: Iterable[str], method: str = "set(only=...)") -> tuple[str, ...]:
        """Check the field names of ``set(only=...)`` (or of the read ``method``).

        Raises:
            UnknownField: a name is not a field of the model.
        """
        names = (only,) if isinstance(only, str) else tuple(only)
        for name in names:
            if not isinstance(name, str) or name not in self.fields:
                close = difflib.get_close_matches(str(name), list(self.fields), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                msg = f"{self.name}.{method}: no field {name!r}{hint} Fields: {', '.join(self.fields)}."
                raise UnknownField(msg)
        return names

    def refuse_unloaded(self, obj: Any, names: tuple[str, ...] | None) -> None:
        """Refuse a write of fields an ``only=`` read did not load (it would store their
        defaults over the stored values).

        Raises:
            PartiallyLoaded: naming the fields it did not load.
        """
        loaded = getattr(obj, LOADED, None)
        if loaded is None:
            return
        missing = tuple(n for n in (self.fields if names is None else names) if n not in loaded)
        if not missing:
            return
        pk = self.pk_of(obj)
        shown = ", ".join(sorted(loaded))
        call = "set()" if names is None else f"set(only={list(names)!r})"
        msg = (
            f"{self.name} object {pk!r} was read with only=[{shown}]; {call} would store "
            f"{', '.join(missing)} without having loaded them, over the stored values. "
            f"Write just the loaded fields (set(only=[...])), or refresh() the object first."
        )
        raise PartiallyLoaded(msg, missing)

    def merger(self, prepared: Prepared, obj: Any, names: tuple[str, ...]) -> Merge:
        """How the write of just the fields ``names`` of ``obj`` (whose whole write is
        ``prepared``) applies to what is stored.

        The stored object keeps its other fields: a layout that ``writes_fields`` writes
        just those; the others rewrite the stored document with those fields replaced.
        Only the index entries of those fields change. An object not stored (or expired,
        or unreadable) is written whole, unless ``obj`` was read with ``only=``: then
        the merge raises PartiallyLoaded (it would store fields it never loaded).
        """
        written = [self.primitive_names[n] for n in names]
        primitive = self.dump(prepared.pk, obj)
        new_values = {
            n: serializers.normalize(getattr(obj, n, None)) for n in self.indexed_fields if n in names
        }
        whole = (prepared.payload, prepared.entries, None)
        pk = prepared.pk
        loaded = getattr(obj, LOADED, None)

        def write_whole(why: str) -> tuple[Any, frozenset[Entry], tuple[str, ...] | None]:
            if loaded is None:
                return whole
            # Read with only=: the whole write would store the fields it never loaded
            # (their defaults, never validated), so it is refused like set() would be.
            missing = tuple(n for n in self.fields if n not in loaded)
            msg = (
                f"{self.name} object {pk!r} was read with only=[{', '.join(sorted(loaded))}] and "
                f"{why}, so set(only={list(names)!r}) would store {', '.join(missing)} without "
                "having loaded them; nothing was written. Write a whole object instead."
            )
            raise PartiallyLoaded(msg, missing)

        def merge(expected: Any, alive: bool) -> tuple[Any, frozenset[Entry], tuple[str, ...] | None]:
            if expected is None or not alive:
                return write_whole("is no longer stored (deleted or expired since)")
            try:
                stored = self.primitive(pk, expected)
                values = self.indexed_values(stored)
            except (CorruptPayload, BaseError, TypeError, ValueError):
                return write_whole("its stored payload cannot be read")
            merged = {k: primitive.get(k) if k in written else v for k, v in stored.items()}
            merged.update((k, primitive[k]) for k in written if k in primitive)
            for k in written:
                if k not in primitive:  # serialize_when_none=False and None: the key goes
                    merged.pop(k, None)
            if not merged:
                return whole
            values.update(new_values)
            entries = self.entries(pk, values)
            if self.layout.writes_fields:
                # writers of other fields of the object never make this write retry
                return self.layout.partial(prepared.payload, written), entries, tuple(written)
            return self.layout.encode(merged), entries, None

        return merge

    # -- partial reads: match_for_pk(pk, only=[...]), query().only(...) ------------------
    def projection(
        self, only: Iterable[str], also: Iterable[str] = (), method: str = "only"
    ) -> Projection | None:
        """What a read of just the fields ``only`` loads: those, the fields ``also``
        names (a query's filtered and ordered fields) and the fields the pk comes from
        (``pk``, ``id``, ``__unique_together__``), so a loaded object knows its pk.
        None when that is every field (a whole read).

        Raises:
            UnknownField: a name is not a field of the model.
        """
        key = ((only,) if isinstance(only, str) else tuple(only), tuple(also))
        if key in self._projections:
            return self._projections[key]
        wanted = [*self.field_names(key[0], method), *key[1]]
        wanted += [n for n in ("pk", "id") if n in self.fields] + list(self.unique_together)
        names = frozenset(wanted)
        result = None
        if names and names != frozenset(self.fields):
            ordered = tuple(n for n in self.fields if n in names)  # the model's field order
            result = Projection(names, tuple(self.primitive_names[n] for n in ordered))
        if len(self._projections) < 256:  # a few shapes per model in practice
            self._projections[key] = result
        return result


def _strings(values: dict[str, Any]) -> Iterable[str]:
    """The texts among indexed values (a list field's items too)."""
    for value in values.values():
        if type(value) is str:
            yield value
        elif isinstance(value, list | tuple | set | frozenset):
            yield from (v for v in value if type(v) is str)


def _walk(value: Any, where: str = "") -> Iterable[tuple[str, str]]:
    """(path, text) of every string in a primitive, dict keys included."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            if isinstance(key, str):
                yield path, key
            yield from _walk(item, path)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _walk(item, f"{where}[{i}]")
