"""Filter parsing and lookup semantics (no Redis).

Parsing: ``rpartition("__")`` + a table of the eight suffixes; values converted by the
field's own type; clear errors naming the model, the argument and what is allowed.
Semantics: ``None`` only equals ``None`` and never satisfies a range; ``__not`` and
``__exclude`` are the exact negations of ``=`` and ``__in``; naive datetimes are UTC.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from schematics import types
from schematics.undefined import Undefined

from redis_schematics import SimpleRedisModel
from redis_schematics.exceptions import (
    InvalidFilterValue,
    QueryError,
    RedisSchematicsError,
    UnknownField,
    UnknownLookup,
)
from redis_schematics.hydration import value_in
from redis_schematics.lookups import (
    LOOKUPS,
    Condition,
    Exact,
    Exclude,
    GreaterThan,
    GreaterThanOrEqual,
    In,
    LessThan,
    LessThanOrEqual,
    Not,
    compile_test,
    parse_filters,
)

UTC = dt.timezone.utc
PLUS2 = dt.timezone(dt.timedelta(hours=2))


class NoRedis:
    """A ``__redis_client__`` that fails the test on any use: parsing does no I/O."""

    def __getattr__(self, name: str) -> Any:
        msg = f"unit tests must not touch Redis (used .{name})"
        raise AssertionError(msg)


class Shop(SimpleRedisModel):
    __redis_client__ = NoRedis()

    id = types.StringType()
    name = types.StringType()
    name_in = types.StringType()  # suffix-like names, with one underscore
    notes = types.StringType()
    gte_count = types.IntType()
    a__b = types.IntType()  # a field name containing "__"
    x__in = types.StringType()  # a field name ending like a lookup
    amount = types.IntType()
    price = types.FloatType()
    cost = types.DecimalType()
    vegan = types.BooleanType()
    ref = types.UUIDType()
    day = types.DateType()
    when = types.DateTimeType()
    tags = types.ListType(types.StringType())
    extra = types.DictType(types.StringType())


FIELDS = Shop._engine().fields


def parse(**kwargs: Any) -> tuple[Condition, ...]:
    return parse_filters("Shop", FIELDS, kwargs)


def one(**kwargs: Any) -> tuple[str, str, Any]:
    (cond,) = parse(**kwargs)
    return cond.field, cond.lookup.lookup_name, cond.value


# -- the suffix table ------------------------------------------------------------------------


def test_the_eight_suffixes() -> None:
    assert list(LOOKUPS) == ["eq", "not", "gt", "gte", "lt", "lte", "in", "exclude"]
    assert LOOKUPS["eq"] is Exact
    assert LOOKUPS["not"] is Not
    assert LOOKUPS["gt"] is GreaterThan
    assert LOOKUPS["gte"] is GreaterThanOrEqual
    assert LOOKUPS["lt"] is LessThan
    assert LOOKUPS["lte"] is LessThanOrEqual
    assert LOOKUPS["in"] is In
    assert LOOKUPS["exclude"] is Exclude


@pytest.mark.parametrize(
    ("arg", "value", "expected"),
    [
        ("amount", 1, ("amount", "eq", 1)),
        ("amount__eq", 1, ("amount", "eq", 1)),
        ("amount__not", 1, ("amount", "not", 1)),
        ("amount__gt", 1, ("amount", "gt", 1)),
        ("amount__gte", 1, ("amount", "gte", 1)),
        ("amount__lt", 1, ("amount", "lt", 1)),
        ("amount__lte", 1, ("amount", "lte", 1)),
        ("amount__in", [1, 2], ("amount", "in", (1, 2))),
        ("amount__exclude", [1, 2], ("amount", "exclude", (1, 2))),
    ],
)
def test_every_suffix_parses(arg: str, value: Any, expected: tuple[str, str, Any]) -> None:
    assert one(**{arg: value}) == expected


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        # the original used str.replace on suffixes, which mangled these names
        ("name_in", ("name_in", "eq", "v")),
        ("name_in__in", ("name_in", "in", ("v",))),
        ("name_in__not", ("name_in", "not", "v")),
        ("notes", ("notes", "eq", "v")),
        ("notes__not", ("notes", "not", "v")),
        ("notes__exclude", ("notes", "exclude", ("v",))),
    ],
)
def test_suffix_like_field_names(arg: str, expected: tuple[str, str, Any]) -> None:
    value: Any = ["v"] if expected[1] in ("in", "exclude") else "v"
    assert one(**{arg: value}) == expected


def test_gte_count_field() -> None:
    assert one(gte_count=3) == ("gte_count", "eq", 3)
    assert one(gte_count__lt="3") == ("gte_count", "lt", 3)


def test_field_names_containing_double_underscore() -> None:
    # A field's own name always wins; the suffix is what follows its last "__".
    assert one(a__b=1) == ("a__b", "eq", 1)
    assert one(a__b__gt="2") == ("a__b", "gt", 2)
    assert one(a__b__in=[1]) == ("a__b", "in", (1,))
    # "x__in" is a field, so x__in="z" is equality on it, not an "in" on a field "x"
    assert one(x__in="z") == ("x__in", "eq", "z")
    assert one(x__in__in=["z"]) == ("x__in", "in", ("z",))
    assert one(x__in__not="z") == ("x__in", "not", "z")


def test_field_name_with_double_underscore_and_unknown_suffix() -> None:
    with pytest.raises(UnknownLookup) as info:
        parse(a__b__c=1)
    assert "Unknown lookup 'c' in Shop filter 'a__b__c'. Supported: eq," in str(info.value)
    with pytest.raises(UnknownField, match="'a__c'"):
        parse(a__c=1)


def test_conditions_keep_argument_order() -> None:
    conds = parse(name="x", amount__gt=1, vegan=True)
    assert [(c.field, c.lookup.lookup_name) for c in conds] == [
        ("name", "eq"),
        ("amount", "gt"),
        ("vegan", "eq"),
    ]


def test_condition_str() -> None:
    conds = parse(name="x", amount__gt="1", amount__in=[1, 2])
    assert [str(c) for c in conds] == ["name='x'", "amount__gt=1", "amount__in=[1, 2]"]


# -- errors -------------------------------------------------------------------------------------


def test_unknown_lookup_suggests() -> None:
    with pytest.raises(UnknownLookup) as info:
        parse(when__gtee="2026-01-01")
    msg = str(info.value)
    assert "Shop" in msg
    assert "'gtee'" in msg
    assert "'when__gtee'" in msg
    assert "did you mean 'gte'?" in msg
    assert "eq, not, gt, gte, lt, lte, in, exclude" in msg


def test_unknown_field_suggests() -> None:
    with pytest.raises(UnknownField) as info:
        parse(amout=1)
    msg = str(info.value)
    assert "Shop" in msg
    assert "'amout'" in msg
    assert "did you mean 'amount'?" in msg
    assert "amount" in msg.split("Fields:")[1]


def test_unknown_field_with_a_lookup_suffix_names_the_field() -> None:
    with pytest.raises(UnknownField) as info:
        parse(amout__gte=1)
    msg = str(info.value)
    assert "no field 'amout'" in msg
    assert "'amout__gte'" in msg
    assert "did you mean 'amount'?" in msg


def test_unknown_field_without_any_close_match() -> None:
    with pytest.raises(UnknownField) as info:
        parse(zzzzzz=1)
    msg = str(info.value)
    assert "'zzzzzz'" in msg
    assert "did you mean" not in msg
    assert "(in filter 'zzzzzz'). Fields: pk, id, name," in msg  # a sentence ends before "Fields"


def test_query_errors_are_value_errors_and_library_errors() -> None:
    for exc in (UnknownField, UnknownLookup, InvalidFilterValue):
        assert issubclass(exc, QueryError)
        assert issubclass(exc, ValueError)
        assert issubclass(exc, RedisSchematicsError)


@pytest.mark.parametrize(
    ("kwargs", "shown"),
    [
        ({"amount": "abc"}, "'abc'"),
        ({"amount": 1.5}, "1.5"),
        ({"amount__gt": "ten"}, "'ten'"),
        ({"vegan": "yes"}, "'yes'"),
        ({"ref": "not-a-uuid"}, "'not-a-uuid'"),
        ({"cost": "abc"}, "'abc'"),
        ({"day": "2026-13-01"}, "'2026-13-01'"),
        ({"when": "notadate"}, "'notadate'"),
        ({"when__lt": "2026-02-30T00:00:00"}, "'2026-02-30T00:00:00'"),
        ({"amount": [1]}, "[1]"),
    ],
)
def test_unconvertible_value_names_field_and_value(kwargs: dict[str, Any], shown: str) -> None:
    (arg,) = kwargs
    field = arg.split("__")[0]
    with pytest.raises(InvalidFilterValue) as info:
        parse(**kwargs)
    msg = str(info.value)
    assert f"Shop.{field}" in msg
    assert shown in msg


def test_unconvertible_value_inside_in() -> None:
    with pytest.raises(InvalidFilterValue) as info:
        parse(amount__in=[1, "x"])
    assert "Shop.amount" in str(info.value)
    assert "'x'" in str(info.value)


@pytest.mark.parametrize("bad", [5, "12", b"12", {"a": 1}, None])
@pytest.mark.parametrize("suffix", ["in", "exclude"])
def test_in_and_exclude_need_a_list(suffix: str, bad: Any) -> None:
    with pytest.raises(InvalidFilterValue) as info:
        parse(**{f"amount__{suffix}": bad})
    msg = str(info.value)
    assert f"amount__{suffix}" in msg
    assert "list" in msg


def test_in_accepts_any_iterable() -> None:
    assert one(amount__in=(1, 2)) == ("amount", "in", (1, 2))
    assert one(amount__in=iter(["3"])) == ("amount", "in", (3,))
    assert one(amount__exclude=[]) == ("amount", "exclude", ())
    assert one(amount__in={4}) == ("amount", "in", (4,))


@pytest.mark.parametrize("suffix", ["gt", "gte", "lt", "lte"])
@pytest.mark.parametrize("field", ["tags", "extra"])
def test_range_on_compound_field_is_refused(field: str, suffix: str) -> None:
    with pytest.raises(QueryError) as info:
        parse(**{f"{field}__{suffix}": ["a"]})
    msg = str(info.value)
    assert f"'{field}__{suffix}'" in msg
    assert "no order" in msg


# -- values converted by the field's type -----------------------------------------------------


def test_values_are_converted_by_field_type() -> None:
    assert one(amount="42") == ("amount", "eq", 42)
    assert one(amount=True) == ("amount", "eq", 1)
    assert one(price="2.5") == ("price", "eq", 2.5)
    assert one(cost="1.50") == ("cost", "eq", Decimal("1.50"))
    assert one(cost=1.25) == ("cost", "eq", Decimal("1.25"))
    assert one(vegan="true") == ("vegan", "eq", True)
    assert one(vegan=0) == ("vegan", "eq", False)
    assert one(day="2026-01-02") == ("day", "eq", dt.date(2026, 1, 2))
    ref = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert one(ref="12345678123456781234567812345678") == ("ref", "eq", ref)
    assert one(ref=str(ref)) == ("ref", "eq", ref)


def test_iso_strings_become_utc_datetimes() -> None:
    midnight = dt.datetime(2026, 1, 1, tzinfo=UTC)
    assert one(when__gte="2026-01-01T00:00:00") == ("when", "gte", midnight)
    assert one(when="2026-01-01T02:00:00+02:00") == ("when", "eq", midnight)
    assert one(when=dt.datetime(2026, 1, 1)) == ("when", "eq", midnight)
    assert one(when=dt.datetime(2026, 1, 1, 2, tzinfo=PLUS2)) == ("when", "eq", midnight)
    _f, _l, value = one(when="2026-01-01T00:00:00")
    assert value.tzinfo is UTC


def test_none_is_not_converted() -> None:
    assert one(amount=None) == ("amount", "eq", None)
    assert one(amount__in=[None, "1"]) == ("amount", "in", (None, 1))
    assert one(when__gt=None) == ("when", "gt", None)


# -- semantics table ----------------------------------------------------------------------------

D1 = dt.datetime(2026, 1, 1, tzinfo=UTC)
D2 = dt.datetime(2026, 6, 1, tzinfo=UTC)

# (lookup, stored value, query value, expected)
TABLE: list[tuple[type, Any, Any, bool]] = [
    (Exact, 1, 1, True),
    (Exact, 1, 2, False),
    (Exact, None, None, True),
    (Exact, None, 1, False),
    (Exact, 1, None, False),
    (Exact, "", None, False),
    (Exact, 0, None, False),
    (Exact, False, None, False),
    (Not, 1, 1, False),
    (Not, 1, 2, True),
    (Not, None, "x", True),  # a None field does satisfy __not="x"
    (Not, None, None, False),
    (Not, "x", None, True),
    (In, 1, (1, 2), True),
    (In, 3, (1, 2), False),
    (In, None, (1, None), True),
    (In, None, (1, 2), False),
    (In, 1, (), False),
    (Exclude, 1, (1, 2), False),
    (Exclude, 3, (1, 2), True),
    (Exclude, None, (1, 2), True),
    (Exclude, None, (None,), False),
    (Exclude, 1, (), True),
    (GreaterThan, 2, 1, True),
    (GreaterThan, 1, 1, False),
    (GreaterThan, None, 1, False),
    (GreaterThan, 1, None, False),
    (GreaterThan, None, None, False),
    (GreaterThanOrEqual, 1, 1, True),
    (GreaterThanOrEqual, 0, 1, False),
    (GreaterThanOrEqual, None, 1, False),
    (GreaterThanOrEqual, None, None, False),
    (LessThan, 0, 1, True),
    (LessThan, 1, 1, False),
    (LessThan, None, 1, False),
    (LessThan, 1, None, False),
    (LessThanOrEqual, 1, 1, True),
    (LessThanOrEqual, 2, 1, False),
    (LessThanOrEqual, None, None, False),
    (GreaterThan, D2, D1, True),
    (LessThan, D2, D1, False),
    (GreaterThan, "b", "a", True),
    (LessThan, "a", "b", True),
    (GreaterThan, "a", 1, False),  # incomparable: no match instead of a TypeError
    (LessThan, "a", 1, False),
]


@pytest.mark.parametrize(("lookup", "actual", "value", "expected"), TABLE)
def test_semantics_table(lookup: type, actual: Any, value: Any, expected: bool) -> None:
    assert lookup.matches(actual, value) is expected


VALUES = [None, 0, 1, 2, "", "x", "y", D1, D2]


@pytest.mark.parametrize("actual", VALUES)
@pytest.mark.parametrize("value", VALUES)
def test_not_is_the_exact_negation_of_eq(actual: Any, value: Any) -> None:
    assert Not.matches(actual, value) is (not Exact.matches(actual, value))


@pytest.mark.parametrize("actual", VALUES)
@pytest.mark.parametrize("values", [(), (None,), (1, None), ("x", D1), (0, 2), (D1, D2)])
def test_exclude_is_the_exact_negation_of_in(actual: Any, values: tuple[Any, ...]) -> None:
    assert Exclude.matches(actual, values) is (not In.matches(actual, values))


@pytest.mark.parametrize("lookup", [GreaterThan, GreaterThanOrEqual, LessThan, LessThanOrEqual])
@pytest.mark.parametrize("other", [0, 1, "x", D1])
def test_none_never_satisfies_a_range(lookup: type, other: Any) -> None:
    assert lookup.matches(None, other) is False
    assert lookup.matches(other, None) is False


def test_lookup_flags() -> None:
    assert [name for name, cls in LOOKUPS.items() if cls.many] == ["in", "exclude"]
    assert [name for name, cls in LOOKUPS.items() if cls.ordered] == ["gt", "gte", "lt", "lte"]
    assert {name: cls.negates for name, cls in LOOKUPS.items() if cls.negates} == {
        "not": "eq",
        "exclude": "in",
    }


# -- conditions tested against objects: naive vs aware datetimes --------------------------------


def shop(**data: Any) -> Shop:
    return Shop(data)


def test_naive_stored_datetime_meets_aware_query_as_utc() -> None:
    obj = shop(when=dt.datetime(2026, 1, 1, 12, 0))  # naive: UTC
    (eq,) = parse(when=dt.datetime(2026, 1, 1, 14, 0, tzinfo=PLUS2))
    (gt,) = parse(when__gt="2026-01-01T13:00:00+02:00")  # 11:00 UTC
    (lt,) = parse(when__lt="2026-01-01T13:00:00+00:00")
    (not_,) = parse(when__not="2026-01-01T12:00:00Z")
    assert eq.test(obj)
    assert gt.test(obj)
    assert lt.test(obj)
    assert not not_.test(obj)


def test_aware_stored_datetime_meets_naive_query_as_utc() -> None:
    obj = shop(when=dt.datetime(2026, 1, 1, 14, 0, tzinfo=PLUS2))  # 12:00 UTC
    (eq,) = parse(when="2026-01-01T12:00:00")
    (gte,) = parse(when__gte=dt.datetime(2026, 1, 1, 12, 0))
    (lt,) = parse(when__lt=dt.datetime(2026, 1, 1, 12, 0))
    (inn,) = parse(when__in=["2026-01-01T12:00:00", "2027-01-01T00:00:00"])
    assert eq.test(obj)
    assert gte.test(obj)
    assert not lt.test(obj)
    assert inn.test(obj)


def test_conditions_on_objects_with_none() -> None:
    obj = shop(name=None, amount=None)
    assert parse(amount=None)[0].test(obj)
    assert not parse(amount__gt=1)[0].test(obj)
    assert not parse(amount__lte=1)[0].test(obj)
    assert parse(amount__not=1)[0].test(obj)
    assert parse(amount__exclude=[1, 2])[0].test(obj)
    assert not parse(amount__exclude=[None])[0].test(obj)
    assert parse(name__in=["a", None])[0].test(obj)
    assert not parse(name="a")[0].test(obj)


# -- compile_test: the re-check of loaded rows, with fewer calls ----------------------------------

#: values of mixed types, so that comparisons also meet TypeError, None and Undefined
SCALARS = st.one_of(
    st.none(),
    st.integers(-3, 3),
    st.floats(-3, 3, allow_nan=False),
    st.sampled_from(["a", "b", ""]),
    st.booleans(),
    st.sampled_from(
        [
            dt.datetime(2026, 1, 1, 12),
            dt.datetime(2026, 1, 1, 12, tzinfo=UTC),
            dt.datetime(2026, 1, 1, 13, tzinfo=PLUS2),
            dt.datetime(2026, 1, 1, 14, tzinfo=PLUS2),
        ]
    ),
)
NAMES = ["a", "b", "c"]


@st.composite
def any_condition(draw: Any) -> Condition:
    lookup = draw(st.sampled_from(list(LOOKUPS.values())))
    if lookup.many:
        value: Any = tuple(draw(st.lists(SCALARS, max_size=3)))
    else:
        value = draw(SCALARS)
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)  # parse_filters normalizes condition values
    return Condition(draw(st.sampled_from(NAMES)), lookup, value)


@given(
    st.lists(any_condition(), max_size=5),
    st.dictionaries(st.sampled_from(NAMES), st.one_of(SCALARS, st.just(Undefined))),
)
def test_compile_test_answers_as_each_condition_does(conds: list[Condition], values: dict[str, Any]) -> None:
    expected = all(c.test_value(value_in(values, c.field)) for c in conds)
    assert compile_test(conds)(values) is expected


def test_compile_test_merges_a_window_on_one_field() -> None:
    lo, hi = dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2026, 1, 2, tzinfo=UTC)
    test = compile_test([Condition("d", GreaterThanOrEqual, lo), Condition("d", LessThan, hi)])
    assert test({"d": dt.datetime(2026, 1, 1, 5)})  # naive: UTC
    assert test({"d": dt.datetime(2026, 1, 2, 1, tzinfo=PLUS2)})  # 23:00 UTC
    assert not test({"d": hi})
    assert not test({"d": None})
    assert not test({"d": Undefined})
    assert not test({})
    assert not test({"d": "2026-01-01"})  # not comparable: no match, no error


#: values whose comparisons raise something else than TypeError (decimal.InvalidOperation)
RAISING = st.one_of(SCALARS, st.sampled_from([Decimal("NaN"), Decimal("sNaN"), Decimal(1), Decimal("-0.5")]))


@st.composite
def raising_condition(draw: Any) -> Condition:
    lookup = draw(st.sampled_from(list(LOOKUPS.values())))
    value: Any = tuple(draw(st.lists(RAISING, max_size=2))) if lookup.many else draw(RAISING)
    return Condition(draw(st.sampled_from(NAMES)), lookup, value)


def _outcome(fn: Any) -> Any:
    try:
        return fn()
    except Exception as exc:
        return type(exc)


@given(
    st.lists(raising_condition(), max_size=5),
    st.dictionaries(st.sampled_from(NAMES), st.one_of(RAISING, st.just(Undefined))),
)
def test_compile_test_raises_when_each_condition_does(conds: list[Condition], values: dict[str, Any]) -> None:
    expected = _outcome(lambda: all(c.test_value(value_in(values, c.field)) for c in conds))
    assert _outcome(lambda: compile_test(conds)(values)) is expected


def test_compile_test_keeps_the_order_of_conditions() -> None:
    nan = {"price": Decimal("NaN"), "name": "y"}
    conds = [Condition("price", GreaterThan, Decimal(1)), Condition("name", Exact, "x")]
    with pytest.raises(ArithmeticError):
        all(c.test_value(value_in(nan, c.field)) for c in conds)
    with pytest.raises(ArithmeticError):
        compile_test(conds)(nan)
    with pytest.raises(ArithmeticError):
        compile_test([conds[0], Condition("other", LessThan, None)])(nan)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "x\ud800"},
        {"name__not": "\udfff"},
        {"name__in": ["ok", "x\udc00"]},
        {"id": "\ud800"},
        {"name__gte": "\ud800"},
    ],
)
def test_lone_surrogate_in_a_filter_value_is_refused(kwargs: dict[str, Any]) -> None:
    """redis-py cannot send it (no UTF-8 form): our error, naming the field, not its
    UnicodeEncodeError."""
    field = next(iter(kwargs)).split("__")[0]
    with pytest.raises(
        InvalidFilterValue, match=rf"Shop\.{field}: .*lone surrogate.*whole Unicode characters"
    ):
        parse_filters("Shop", FIELDS, kwargs)


def test_astral_nul_and_combining_filter_values_are_fine() -> None:
    (cond,) = parse_filters("Shop", FIELDS, {"name": "🍦\x00e\u0301"})
    assert cond.value == "🍦\x00e\u0301"


def test_signaling_nan_filter_value_is_refused() -> None:
    with pytest.raises(InvalidFilterValue, match=r"Shop\.cost: .*signaling NaN"):
        parse_filters("Shop", FIELDS, {"cost__gte": Decimal("sNaN")})
    (cond,) = parse_filters("Shop", FIELDS, {"cost": Decimal("NaN")})  # matches nothing, no error
    assert cond.value.is_qnan()
