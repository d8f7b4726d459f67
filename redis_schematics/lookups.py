"""Filter keyword arguments -> Condition objects, and how a condition tests a value.

``best_before__gte=...`` is split with ``rpartition("__")`` and the suffix looked up in a
table (one small class per lookup, like Django's lookups). Values are converted by the
field's own type first, then normalized (naive datetimes are UTC).

Semantics: ``None`` satisfies only ``=None`` / ``__in=[None, ...]`` and never a range;
``__not`` and ``__exclude`` are the exact negations of ``=`` and ``__in``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from schematics.exceptions import BaseError
from schematics.types import DateTimeType, compound
from schematics.undefined import Undefined

from redis_schematics.exceptions import InvalidFilterValue, QueryError, UnknownField, UnknownLookup
from redis_schematics.hydration import value_in
from redis_schematics.serializers import UTC, lone_surrogate, normalize


class Lookup:
    """One filter operator. ``matches(actual, value)`` gets normalized native values."""

    lookup_name: ClassVar[str]
    #: the value is a collection of field values
    many: ClassVar[bool] = False
    #: needs an orderable field (refused on list/dict/model fields)
    ordered: ClassVar[bool] = False
    #: the exact negation of another lookup (``__not`` of ``eq``, ``__exclude`` of ``in``)
    negates: ClassVar[str | None] = None

    @staticmethod
    def matches(actual: Any, value: Any) -> bool:
        raise NotImplementedError


class Exact(Lookup):
    lookup_name = "eq"

    @staticmethod
    def matches(actual: Any, value: Any) -> bool:
        return bool(actual == value) if (actual is None) == (value is None) else False


class Not(Lookup):
    lookup_name = "not"
    negates = "eq"

    @staticmethod
    def matches(actual: Any, value: Any) -> bool:
        return not Exact.matches(actual, value)


class In(Lookup):
    lookup_name = "in"
    many = True

    @staticmethod
    def matches(actual: Any, value: Any) -> bool:
        return any(Exact.matches(actual, v) for v in value)


class Exclude(Lookup):
    lookup_name = "exclude"
    many = True
    negates = "in"

    @staticmethod
    def matches(actual: Any, value: Any) -> bool:
        return not In.matches(actual, value)


class _Range(Lookup):
    ordered = True

    @classmethod
    def matches(cls, actual: Any, value: Any) -> bool:
        if actual is None or value is None:
            return False
        try:
            return cls.compare(actual, value)
        except TypeError:
            return False

    @staticmethod
    def compare(actual: Any, value: Any) -> bool:
        raise NotImplementedError


class GreaterThan(_Range):
    lookup_name = "gt"

    @staticmethod
    def compare(actual: Any, value: Any) -> bool:
        return bool(actual > value)


class GreaterThanOrEqual(_Range):
    lookup_name = "gte"

    @staticmethod
    def compare(actual: Any, value: Any) -> bool:
        return bool(actual >= value)


class LessThan(_Range):
    lookup_name = "lt"

    @staticmethod
    def compare(actual: Any, value: Any) -> bool:
        return bool(actual < value)


class LessThanOrEqual(_Range):
    lookup_name = "lte"

    @staticmethod
    def compare(actual: Any, value: Any) -> bool:
        return bool(actual <= value)


LOOKUPS: dict[str, type[Lookup]] = {
    cls.lookup_name: cls
    for cls in (
        Exact,
        Not,
        GreaterThan,
        GreaterThanOrEqual,
        LessThan,
        LessThanOrEqual,
        In,
        Exclude,
    )
}
SUPPORTED = ", ".join(LOOKUPS)
COMPOUND_TYPES = (compound.ListType, compound.DictType, compound.ModelType)


def comparable(value: Any) -> Any:
    """``normalize(value)`` as far as comparisons need it, and cheaper: an aware datetime
    compares by its instant whatever its zone, so only a naive one changes (it is UTC)."""
    if isinstance(value, dt.datetime) and (value.tzinfo is None or value.utcoffset() is None):
        return value.replace(tzinfo=UTC)
    return value


@dataclass(frozen=True)
class Condition:
    """``field <lookup> value`` with the value already converted and normalized."""

    field: str
    lookup: type[Lookup]
    value: Any

    def test(self, obj: Any) -> bool:
        """Does the object's field value satisfy the condition?"""
        return self.test_value(getattr(obj, self.field, None))

    def test_value(self, actual: Any) -> bool:
        """Does the native value ``actual`` satisfy the condition?"""
        return self.lookup.matches(comparable(actual), self.value)

    def __str__(self) -> str:
        suffix = "" if self.lookup is Exact else "__" + self.lookup.lookup_name
        value = list(self.value) if self.lookup.many else self.value
        return f"{self.field}{suffix}={value!r}"


#: the comparison each range lookup makes
_RANGE_OPS: dict[type[Lookup], Callable[[Any, Any], Any]] = {
    GreaterThan: operator.gt,
    GreaterThanOrEqual: operator.ge,
    LessThan: operator.lt,
    LessThanOrEqual: operator.le,
}


def _range_test(name: str, bounds: Sequence[tuple[Callable[[Any, Any], Any], Any]]) -> Callable[[Any], bool]:
    """Every range condition on field ``name`` in one test of a snapshot dict: what
    ``_Range.matches(comparable(actual), bound)`` gives for each, with one dict read and
    one normalization of the value for all of them."""

    def test(values: Any) -> bool:
        actual = values.get(name)
        if actual is None or actual is Undefined:
            return False
        actual = comparable(actual)
        try:
            for op, bound in bounds:
                if not op(actual, bound):
                    return False
        except TypeError:
            return False
        return True

    return test


def compile_test(conditions: Sequence[Condition]) -> Callable[[Any], bool]:
    """A function of a snapshot dict (``hydration.snapshot(obj)``) that is True when the
    object satisfies every condition: the same answer as
    ``all(c.test_value(value_in(values, c.field)) for c in conditions)`` (proven in
    tests/unit/test_lookups.py), with fewer Python calls per row. Consecutive range
    conditions of one field (``__gte`` and ``__lte`` of a window) become one test.
    Conditions are tested in their order, stopping at the first False, so a comparison
    that raises (``Decimal("NaN") > 1``: InvalidOperation) raises exactly when the
    per-condition test does. Pure CPU."""
    tests: list[Callable[[Any], bool]] = []
    bounds: list[tuple[Callable[[Any, Any], Any], Any]] | None = None
    name: str | None = None
    for cond in conditions:
        op = _RANGE_OPS.get(cond.lookup)
        if op is not None and cond.value is None:
            bounds = None
            tests.append(lambda values: False)  # None never satisfies a range
            break  # later conditions are never tested
        if op is None:
            bounds = None
            tests.append(_general_test(cond))
        elif bounds is not None and cond.field == name:
            bounds.append((op, cond.value))  # same field as the range test just before
        else:
            name, bounds = cond.field, [(op, cond.value)]
            tests.append(_range_test(name, bounds))
    if len(tests) == 1:
        return tests[0]
    return lambda values: all(test(values) for test in tests)


def _general_test(cond: Condition) -> Callable[[Any], bool]:
    name, test_value = cond.field, cond.test_value
    return lambda values: test_value(value_in(values, name))


def _suggest(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f"; did you mean {close[0]!r}?" if close else "."


def _to_native(field_type: Any, value: Any) -> Any:
    """``field_type.to_native(value)``, except that a naive datetime given to a field that
    requires a time zone (``TimestampType``, ``UTCDateTimeType``) is taken as UTC, as
    everywhere else in queries."""
    try:
        return field_type.to_native(value)
    except BaseError:
        if not isinstance(field_type, DateTimeType):
            raise
        plain = DateTimeType().to_native(value)  # raises if it is no datetime at all
        if plain.tzinfo is not None:
            raise
        return field_type.to_native(plain.replace(tzinfo=UTC))


def convert_value(model: str, fields: Mapping[str, Any], name: str, value: Any) -> Any:
    """Convert one filter value with the field's type; raise InvalidFilterValue if it can't."""
    if value is None:
        return None
    field_type = fields[name]
    try:
        native = _to_native(field_type, value)
    except (BaseError, TypeError, ValueError) as exc:
        messages = getattr(exc, "messages", None) or [exc]
        detail = "; ".join(str(getattr(m, "summary", m)) for m in messages)
        msg = f"{model}.{name}: {value!r} is not a valid {type(field_type).__name__} value ({detail})"
        raise InvalidFilterValue(msg) from exc
    try:
        native = normalize(native)
    except OverflowError as exc:
        msg = f"{model}.{name}: {value!r} is outside the datetime range once converted to UTC"
        raise InvalidFilterValue(msg) from exc
    if isinstance(native, Decimal) and native.is_snan():
        msg = f"{model}.{name}: {value!r} is a signaling NaN, which cannot be compared; use a number or None"
        raise InvalidFilterValue(msg)
    for item in native if isinstance(native, list) else (native,):
        at = lone_surrogate(item) if type(item) is str else None
        if at is not None:
            msg = (
                f"{model}.{name}: {value!r:.60} holds a lone surrogate ({item[at]!r} at position "
                f"{at}), which no stored value can hold; filter with text of whole Unicode characters."
            )
            raise InvalidFilterValue(msg)
    return native


def parse_filters(model: str, fields: Mapping[str, Any], kwargs: Mapping[str, Any]) -> tuple[Condition, ...]:
    """Turn ``filter(**kwargs)`` into conditions, converting every value by its field type.

    Raises:
        UnknownField / UnknownLookup / InvalidFilterValue / QueryError: with the model,
            the argument, and what is allowed.

    Complexity: O(K), no Redis command.
    """
    conditions = []
    for arg, raw in kwargs.items():
        lookup: type[Lookup]
        if arg in fields:
            name, lookup = arg, Exact
        else:
            base, sep, suffix = arg.rpartition("__")
            if sep and base in fields:
                if suffix not in LOOKUPS:
                    msg = (
                        f"Unknown lookup {suffix!r} in {model} filter {arg!r}"
                        f"{_suggest(suffix, LOOKUPS)} Supported: {SUPPORTED}."
                    )
                    raise UnknownLookup(msg)
                name, lookup = base, LOOKUPS[suffix]
            else:
                word = base if sep and suffix in LOOKUPS else arg
                msg = (
                    f"{model} has no field {word!r} (in filter {arg!r}){_suggest(word, fields)}"
                    f" Fields: {', '.join(fields)}."
                )
                raise UnknownField(msg)
        field_type = fields[name]
        if lookup.ordered and isinstance(field_type, COMPOUND_TYPES):
            msg = (
                f"{model} filter {arg!r}: {type(field_type).__name__} values have no order; "
                "use eq, not, in or exclude on this field."
            )
            raise QueryError(msg)
        if lookup.many:
            if isinstance(raw, str | bytes | Mapping) or not isinstance(raw, Iterable):
                msg = f"{model} filter {arg!r} needs a list of values, got {raw!r}; write {arg}=[...]."
                raise InvalidFilterValue(msg)
            value: Any = tuple(convert_value(model, fields, name, v) for v in raw)
        else:
            value = convert_value(model, fields, name, raw)
        conditions.append(Condition(name, lookup, value))
    return tuple(conditions)
