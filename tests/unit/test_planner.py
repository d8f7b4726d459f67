"""The query planner, compared as plain data (peewee ``assertSQL`` style); no Redis.

``Model.explain(**filters)`` / ``query.explain()`` return the :class:`Plan` that would
run: which index answers each condition (a Step of Atoms, literal keys and score
bounds), what is re-checked on loaded objects, whether it scans, and whether the server
can count and page it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from schematics import types

from redis_schematics import Plan, Query, RangeIndex, SimpleRedisModel, UniqueIndex
from redis_schematics.exceptions import IndexNotReady, QueryError, StrictPerformanceException, UnknownField
from redis_schematics.indexes import Atom, Step
from redis_schematics.lookups import (
    Condition,
    Exact,
    Exclude,
    GreaterThan,
    GreaterThanOrEqual,
    LessThan,
    LessThanOrEqual,
    Not,
)
from redis_schematics.planner import plan
from redis_schematics.schema import SchemaState

UTC = dt.timezone.utc


class NoRedis:
    """A ``__redis_client__`` that fails the test on any use: planning does no I/O."""

    def __getattr__(self, name: str) -> Any:
        msg = f"planning must not touch Redis (used .{name})"
        raise AssertionError(msg)


def ice_cream(strict: bool = False) -> Any:
    attrs: dict[str, Any] = {
        "__redis_client__": NoRedis(),
        "__prefix__": "IceCream",
        "__strict_performance__": strict,
        "__indexes__": ("flavour", "amount_kg", "best_before", "vegan", UniqueIndex("code")),
        "id": types.StringType(),
        "flavour": types.StringType(),
        "amount_kg": types.IntType(),
        "price": types.FloatType(),
        "ratio": types.FloatType(),
        "cost": types.DecimalType(),
        "best_before": types.DateTimeType(),
        "vegan": types.BooleanType(),
        "code": types.StringType(),
        "tags": types.ListType(types.StringType()),
    }
    return type(SimpleRedisModel)("IceCream", (SimpleRedisModel,), attrs)


IceCream = ice_cream()
Strict = ice_cream(strict=True)


class Lab(SimpleRedisModel):
    __redis_client__ = NoRedis()
    __indexes__ = (RangeIndex("ratio"), RangeIndex("cost"), RangeIndex("day"))

    ratio = types.FloatType()
    cost = types.DecimalType()
    day = types.DateType()


EQ_FLAVOUR = "EqualityIndex('flavour')"
EQ_VEGAN = "EqualityIndex('vegan')"
RANGE_AMOUNT = "RangeIndex('amount_kg')"
RANGE_BEST = "RangeIndex('best_before')"
UNIQUE_CODE = "UniqueIndex('code')"
Z_AMOUNT = "IceCream#range:amount_kg"
Z_BEST = "IceCream#range:best_before"


def S(key: str, negated: bool = False) -> Atom:
    return Atom("S", key, negated=negated)


def Z(key: str, lo: str, hi: str, negated: bool = False) -> Atom:
    return Atom("Z", key, lo, hi, negated)


def U(key: str, token: str) -> Atom:
    return Atom("U", key, token)


def cond(field: str, lookup: type, value: Any) -> Condition:
    return Condition(field, lookup, value)


def shape(p: Plan) -> dict[str, Any]:
    """A plan as nested plain data, for readable failures."""
    return {
        "steps": [(s.index, str(s.condition), s.atoms, s.negated, s.exact) for s in p.steps],
        "residual": [str(c) for c in p.residual],
        "scan": p.scan,
        "countable": p.countable,
        "pageable": p.pageable,
        "order": p.order,
        "order_keys": p.order_keys,
    }


# -- equality indexes -----------------------------------------------------------------------------


def test_equality_condition_is_one_set() -> None:
    p = IceCream.explain(flavour="vanilla")
    assert p == Plan(
        model="IceCream",
        steps=(Step(EQ_FLAVOUR, cond("flavour", Exact, "vanilla"), (S("IceCream#eq:flavour:vanilla"),)),),
        residual=(),
        order=(),
        order_keys=(),
        scan=False,
    )
    assert p.countable
    assert not p.pageable


def test_equality_eq_suffix_is_the_same_plan() -> None:
    assert IceCream.explain(flavour__eq="vanilla") == IceCream.explain(flavour="vanilla")


def test_equality_in_is_a_union_without_duplicates() -> None:
    p = IceCream.explain(flavour__in=["a", "b", "a", None])
    (step,) = p.steps
    assert step.atoms == (
        S("IceCream#eq:flavour:a"),
        S("IceCream#eq:flavour:b"),
        S("IceCream#eq:flavour#none"),
    )
    assert step.negated is False
    assert step.exact is True
    assert p.countable


def test_equality_negations_are_negated_steps() -> None:
    (not_step,) = IceCream.explain(flavour__not="x").steps
    assert not_step == Step(
        EQ_FLAVOUR, cond("flavour", Not, "x"), (S("IceCream#eq:flavour:x"),), negated=True
    )
    (exc_step,) = IceCream.explain(flavour__exclude=["x", None]).steps
    assert exc_step == Step(
        EQ_FLAVOUR,
        cond("flavour", Exclude, ("x", None)),
        (S("IceCream#eq:flavour:x"), S("IceCream#eq:flavour#none")),
        negated=True,
    )


def test_equality_none_has_its_own_set() -> None:
    (step,) = IceCream.explain(flavour=None).steps
    assert step.atoms == (S("IceCream#eq:flavour#none"),)


def test_boolean_tokens() -> None:
    (t,) = IceCream.explain(vegan=True).steps
    (f,) = IceCream.explain(vegan="false").steps
    assert t.index == EQ_VEGAN
    assert t.atoms == (S("IceCream#eq:vegan:true"),)
    assert f.atoms == (S("IceCream#eq:vegan:false"),)


def test_equality_index_does_not_serve_ranges() -> None:
    p = IceCream.explain(flavour__gt="m")
    assert shape(p) == {
        "steps": [],
        "residual": ["flavour__gt='m'"],
        "scan": True,
        "countable": False,
        "pageable": False,
        "order": (),
        "order_keys": (),
    }


# -- range indexes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "lookup", "lo", "hi"),
    [
        ("amount_kg__gt", GreaterThan, "(10.0", "+inf"),
        ("amount_kg__gte", GreaterThanOrEqual, "10.0", "+inf"),
        ("amount_kg__lt", LessThan, "-inf", "(10.0"),
        ("amount_kg__lte", LessThanOrEqual, "-inf", "10.0"),
        ("amount_kg", Exact, "10.0", "10.0"),
    ],
)
def test_range_bounds(arg: str, lookup: type, lo: str, hi: str) -> None:
    p = IceCream.explain(**{arg: "10"})
    assert p.steps == (Step(RANGE_AMOUNT, cond("amount_kg", lookup, 10), (Z(Z_AMOUNT, lo, hi),)),)
    assert (p.residual, p.scan, p.countable) == ((), False, True)


def test_range_in_and_negations() -> None:
    (inn,) = IceCream.explain(amount_kg__in=[1, 2, 1]).steps
    assert inn.atoms == (Z(Z_AMOUNT, "1.0", "1.0"), Z(Z_AMOUNT, "2.0", "2.0"))
    assert not inn.negated
    (not_,) = IceCream.explain(amount_kg__not=1).steps
    assert not_.atoms == (Z(Z_AMOUNT, "1.0", "1.0"),)
    assert not_.negated
    (exc,) = IceCream.explain(amount_kg__exclude=[1, 2]).steps
    assert exc.negated
    assert exc.atoms == (Z(Z_AMOUNT, "1.0", "1.0"), Z(Z_AMOUNT, "2.0", "2.0"))


def test_range_none_is_not_in_the_zset() -> None:
    # field=None: "pk has no score" = the whole-range atom, negated
    (eq,) = IceCream.explain(amount_kg=None).steps
    assert eq.atoms == (Z(Z_AMOUNT, "-inf", "+inf", negated=True),)
    assert not eq.negated
    (inn,) = IceCream.explain(amount_kg__in=[1, None]).steps
    assert inn.atoms == (Z(Z_AMOUNT, "1.0", "1.0"), Z(Z_AMOUNT, "-inf", "+inf", negated=True))
    (not_,) = IceCream.explain(amount_kg__not=None).steps
    assert not_.atoms == (Z(Z_AMOUNT, "-inf", "+inf", negated=True),)
    assert not_.negated


@pytest.mark.parametrize("suffix", ["gt", "gte", "lt", "lte"])
def test_range_against_none_matches_nothing(suffix: str) -> None:
    p = IceCream.explain(**{f"amount_kg__{suffix}": None})
    (step,) = p.steps
    assert step.atoms == ()  # an empty disjunction: no candidate
    assert not step.negated
    assert p.countable


def test_datetime_bounds_are_utc_microseconds() -> None:
    (step,) = IceCream.explain(best_before__lt="2026-01-01T00:00:00").steps
    assert step == Step(
        RANGE_BEST,
        cond("best_before", LessThan, dt.datetime(2026, 1, 1, tzinfo=UTC)),
        (Z(Z_BEST, "-inf", "(1767225600000000.0"),),
    )
    aware = IceCream.explain(best_before__lt="2026-01-01T02:00:00+02:00")
    assert aware.steps == (step,)


def test_date_bounds_are_days() -> None:
    (step,) = Lab.explain(day__gte="2026-01-01").steps
    assert step.atoms == (Z("Lab#range:day", "20454.0", "+inf"),)


def test_int_beyond_double_is_inexact_and_inclusive() -> None:
    big = 2**53 + 1
    p = IceCream.explain(amount_kg__gt=big)
    (step,) = p.steps
    assert step.atoms == (Z(Z_AMOUNT, "9007199254740992.0", "+inf"),)  # inclusive, not "("
    assert step.exact is False
    assert not p.countable
    assert not IceCream.query(amount_kg__gt=big).order_by("amount_kg").explain().pageable
    (eq,) = IceCream.explain(amount_kg=big).steps
    assert eq.exact is False
    # 2**53 itself shares its score with 2**53 + 1: re-checked too
    assert IceCream.explain(amount_kg=2**53).steps[0].exact is False
    (below,) = IceCream.explain(amount_kg__gt=2**53 - 1).steps
    assert below.exact is True
    assert below.atoms == (Z(Z_AMOUNT, "(9007199254740991.0", "+inf"),)
    assert IceCream.explain(amount_kg__gt=2**53 - 1).countable


def test_huge_decimal_bounds_are_infinite_and_inexact() -> None:
    (step,) = Lab.explain(cost__gte=Decimal("1e400")).steps
    assert step.atoms == (Z("Lab#range:cost", "+inf", "+inf"),)
    assert step.exact is False
    (lt,) = Lab.explain(cost__lt="-1e400").steps
    assert lt.atoms == (Z("Lab#range:cost", "-inf", "-inf"),)
    # every Decimal shares its double with near Decimals: inclusive bounds, re-checked
    (half,) = Lab.explain(cost__gt="0.5").steps
    assert half.atoms == (Z("Lab#range:cost", "0.5", "+inf"),)
    assert half.exact is False
    assert not Lab.explain(cost__gt="0.5").countable
    # a float field's bound is exact and strict
    (ratio,) = Lab.explain(ratio__gt="0.5").steps
    assert ratio.atoms == (Z("Lab#range:ratio", "(0.5", "+inf"),)
    assert ratio.exact is True


def test_nan_matches_nothing() -> None:
    (eq,) = Lab.explain(ratio=float("nan")).steps
    assert eq.atoms == ()
    (gt,) = Lab.explain(ratio__gt=float("nan")).steps
    assert gt.atoms == ()


# -- unique indexes --------------------------------------------------------------------------------


def test_unique_index_steps() -> None:
    (eq,) = IceCream.explain(code="X1").steps
    assert eq == Step(UNIQUE_CODE, cond("code", Exact, "X1"), (U("IceCream#unique:code", "X1"),))
    (inn,) = IceCream.explain(code__in=["a", "b"]).steps
    assert inn.atoms == (U("IceCream#unique:code", "a"), U("IceCream#unique:code", "b"))
    (exc,) = IceCream.explain(code__exclude=["a"]).steps
    assert exc.negated


def test_unique_index_cannot_answer_none() -> None:
    p = IceCream.explain(code=None)
    assert p.steps == ()
    assert p.residual == (cond("code", Exact, None),)
    assert p.scan
    assert IceCream.explain(code__in=["a", None]).scan


# -- several conditions, residuals, scans ----------------------------------------------------------


def test_two_indexed_conditions() -> None:
    p = IceCream.explain(flavour="vanilla", amount_kg__gte=10)
    assert shape(p) == {
        "steps": [
            (EQ_FLAVOUR, "flavour='vanilla'", (S("IceCream#eq:flavour:vanilla"),), False, True),
            (RANGE_AMOUNT, "amount_kg__gte=10", (Z(Z_AMOUNT, "10.0", "+inf"),), False, True),
        ],
        "residual": [],
        "scan": False,
        "countable": True,
        "pageable": False,
        "order": (),
        "order_keys": (),
    }


def test_unindexed_condition_is_residual() -> None:
    p = IceCream.explain(flavour="vanilla", price__gt=3)
    assert [s.index for s in p.steps] == [EQ_FLAVOUR]
    assert p.residual == (cond("price", GreaterThan, 3.0),)
    assert not p.scan
    assert not p.countable
    assert not p.pageable


def test_only_unindexed_conditions_scan() -> None:
    p = IceCream.explain(price__gt=3, id="x")
    assert p.steps == ()
    assert p.residual == (cond("price", GreaterThan, 3.0), cond("id", Exact, "x"))
    assert p.scan
    assert not p.countable


def test_no_condition_scans_members() -> None:
    p = IceCream.query().explain()
    assert p == Plan("IceCream", (), (), (), (), scan=True)
    assert p.countable  # SCARD / ZCOUNT of the members
    assert not p.pageable  # no order


def test_same_field_twice_is_one_window() -> None:
    """Both bounds of one RangeIndex become one ZRANGE window (not two half-lines)."""
    p = IceCream.explain(amount_kg__gte=1, amount_kg__lt=5)
    assert [s.atoms for s in p.steps] == [(Z(Z_AMOUNT, "1.0", "(5.0"),)]
    assert p.steps[0].also == (cond("amount_kg", LessThan, 5),)
    assert p.countable


def test_window_keeps_the_tighter_bound_and_its_exclusivity() -> None:
    p = IceCream.explain(amount_kg__gte=1, amount_kg__gt=1, amount_kg__lte=9, amount_kg__lt=7)
    assert [s.atoms for s in p.steps] == [(Z(Z_AMOUNT, "(1.0", "(7.0"),)]


def test_window_with_a_bound_that_can_never_hold_is_empty() -> None:
    p = IceCream.explain(amount_kg__gte=1, amount_kg__lt=None)
    assert [s.atoms for s in p.steps] == [()]


def test_unindexed_model_always_scans() -> None:
    class Plain(SimpleRedisModel):
        __redis_client__ = NoRedis()
        flavour = types.StringType()

    p = Plain.explain(flavour="x")
    assert p.scan
    assert p.residual == (cond("flavour", Exact, "x"),)


# -- order -----------------------------------------------------------------------------------------


def test_order_on_range_index_is_server_side_and_pageable() -> None:
    p = IceCream.query(flavour="v").order_by("-amount_kg", "best_before").explain()
    assert p.order == (("amount_kg", True), ("best_before", False))
    assert p.order_keys == (Z_AMOUNT, Z_BEST)
    assert p.countable
    assert p.pageable


def test_order_on_unranged_field_is_in_python() -> None:
    p = IceCream.query(flavour="v").order_by("-amount_kg", "price").explain()
    assert p.order == (("amount_kg", True), ("price", False))
    assert p.order_keys == ()
    assert not p.pageable
    assert IceCream.query(flavour="v").order_by("flavour").explain().order_keys == ()


def test_order_without_condition_is_sorted_and_cut_on_the_server() -> None:
    p = IceCream.query().order_by("amount_kg").explain()
    assert p.scan  # every member is a candidate
    assert p.order_keys == (Z_AMOUNT,)
    assert p.countable  # no condition: nothing to re-check
    assert p.pageable
    assert not IceCream.query().order_by("price").explain().pageable


def test_order_with_residual_is_not_pageable() -> None:
    p = IceCream.query(flavour="v", price=1).order_by("amount_kg").explain()
    assert p.order_keys == (Z_AMOUNT,)
    assert not p.pageable


def test_order_by_replaces_earlier_order() -> None:
    q = IceCream.query(flavour="v").order_by("amount_kg").order_by("-best_before")
    assert q.explain().order == (("best_before", True),)
    assert IceCream.query().order_by("amount_kg").order_by().explain().order == ()


def test_order_by_unknown_field() -> None:
    with pytest.raises(UnknownField) as info:
        IceCream.query().order_by("-amount_gk")
    msg = str(info.value)
    assert "IceCream" in msg
    assert "'amount_gk'" in msg
    assert "did you mean 'amount_kg'?" in msg
    with pytest.raises(UnknownField) as info:
        IceCream.query().order_by("zzzzz")
    assert "no field 'zzzzz'. Fields: pk, id," in str(info.value)


def test_order_by_compound_field_is_refused() -> None:
    with pytest.raises(QueryError, match="tags"):
        IceCream.query().order_by("tags")


# -- plan() itself, and Query immutability ---------------------------------------------------------


def test_plan_function_matches_explain() -> None:
    store = IceCream._engine()
    q = IceCream.query(flavour="v", price=2).order_by("amount_kg")
    assert plan(store.settings, q.conditions, q.order) == q.explain()


def test_plan_str() -> None:
    text = str(IceCream.query(flavour="v", price__gt=3).order_by("-amount_kg").explain())
    assert text == (
        "IceCream query:\n"
        "  index EqualityIndex('flavour'): flavour='v'\n"
        "  check on loaded objects: price__gt=3.0\n"
        "  order by -amount_kg (in Python)"  # a residual: rows are re-checked, then sorted
    )
    assert str(IceCream.query(flavour="v").order_by("-amount_kg", "best_before").explain()) == (
        "IceCream query:\n"
        "  index EqualityIndex('flavour'): flavour='v'\n"
        "  order by -amount_kg, best_before (on the server)"
    )
    assert str(IceCream.query().explain()) == "IceCream query:\n  every object"
    assert "scan every object" in str(IceCream.explain(price=1))
    assert "(re-checked)" in str(IceCream.explain(amount_kg=2**60 + 1))


def test_queries_are_immutable() -> None:
    base = IceCream.query(flavour="v")
    narrower = base.filter(amount_kg__gt=1)
    ordered = base.order_by("amount_kg")
    paged = base.limit(5).offset(10)
    assert isinstance(narrower, Query)
    assert len(base.conditions) == 1
    assert len(narrower.conditions) == 2
    assert base.order == ()
    assert ordered.order == (("amount_kg", False),)
    assert (base.limit_, base.offset_) == (None, 0)
    assert (paged.limit_, paged.offset_) == (5, 10)
    with pytest.raises(AttributeError):
        base.limit_ = 3  # type: ignore[misc]


@pytest.mark.parametrize("bad", [-1, 1.5, "3"])
def test_limit_and_offset_validation(bad: Any) -> None:
    with pytest.raises(QueryError, match="limit"):
        IceCream.query().limit(bad)
    with pytest.raises(QueryError, match="offset"):
        IceCream.query().offset(bad)


# -- strict mode -----------------------------------------------------------------------------------


def test_strict_refuses_a_scan_and_names_the_index() -> None:
    with pytest.raises(StrictPerformanceException) as info:
        Strict.explain(price__gt=3)
    msg = str(info.value)
    assert "IceCream" in msg
    assert "price__gt" in msg
    assert "needs a RangeIndex on IceCream.price" in msg
    assert "__strict_performance__" in msg


def test_strict_equality_asks_for_an_index() -> None:
    with pytest.raises(StrictPerformanceException) as info:
        Strict.explain(id="x")
    assert "an index on IceCream.id" in str(info.value)


def test_strict_refuses_range_on_equality_indexed_field() -> None:
    expected = r"needs a RangeIndex on IceCream\.flavour \(EqualityIndex\('flavour'\) cannot answer it\)"
    with pytest.raises(StrictPerformanceException, match=expected):
        Strict.explain(flavour__gte="m")


def test_strict_runs_indexed_queries() -> None:
    p = Strict.explain(flavour="v", price__gt=3)  # one indexed condition is enough
    assert not p.scan
    assert p.residual == (cond("price", GreaterThan, 3.0),)
    assert Strict.explain(amount_kg__lt=3).countable


def test_strict_allows_listing_everything() -> None:
    assert Strict.query().explain().scan  # all() is asked for explicitly; not refused
    assert Strict.query().order_by("price").explain().scan


def test_strict_error_is_raised_by_filter_methods_before_io() -> None:
    with pytest.raises(StrictPerformanceException):
        Strict.filter(price=1)
    with pytest.raises(StrictPerformanceException):
        Strict.count(price=1)
    with pytest.raises(StrictPerformanceException):
        Strict.query(price=1).first()


# -- indexes Redis does not hold complete (schema.py) ---------------------------------------------
def settings_of(model: Any) -> Any:
    return model._engine().settings


def pending(*names: str, members: bool = True) -> SchemaState:
    return SchemaState(members=members, ready=frozenset(), pending=names, undeclared=())


def test_an_index_not_complete_is_never_a_step() -> None:
    conditions = [cond("flavour", Exact, "vanilla"), cond("amount_kg", GreaterThanOrEqual, 3)]
    p = plan(settings_of(IceCream), conditions, state=pending(EQ_FLAVOUR))
    assert [s.index for s in p.steps] == [RANGE_AMOUNT]
    assert [str(c) for c in p.residual] == ["flavour='vanilla'"]
    assert p.pending == (EQ_FLAVOUR,)
    assert "not used: EqualityIndex('flavour') is not complete yet" in str(p)
    alone = plan(settings_of(IceCream), conditions[:1], state=pending(EQ_FLAVOUR))
    assert alone.scan
    assert not alone.countable  # counted by loading


def test_an_order_index_not_complete_sorts_in_python() -> None:
    p = plan(
        settings_of(IceCream), [cond("flavour", Exact, "a")], (("amount_kg", False),), pending(RANGE_AMOUNT)
    )
    assert p.order_keys == ()
    assert not p.pageable


def test_strict_refuses_a_scan_caused_by_an_index_not_complete() -> None:
    with pytest.raises(IndexNotReady) as refused:
        plan(settings_of(Strict), [cond("flavour", Exact, "a")], state=pending(EQ_FLAVOUR))
    assert refused.value.indexes == (EQ_FLAVOUR,)
    assert "redis-schematics reindex" in str(refused.value)
    assert isinstance(refused.value, StrictPerformanceException)
    # another complete index serves the query: not a scan, not refused
    p = plan(
        settings_of(Strict),
        [cond("flavour", Exact, "a"), cond("vegan", Exact, True)],
        state=pending(EQ_FLAVOUR),
    )
    assert [s.index for s in p.steps] == [EQ_VEGAN]


def test_strict_refuses_every_filter_while_the_members_set_is_not_complete() -> None:
    with pytest.raises(IndexNotReady) as refused:
        plan(settings_of(Strict), [cond("flavour", Exact, "a")], state=pending(EQ_FLAVOUR, members=False))
    assert "EqualityIndex('flavour')" in str(refused.value)
    everything = plan(settings_of(IceCream), [], state=pending(members=False))
    assert everything.scan
    assert not everything.members_complete
    assert not everything.countable
