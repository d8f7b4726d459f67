"""Fast model construction from data the library stored itself.

``Model(raw)`` runs schematics' generic import loop: a context object, a converter
object and several method calls per field, about 20x the cost of ``json.loads``. Stored
payloads were validated when they were written, so most fields only need their primitive
turned back into a native value. :func:`compile_loader` builds, once per model class, a
function that does exactly that for the common field types and gives the instance the
same internal state schematics would (``_data.converted`` holding every field).

A key missing from the data (old data, a partial read) gets the field's default,
converted, as schematics gives it. Anything it does not know — a field type or option
that changes conversion, a ``Serializable``, a value of an unexpected type — goes to the
field's own ``convert`` or to the slow path for the whole object, so the result is
always what ``Model(raw, strict=False)`` gives: same values, same types, same
``to_primitive()``, same validation behaviour. ``tests/unit/test_hydration.py`` proves it
on generated models and values.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from schematics.exceptions import BaseError
from schematics.models import ModelDict
from schematics.transforms import DEFAULT
from schematics.types import (
    BaseType,
    BooleanType,
    DateTimeType,
    DateType,
    DecimalType,
    NumberType,
    StringType,
    UUIDType,
)
from schematics.types.compound import DictType, ListType, ModelType
from schematics.undefined import Undefined

Converter = Callable[[Any], Any]
Loader = Callable[[dict[str, Any]], Any]

_MISSING = object()


class _Fallback(Exception):
    """The fast path cannot build this object exactly; use schematics."""

    @classmethod
    def now(cls) -> Any:
        raise cls


def _same(cls: type, base: type, name: str) -> bool:
    return getattr(cls, name) is getattr(base, name)


def _naive_iso(value: str) -> bool:
    # "YYYY-MM-DDTHH:MM:SS.ffffff": what DateTimeType.to_primitive writes for naive values
    return len(value) == 26 and value[10] == "T" and value[19] == "." and value[20:].isdigit()


def _datetime_converter(slow: Converter) -> Converter:
    """``DateTimeType.convert`` for what its ``to_primitive`` writes: naive
    ``YYYY-MM-DDTHH:MM:SS.ffffff``, or that plus ``+HHMM``/``-HHMM``, which gets the very
    tzinfo objects schematics gives (its UTC singleton, or an ``offset_timezone``)."""
    parse, utc, offset = dt.datetime.fromisoformat, DateTimeType.UTC, DateTimeType.offset_timezone

    def convert(v: Any) -> Any:
        if type(v) is not str:
            return slow(v)
        if len(v) == 26 and _naive_iso(v):
            return parse(v)
        if len(v) == 31 and v[26] in "+-" and v[27:].isdigit() and _naive_iso(v[:26]):
            minutes = int(v[27:29]) * 60 + int(v[29:])
            tz = utc if minutes == 0 else offset(minutes=-minutes if v[26] == "-" else minutes)
            n = parse(v[:26])  # (datetime.replace is several times slower than this)
            return dt.datetime(n.year, n.month, n.day, n.hour, n.minute, n.second, n.microsecond, tz)
        return slow(v)

    return convert


def compile_field(field: BaseType) -> Converter | None:
    """A primitive -> native converter equal to ``field.convert``, or None if unknown."""
    cls = type(field)
    slow = field.convert
    if not _same(cls, BaseType, "convert") and not isinstance(field, ListType | DictType):
        return None
    if isinstance(field, StringType) and _same(cls, StringType, "to_native"):
        return lambda v: v if type(v) is str else slow(v)
    if isinstance(field, NumberType) and _same(cls, NumberType, "to_native"):
        native = field.native_type
        if native not in (int, float):
            return None
        return lambda v: v if type(v) is native else slow(v)
    if isinstance(field, BooleanType) and _same(cls, BooleanType, "to_native"):
        return lambda v: v if type(v) is bool else slow(v)
    if isinstance(field, UUIDType) and _same(cls, UUIDType, "to_native"):
        return lambda v: uuid.UUID(v) if type(v) is str else slow(v)
    if isinstance(field, DateTimeType) and _same(cls, DateTimeType, "to_native"):
        plain = (
            not field.formats
            and field.parser is None
            and field.tzd == "allow"
            and not field.convert_tz
            and not field.drop_tzinfo
        )
        return _datetime_converter(slow) if plain else None
    if type(field) is DateType and list(field.formats) == ["%Y-%m-%d"]:
        return lambda v: dt.date.fromisoformat(v) if type(v) is str and len(v) == 10 else slow(v)
    if type(field) is ListType:
        return _list_converter(compile_field(field.field))
    if type(field) is DictType and field.coerce_key is str:
        return _dict_converter(compile_field(field.field))
    return None


def _list_converter(inner: Converter | None) -> Converter | None:
    if inner is None:
        return None

    def convert_list(v: Any) -> Any:
        if type(v) is not list or None in v:
            raise _Fallback
        return [inner(x) for x in v]

    return convert_list


def _dict_converter(inner: Converter | None) -> Converter | None:
    if inner is None:
        return None

    def convert_dict(v: Any) -> Any:
        if type(v) is not dict or None in v.values():
            raise _Fallback
        return {k: inner(x) for k, x in v.items()}

    return convert_dict


def compile_loader(model: type) -> Loader | None:
    """A function ``primitive dict -> instance`` for ``model``, or None if the model has
    a field the fast path cannot handle exactly (then always use schematics)."""
    plan: list[tuple[str, str | None, Converter, BaseType]] = []
    schema: Any = model._schema  # type: ignore[attr-defined]
    for name, field in schema.fields.items():
        if not isinstance(field, BaseType) or getattr(field, "deserialize_from", None):
            return None
        convert = compile_field(field)
        if convert is None:
            return None
        alt = field.serialized_name if field.serialized_name not in (None, name) else None
        plan.append((name, alt, convert, field))

    def convert_all(raw: dict[str, Any]) -> dict[str, Any]:
        converted: dict[str, Any] = {}
        for name, alt, convert, field in plan:
            value = raw.get(name, _MISSING)
            if value is _MISSING and alt is not None:
                value = raw.get(alt, _MISSING)
            if value is _MISSING:
                # as schematics' import loop: the default (called if callable), converted
                value = field.default
                if value is Undefined:
                    value = None
            converted[name] = None if value is None else convert(value)
        return converted

    # The usual case, every key present under the field's own name, in one comprehension;
    # anything else (a missing key, a serialized_name) takes the loop above.
    pairs = tuple((name, convert) for name, alt, convert, _field in plan)
    plain = all(alt is None for _name, alt, _convert, _field in plan)
    new, valid = object.__new__, MappingProxyType

    def load(raw: dict[str, Any]) -> Any:
        if plain:
            try:
                converted = {
                    name: None if (v := raw[name]) is None else convert(v) for name, convert in pairs
                }
            except KeyError:
                converted = convert_all(raw)
        else:
            converted = convert_all(raw)
        obj: Any = new(model)
        # What Model.__init__ leaves behind: ModelDict(converted=converted), built without
        # its __init__ (a third of the cost of the whole load otherwise).
        data: Any = new(ModelDict)
        data._unsafe, data._converted, data._ModelDict__valid = {}, converted, {}
        data._valid = valid(data._ModelDict__valid)
        data.maps = [data._unsafe, converted, data._valid]
        obj._data = data
        return obj

    return load


def loader_for(model: type) -> Loader:
    """The fastest exact ``primitive dict -> instance`` function for ``model``."""
    fast = compile_loader(model)

    def slow(raw: dict[str, Any]) -> Any:
        return model(raw, strict=False)

    if fast is None:
        return slow

    def load(raw: dict[str, Any]) -> Any:
        try:
            return fast(raw)
        except (_Fallback, BaseError, TypeError, ValueError):
            # anything unusual (or invalid): schematics decides, and raises its own error
            return slow(raw)

    return load


# -- reading an instance's values without its descriptors ---------------------------------
def snapshot(obj: Any) -> dict[str, Any]:
    """Every value ``obj`` holds, as one plain dict (what ``getattr`` finds: ``unsafe``
    first, then ``converted``, then ``valid``). Reading attributes goes through a ChainMap
    each time; this is one merge."""
    data = obj._data
    return {**data._valid, **data._converted, **data._unsafe}


def value_in(values: dict[str, Any], name: str) -> Any:
    """``getattr(obj, name, None)`` from ``snapshot(obj)``."""
    value = values.get(name)
    return None if value is Undefined else value


# -- the other direction: instance -> primitive dict, as Model.to_primitive() --------------


def _export_field(field: BaseType) -> Converter | None:
    """A native -> primitive converter equal to what ``to_primitive()`` does, or None."""
    cls = type(field)
    slow = field.to_primitive
    if getattr(field, "export_level", None) is not None:
        return None
    if isinstance(field, StringType | NumberType | BooleanType) and _same(cls, BaseType, "to_primitive"):
        native = field.native_type
        return lambda v: v if type(v) is native else slow(v)
    if isinstance(field, UUIDType) and _same(cls, UUIDType, "to_primitive"):
        return lambda v: str(v) if type(v) is uuid.UUID else slow(v)
    if isinstance(field, DateTimeType) and _same(cls, DateTimeType, "to_primitive"):
        if field.serialized_format != DateTimeType.SERIALIZED_FORMAT:
            return None
        # strftime("%Y-%m-%dT%H:%M:%S.%f%z") of a naive value, for 4-digit years
        return lambda v: (
            v.isoformat(timespec="microseconds")
            if type(v) is dt.datetime and v.tzinfo is None and v.year >= 1000
            else slow(v)
        )
    if type(field) is DateType and field.serialized_format == "%Y-%m-%d":
        return lambda v: v.isoformat() if type(v) is dt.date and v.year >= 1000 else slow(v)
    if type(field) is ListType:
        inner = _export_field(field.field)
        if inner is None:
            return None
        return lambda v: [inner(x) for x in v] if type(v) is list and None not in v else _Fallback.now()
    return None


def compile_dumper(model: type) -> Callable[[Any], dict[str, Any]] | None:
    """A function ``instance -> primitive dict`` equal to ``instance.to_primitive()``, or
    None when the model has options or fields the fast path does not reproduce."""
    schema: Any = model._schema  # type: ignore[attr-defined]
    options = schema.options
    if options.roles or options.export_order or options.export_level != DEFAULT:
        return None
    plan: list[tuple[str, str, Converter]] = []
    for name, field in schema.fields.items():
        if not isinstance(field, BaseType):
            return None
        convert = _export_field(field)
        if convert is None:
            return None
        plan.append((name, field.serialized_name or name, convert))

    def dump(obj: Any) -> dict[str, Any]:
        values = snapshot(obj)
        out: dict[str, Any] = {}
        for name, key, convert in plan:
            value = values.get(name, _MISSING)
            if value is _MISSING:
                continue  # Undefined: dropped at the default export level
            out[key] = None if value is None else convert(value)
        return out

    return dump


def _slow_dump(obj: Any) -> dict[str, Any]:
    primitive: dict[str, Any] = obj.to_primitive()
    return primitive


def dumper_for(model: type) -> Callable[[Any], dict[str, Any]]:
    """The fastest exact ``instance -> primitive dict`` function for ``model``."""
    fast = compile_dumper(model)
    if fast is None:
        return _slow_dump

    def dump(obj: Any) -> dict[str, Any]:
        try:
            return fast(obj)
        except (_Fallback, BaseError, TypeError, ValueError, AttributeError):
            return _slow_dump(obj)

    return dump


# -- what schematics writes but cannot read back ---------------------------------------------


class Unstorable(ValueError):
    """A value whose primitive schematics writes in a form nothing can read back (or
    compare): ``path`` names where it sits (``field``, ``field[2]``, ``inner.field``)."""

    def __init__(self, value: Any, why: str, allowed: str) -> None:
        super().__init__(why)
        self.value = value
        self.why = why
        self.allowed = allowed
        self.path: list[str] = []

    @property
    def where(self) -> str:
        """The dotted path of the value (``inner.when``, ``tags[0]``)."""
        return "".join(p if p.startswith("[") else f".{p}" for p in self.path).lstrip(".")


def _pad_year(value: str) -> str:
    # strftime("%Y") does not pad years below 1000 on glibc ("5-01-01"); schematics'
    # parsers want four digits, and read "0005-01-01" back as year 5
    head, _sep, rest = value.partition("-")
    return f"{head.zfill(4)}-{rest}" if head.isdigit() and len(head) < 4 else value


def _check_datetime(value: Any) -> Any:
    """A DateTimeType primitive (``%Y-%m-%dT%H:%M:%S.%f%z``), with its year padded; an
    offset with seconds (``-004430``, ``+050000.000123``) is refused."""
    if type(value) is not str or (len(value) in (26, 31) and value[4] == "-" and value[10] == "T"):
        return value  # the usual case: four-digit year, no offset or a whole-minute one
    value = _pad_year(value)
    if len(value) > 31:
        offset = value[26:]
        msg = f"its UTC offset {offset[:3]}:{offset[3:5]}:{offset[5:]} has seconds"
        allowed = (
            "a naive datetime or one whose UTC offset is whole minutes (e.g. value.astimezone(timezone.utc))"
        )
        raise Unstorable(value, msg + ", which schematics writes but cannot read back", allowed)
    return value


def _check_date(value: Any) -> Any:
    if type(value) is not str or (len(value) == 10 and value[4] == "-"):
        return value
    return _pad_year(value)


def _check_decimal(value: Any) -> Any:
    # str(Decimal) spells NaN "NaN", "-NaN", "sNaN" or "sNaN123": any comparison of one
    # raises InvalidOperation (and float() of a signaling one ValueError), so a stored NaN
    # would break every query ordering or comparing the field
    if type(value) is str and "NaN" in value:
        kind = "a signaling NaN" if "sNaN" in value else "a NaN Decimal"
        why = f"{kind} cannot be ordered or compared (Python raises InvalidOperation)"
        raise Unstorable(value, why, "a number, Decimal('Infinity'), Decimal('-Infinity') or None")
    return value


def _checker(field: Any, seen: frozenset[type]) -> Converter | None:
    """A primitive -> primitive function that makes the value of ``field`` storable (pads
    years, refuses what cannot be read back), or None when nothing about it needs that."""
    cls = type(field)
    if isinstance(field, DateTimeType):
        if field.serialized_format != DateTimeType.SERIALIZED_FORMAT or not _same(
            cls, DateTimeType, "to_primitive"
        ):
            return None
        return _check_datetime
    if isinstance(field, DateType):
        if field.serialized_format != DateType.SERIALIZED_FORMAT or not _same(cls, DateType, "to_primitive"):
            return None
        return _check_date
    if isinstance(field, DecimalType):
        return _check_decimal if _same(cls, DecimalType, "to_primitive") else None
    if isinstance(field, ListType):
        item_check = _checker(field.field, seen)
        if item_check is None:
            return None
        inner: Converter = item_check

        def check_list(value: Any) -> Any:
            if type(value) is not list:
                return value
            for i, item in enumerate(value):
                if item is not None:
                    try:
                        value[i] = inner(item)
                    except Unstorable as exc:
                        exc.path.insert(0, f"[{i}]")
                        raise
            return value

        return check_list
    if isinstance(field, DictType):
        value_check = _checker(field.field, seen)
        if value_check is None:
            return None
        inner_value: Converter = value_check

        def check_dict(value: Any) -> Any:
            if type(value) is not dict:
                return value
            for key, item in value.items():
                if item is not None:
                    try:
                        value[key] = inner_value(item)
                    except Unstorable as exc:
                        exc.path.insert(0, f"[{key!r}]")
                        raise
            return value

        return check_dict
    if isinstance(field, ModelType):
        model = field.model_class
        return None if not isinstance(model, type) or model in seen else _model_checker(model, seen)
    return None


def _model_checker(model: type, seen: frozenset[type] = frozenset()) -> Converter | None:
    schema: Any = getattr(model, "_schema", None)
    if schema is None:
        return None
    plan = []
    for name, field in schema.fields.items():
        if isinstance(field, BaseType):
            check = _checker(field, seen | {model})
            if check is not None:
                plan.append((name, field.serialized_name or name, check))
    if not plan:
        return None

    def check_model(primitive: Any) -> Any:
        if type(primitive) is not dict:
            return primitive
        for name, key, check in plan:
            value = primitive.get(key)
            if value is not None:
                try:
                    primitive[key] = check(value)
                except Unstorable as exc:
                    exc.path.insert(0, name)
                    raise
        return primitive

    return check_model


def storable_for(model: type) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A function that takes a fresh ``to_primitive()`` dict of ``model`` (changed in
    place) and returns it as it must be stored: years below 1000 padded to four digits
    (schematics 2.1.1 writes ``"5-01-01"`` and cannot parse it), and refuses with
    :class:`Unstorable` what schematics writes but cannot read back or compare: a datetime
    whose UTC offset has seconds or microseconds, a NaN Decimal (quiet or signaling). Nested models,
    lists and dicts included. Pure CPU: one look at each date or decimal value."""
    check = _model_checker(model)
    if check is None:
        return lambda primitive: primitive
    return check
