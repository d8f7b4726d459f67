"""Fast validation of model instances whose data is already trivially valid.

``Model.validate()`` (schematics 2.1.1) runs the generic import loop with ``validate=True``
over the instance's data: a context object, ``_mutate`` (serializable setters, then
``raw_data.update(...)`` with every field the instance holds), then, per field,
``check_required``, ``field.validate`` (``convert`` + every validator), the model-level
``validate_<field>`` methods, and finally ``self._data.valid = data`` and
``self._data.converted = {}``. Writing a batch of objects spends most of its time there,
although almost every object already holds native values of the right types.

:func:`compile_validator` looks, once per model class, at what ``validate()`` would do
with such values. It gives up (returns None) unless every step is provably a no-op or a
plain copy for them: ``validate`` / ``_convert`` / ``__iter__`` / ``__getitem__`` not
overridden, no model-level validators, no ``Serializable``, and every field
one of ``StringType``, ``IntType``, ``FloatType``, ``BooleanType``, ``DateTimeType``,
``DateType``, ``UUIDType`` (exactly those classes, not subclasses) or a ``ListType`` /
``DictType`` of them, with no option that validation looks at (``choices``, user
``validators``, lengths, ranges, time zone rules, ...).

The function it returns then checks each object: every value must be of exactly the native
type (``type(v) is int``: a ``bool`` in an ``IntType`` is converted by schematics, so it is
not handled here), ``None`` only where the field is not required, a missing field only
where schematics would simply skip it. Then it leaves the instance as ``validate()`` would,
value for value: ``_data.valid`` a new dict of every field's value (a new list or dict for
``ListType`` / ``DictType``, as schematics copies them), ``_data.converted`` a new empty
dict, and the former ``converted`` dict completed with every field as ``_mutate`` does.
Anything else (a value to convert, an invalid value, lazily imported ``unsafe`` data, an
unusual ``_data``) is refused before anything is changed, and the caller runs
``obj.validate()``. ``tests/unit/test_validation.py`` proves the equivalence on generated
models, options and values.

The plan is read when it is compiled: fields or options changed on a model class after
that are not seen (a field added with ``Model._append_field`` or a new model-level
validator are, and make every object go to schematics).
"""

from __future__ import annotations

import datetime as dt
import inspect
import uuid
from collections.abc import Callable
from types import MappingProxyType, MethodType
from typing import Any, NamedTuple

from schematics.models import FieldDescriptor, Model, ModelDict
from schematics.types import (
    BaseType,
    BooleanType,
    DateTimeType,
    DateType,
    FloatType,
    IntType,
    StringType,
    UUIDType,
)
from schematics.types.compound import DictType, ListType

Check = Callable[[Any], bool]
Convert = Callable[[Any], Any]

_MISSING: Any = object()

#: the native type each scalar field class returns unchanged from ``field.validate``
_SCALARS: dict[type, type] = {
    StringType: str,
    IntType: int,
    FloatType: float,
    BooleanType: bool,
    DateTimeType: dt.datetime,
    DateType: dt.date,
    UUIDType: uuid.UUID,
}

#: instance attributes that change what ``obj.validate()`` does if set on the object itself
_INSTANCE_OVERRIDES = frozenset({"validate", "_convert", "_schema"})


def _known_attributes() -> dict[type, frozenset[str]]:
    """The instance attributes a field of each known class has (after ``_setup``): anything
    else on a field (a method patched onto the instance, say) makes it unknown."""
    samples: list[BaseType] = [cls() for cls in _SCALARS]
    samples += [ListType(IntType()), DictType(IntType())]
    return {type(s): frozenset(vars(s)) | {"_input_keys"} for s in samples}


_ATTRIBUTES = _known_attributes()


class _Refuse(Exception):
    """A container holds an item the fast path does not handle."""


class _Node(NamedTuple):
    """How to check and copy one value of a field."""

    native: type  # the exact type of a value validate() leaves as it is (or copies)
    nullable: bool  # None passes (the field is not required)
    copy: Convert | None  # compound values: the new container validate() builds


class _Field(NamedTuple):
    name: str
    native: type
    nullable: bool
    copy: Convert | None
    may_be_missing: bool  # validate() skips the field when the object has no value for it


def _default_validators(field: BaseType) -> bool:
    """True if the field's validators are its class's own, none added."""
    cls = type(field)
    expected = [getattr(cls, name) for name in cls._validators]
    if cls is ListType:
        expected.append(ListType.check_length)
    actual = field.validators
    return (
        type(actual) is list
        and len(actual) == len(expected)
        and all(
            type(v) is MethodType and v.__self__ is field and v.__func__ is f
            for v, f in zip(actual, expected, strict=True)
        )
    )


def _node(field: Any) -> _Node | None:
    """How ``validation_converter(field, value)`` treats a value, if the fast path knows."""
    cls = type(field)
    attributes = _ATTRIBUTES.get(cls)
    if attributes is None or not attributes.issuperset(vars(field)):
        return None
    if field.choices is not None or not _default_validators(field):
        return None
    nullable = not field.required
    if cls is StringType:
        ok = field.regex is None and field.min_length is None and field.max_length is None
    elif cls is IntType or cls is FloatType:
        ok = field.min_value is None and field.max_value is None
    elif cls is DateTimeType:
        # to_native returns a datetime before looking at formats or parser; validate_tz
        # accepts naive and aware values alike with these three settings
        ok = (
            type(field.tzd) is str and field.tzd == "allow" and not field.convert_tz and not field.drop_tzinfo
        )
    elif cls is ListType:
        inner = _node(field.field) if field.min_size is None and field.max_size is None else None
        return None if inner is None else _Node(list, nullable, _list_copy(inner))
    elif cls is DictType:
        inner = _node(field.field) if field.coerce_key is str else None
        return None if inner is None else _Node(dict, nullable, _dict_copy(inner))
    else:  # BooleanType, DateType, UUIDType: no option changes a native value
        ok = True
    return _Node(_SCALARS[cls], nullable, None) if ok else None


def _list_copy(inner: _Node) -> Convert:
    """``ListType._convert``: a new list, each item as the inner field validates it."""
    native, nullable, copy = inner
    if copy is None:

        def copy_list(value: list[Any]) -> list[Any]:
            for item in value:
                if type(item) is not native and (item is not None or not nullable):
                    raise _Refuse
            return list(value)

        return copy_list

    def copy_nested(value: list[Any]) -> list[Any]:
        out = []
        for item in value:
            if type(item) is native:
                out.append(copy(item))
            elif item is None and nullable:
                out.append(None)
            else:
                raise _Refuse
        return out

    return copy_nested


def _dict_copy(inner: _Node) -> Convert:
    """``DictType._convert``: a new dict (``str`` keys kept), values validated."""
    native, nullable, copy = inner
    if copy is None:

        def copy_dict(value: dict[Any, Any]) -> dict[Any, Any]:
            for key, item in value.items():
                if type(key) is not str or (type(item) is not native and (item is not None or not nullable)):
                    raise _Refuse
            return dict(value)

        return copy_dict

    def copy_nested(value: dict[Any, Any]) -> dict[Any, Any]:
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _Refuse
            if type(item) is native:
                out[key] = copy(item)
            elif item is None and nullable:
                out[key] = None
            else:
                raise _Refuse
        return out

    return copy_nested


def _plain_model(model: Any) -> bool:
    """The model validates through schematics' own code, without model-level validators."""
    if not (isinstance(model, type) and issubclass(model, Model)):
        return False
    for name, base in (
        ("validate", Model),
        ("_convert", Model),
        ("__iter__", Model),
        ("__getitem__", Model),
        ("__getattribute__", object),
    ):
        if getattr(model, name) is not getattr(base, name):
            return False
    if inspect.getattr_static(model, "_data", _MISSING) is not _MISSING:
        return False
    schema: Any = model._schema  # type: ignore[attr-defined]
    return not schema.validators


def compile_validator(model: type) -> Check | None:
    """A fast equivalent of ``obj.validate()`` for the instances of ``model``, or None.

    None: the model can never take the fast path (an overridden ``validate``, a
    ``validate_<field>`` method, a field type or option it does not know); always call
    ``obj.validate()``.

    Otherwise ``check(obj)`` returns True when it validated ``obj`` and left it exactly as
    ``obj.validate()`` would have (do not call ``validate()`` then), and False when it does
    not handle ``obj`` and changed nothing: call ``obj.validate()``, which converts,
    accepts or raises as usual. Only ``validate()`` without arguments is reproduced.
    """
    m: Any = model
    if not _plain_model(m):
        return None
    schema = m._schema
    fields = schema.fields
    validators = schema.validators
    n_fields = len(fields)
    plan: list[_Field] = []
    for name, field in fields.items():
        if isinstance(field, BaseType):
            node = _node(field)
            descriptor = inspect.getattr_static(m, name, None)
            if node is None or type(descriptor) is not FieldDescriptor or descriptor.name != name:
                return None
            # a missing value is looked up under the field's other input keys (its
            # serialized_name, deserialize_from); without any, a field not required is skipped
            alone = all(not key or key == name for key in field.get_input_keys())
            plan.append(_Field(name, node.native, node.nullable, node.copy, node.nullable and alone))
        else:
            # a Serializable: validate() calls its getter (once the instance has a value
            # for it, which Model() gives it) and stores the result in _data.valid
            return None
    steps = tuple(plan)

    def check(obj: Any) -> bool:
        if type(obj) is not model:
            return False
        attrs = obj.__dict__
        data: Any = attrs.get("_data")
        if type(data) is not ModelDict or (len(attrs) > 1 and not _INSTANCE_OVERRIDES.isdisjoint(attrs)):
            return False
        if m._schema is not schema or len(fields) != n_fields or validators:
            return False  # the class changed since it was compiled
        maps = data.maps
        converted = data._converted
        if (
            data._unsafe
            or len(maps) != 3
            or maps[0]
            or maps[1] is not converted
            or type(converted) is not dict
        ):
            return False  # lazily imported data to convert first, or a ModelDict out of step
        previous = maps[2]
        if type(previous) is not MappingProxyType and type(previous) is not dict:
            return False
        valid: dict[str, Any] = {}
        completed: dict[str, Any] | None = None
        try:
            for name, native, nullable, copy, may_be_missing in steps:
                value = converted.get(name, _MISSING)
                if value is _MISSING:
                    value = previous.get(name, _MISSING)
                    if value is _MISSING:
                        if may_be_missing:
                            continue
                        return False
                    if completed is None:
                        completed = {}
                    completed[name] = value
                if type(value) is native:
                    valid[name] = value if copy is None else copy(value)
                elif value is None and nullable:
                    valid[name] = None
                else:
                    return False
        except _Refuse:
            return False
        if completed:
            # _mutate: raw_data (the former converted dict) gets every field the object holds
            converted.update(completed)
        data.valid = valid
        data.converted = {}
        return True

    return check
