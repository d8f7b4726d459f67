"""EqualityIndex, RangeIndex and UniqueIndex as Redis sees them, on every layout and backend.

These tests read the index keys directly (SMEMBERS, ZSCORE, HGETALL, SCAN) rather than
trusting the library's own queries, so that a wrong key, an orphan entry or a key shared
between models shows up even when the query layer would hide it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from schematics import types

from redis_schematics import EqualityIndex, RangeIndex, UniqueIndex, UniqueViolation
from redis_schematics.records import Records
from tests.dbstate import db_state, key_names

UTC = dt.timezone.utc


def txt(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def all_keys(client: Any) -> set[str]:
    """Every key name, the deletes' idempotency markers left out (tests/dbstate.py)."""
    return key_names(client)


def smembers(client: Any, key: str) -> set[str]:
    return {txt(m) for m in client.smembers(key)}


def hgetall(client: Any, key: str) -> dict[str, str]:
    return {txt(k): txt(v) for k, v in client.hgetall(key).items()}


def zscores(client: Any, key: str) -> dict[str, float]:
    return {txt(m): s for m, s in client.zrange(key, 0, -1, withscores=True)}


def layout_keys(model: type) -> set[str]:
    """Keys under ``Prefix#`` that the layout itself stores objects in (column hashes)."""
    meta_keys = getattr(model._engine().layout, "meta_keys", None)
    return set(meta_keys()) if meta_keys else set()


def model_of(layout: type, client: Any, name: str = "Item", **attrs: Any) -> type:
    """A model on ``layout`` with the given fields/settings (dunders without underscores)."""
    body: dict[str, Any] = {"__redis_client__": client}
    for key, value in attrs.items():
        body[f"__{key}__" if key in ("indexes", "prefix", "expire") else key] = value
    return type(layout)(name, (layout,), body)


# -- which index kind a field name gets ---------------------------------------------------
EQUALITY_FIELDS = {
    "s": (types.StringType(), "abc"),
    "b": (types.BooleanType(), True),
    "u": (types.UUIDType(), uuid.UUID("12345678-1234-5678-1234-567812345678")),
    "e": (types.EmailType(), "a@example.com"),
}
RANGE_FIELDS = {
    "i": (types.IntType(), 5),
    "f": (types.FloatType(), 2.5),
    "d": (types.DecimalType(), Decimal("1.25")),
    "day": (types.DateType(), dt.date(2026, 1, 2)),
    "at": (types.DateTimeType(), dt.datetime(2026, 1, 2, 3, 4, 5, 6)),
    "ts": (types.TimestampType(), dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
}


def test_default_kind_follows_the_field_type(layout: type, backend: Any) -> None:
    fields = {name: ft for name, (ft, _v) in {**EQUALITY_FIELDS, **RANGE_FIELDS}.items()}
    model = model_of(layout, backend, "Kinds", indexes=tuple(fields), **fields)
    kinds = {index.field: type(index) for index in model._engine().indexes}
    assert kinds == {
        **{name: EqualityIndex for name in EQUALITY_FIELDS},
        **{name: RangeIndex for name in RANGE_FIELDS},
    }
    values = {name: v for name, (_ft, v) in {**EQUALITY_FIELDS, **RANGE_FIELDS}.items()}
    model({"pk": "k1", **values}).set()
    keys = all_keys(backend)
    for name in EQUALITY_FIELDS:
        assert [k for k in keys if k.startswith(f"Kinds#eq:{name}:")], name
        assert f"Kinds#range:{name}" not in keys
    for name in RANGE_FIELDS:
        assert zscores(backend, f"Kinds#range:{name}") == {"k1": pytest.approx(zscores_of(values[name]))}
        assert not [k for k in keys if k.startswith(f"Kinds#eq:{name}")], name
    # and each kind answers its field's equality on the server
    for name, value in values.items():
        plan = model.explain(**{name: value})
        assert not plan.scan, name
        assert not plan.residual, name
        assert [o.pk for o in model.filter(**{name: value})] == ["k1"], name


def zscores_of(value: Any) -> float:
    """The score the docs promise: micros (datetimes), days (dates), the number itself."""
    if isinstance(value, dt.datetime):
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return (value - dt.datetime(1970, 1, 1, tzinfo=UTC)) / dt.timedelta(microseconds=1)
    if isinstance(value, dt.date):
        return float((value - dt.date(1970, 1, 1)).days)
    return float(value)


def test_equality_key_names(layout: type, backend: Any) -> None:
    model = model_of(
        layout,
        backend,
        "Names",
        indexes=("flavour", RangeIndex("kg"), UniqueIndex("code")),
        flavour=types.StringType(),
        kg=types.IntType(),
        code=types.StringType(),
    )
    model({"pk": "p1", "flavour": "vanilla", "kg": 3, "code": "X"}).set()
    model({"pk": "p2", "flavour": None, "kg": None, "code": None}).set()
    assert smembers(backend, "Names#eq:flavour:vanilla") == {"p1"}
    assert smembers(backend, "Names#eq:flavour#none") == {"p2"}
    assert zscores(backend, "Names#range:kg") == {"p1": 3.0}
    assert hgetall(backend, "Names#unique:code") == {"X": "p1"}
    assert smembers(backend, "Names#members") == {"p1", "p2"}
    meta = {k for k in all_keys(backend) if "#" in k} - layout_keys(model)
    assert meta == {
        "Names#eq:flavour:vanilla",
        "Names#eq:flavour#none",
        "Names#range:kg",
        "Names#unique:code",
        "Names#members",
        "Names#meta",
    }


# -- None on each kind --------------------------------------------------------------------
@pytest.mark.parametrize("kind", [EqualityIndex, RangeIndex, UniqueIndex])
def test_field_none_on_each_kind(layout: type, backend: Any, kind: type) -> None:
    field = types.IntType() if kind is RangeIndex else types.StringType()
    value, other = (1, 2) if kind is RangeIndex else ("one", "two")
    model = model_of(layout, backend, "Nones", indexes=(kind("v"),), v=field)
    model({"pk": "a", "v": value}).set()
    model({"pk": "b", "v": other}).set()
    model({"pk": "n1", "v": None}).set()
    model({"pk": "n2"}).set()
    for _ in range(2):  # second round: after the None objects were rewritten
        assert [o.pk for o in model.filter(v=None)] == ["n1", "n2"]
        assert model.count(v=None) == 2
        assert [o.pk for o in model.filter(v__in=[None, value])] == ["a", "n1", "n2"]
        assert [o.pk for o in model.filter(v__not=None)] == ["a", "b"]
        assert model.count(v__not=None) == 2
        assert [o.pk for o in model.filter(v__not=value)] == ["b", "n1", "n2"]
        assert [o.pk for o in model.filter(v__exclude=[None])] == ["a", "b"]
        assert [o.pk for o in model.filter(v__exclude=[None, other])] == ["a"]
        model({"pk": "n1", "v": None}).set()
        model({"pk": "n2", "v": None}).set()
    if kind is UniqueIndex:
        assert hgetall(backend, "Nones#unique:v") == {"one": "a", "two": "b"}  # None never claimed
    if kind is RangeIndex:
        assert set(zscores(backend, "Nones#range:v")) == {"a", "b"}
        assert model.count(v__lt=10) == 2
    model({"pk": "n1", "v": value if kind is not UniqueIndex else "three"}).set()
    assert [o.pk for o in model.filter(v=None)] == ["n2"]
    assert model.check_indexes() == []


# -- UniqueIndex ------------------------------------------------------------------------------
@pytest.fixture
def users(layout: type, backend: Any) -> type:
    return model_of(
        layout,
        backend,
        "User",
        indexes=(UniqueIndex("email"), "team", RangeIndex("age")),
        email=types.StringType(),
        team=types.StringType(),
        age=types.IntType(),
    )


def test_unique_refuses_a_second_owner_and_writes_nothing(users: type, backend: Any) -> None:
    users({"pk": "u1", "email": "a@x", "team": "red", "age": 30}).set()
    users({"pk": "u2", "email": "b@x", "team": "blue", "age": 40}).set()
    before = db_state(backend)
    # a new object taking u1's email
    with pytest.raises(UniqueViolation) as info:
        users({"pk": "u3", "email": "a@x", "team": "green", "age": 50}).set()
    assert info.value.owner == "u1"
    assert info.value.field == "email"
    assert "u1" in str(info.value)
    assert "u3" in str(info.value)
    assert db_state(backend) == before
    # an existing object moving onto u1's email: its old value, team and age stay
    with pytest.raises(UniqueViolation):
        users({"pk": "u2", "email": "a@x", "team": "green", "age": 50}).set()
    assert db_state(backend) == before
    # set_many is all-or-nothing within the batch
    with pytest.raises(UniqueViolation):
        users.set_many([users({"pk": "u4", "email": "d@x"}), users({"pk": "u5", "email": "b@x"})])
    assert db_state(backend) == before
    assert users.match_for_pk("u2").email == "b@x"
    assert users.filter(team="green") == []
    assert users.check_indexes() == []


def test_unique_owner_keeps_or_changes_its_value(users: type, backend: Any) -> None:
    users({"pk": "u1", "email": "a@x", "age": 1}).set()
    users({"pk": "u1", "email": "a@x", "age": 2}).set()  # keeps it
    assert hgetall(backend, "User#unique:email") == {"a@x": "u1"}
    users({"pk": "u1", "email": "c@x", "age": 3}).set()  # changes it: a@x is freed
    assert hgetall(backend, "User#unique:email") == {"c@x": "u1"}
    users({"pk": "u2", "email": "a@x"}).set()  # the freed value can be claimed
    assert hgetall(backend, "User#unique:email") == {"c@x": "u1", "a@x": "u2"}
    assert users.match(email="a@x").pk == "u2"
    users.match_for_pk("u2").delete()  # deleting frees it too
    assert hgetall(backend, "User#unique:email") == {"c@x": "u1"}
    users({"pk": "u3", "email": "a@x"}).set()
    users({"pk": "u1", "email": None}).set()  # None frees it and claims nothing
    users({"pk": "u4", "email": None}).set()
    users({"pk": "u5"}).set()
    assert hgetall(backend, "User#unique:email") == {"a@x": "u3"}
    assert [u.pk for u in users.filter(email=None)] == ["u1", "u4", "u5"]
    assert users.count(email="c@x") == 0
    assert users.check_indexes() == []


# -- keys stay under the model prefix -------------------------------------------------------------
def mix_model(layout: type, client: Any, name: str) -> type:
    return model_of(
        layout,
        client,
        name,
        indexes=("flavour", RangeIndex("kg"), UniqueIndex("code")),
        flavour=types.StringType(),
        kg=types.IntType(),
        code=types.StringType(),
    )


def test_keys_live_under_the_prefix_and_models_never_share(layout: type, backend: Any) -> None:
    mix = mix_model(layout, backend, "Mix")
    two = mix_model(layout, backend, "MixTwo")
    for model in (mix, two):
        for n in range(4):
            model({"pk": f"p{n}", "flavour": ["a", "b"][n % 2], "kg": n, "code": f"c{n}"}).set()
        model({"pk": "none", "flavour": None, "kg": None, "code": None}).set()

    def owned(prefix: str, key: str) -> bool:
        return key == prefix or key.startswith((prefix + ":", prefix + "#"))

    keys = all_keys(backend)
    mix_keys = {k for k in keys if owned("Mix", k)}
    two_keys = {k for k in keys if owned("MixTwo", k)}
    assert mix_keys
    assert two_keys
    assert not mix_keys & two_keys
    assert mix_keys | two_keys == keys
    assert {k for k in mix_keys if "#" in k} - layout_keys(mix) == {
        "Mix#members",
        "Mix#meta",
        "Mix#eq:flavour:a",
        "Mix#eq:flavour:b",
        "Mix#eq:flavour#none",
        "Mix#range:kg",
        "Mix#unique:code",
    }
    # each model sees only its objects and its checks find no foreign key
    assert mix.check_indexes() == []
    assert two.check_indexes() == []
    assert mix.count(flavour="a") == 2
    assert two.count(flavour="a") == 2
    # emptying one leaves the other's keys exactly as they were
    before = {k: v for k, v in db_state(backend).items() if k in two_keys}
    assert mix.delete_all() == 5
    after = db_state(backend)
    assert after == before
    assert two.count() == 5
    two.rebuild_indexes()
    assert db_state(backend) == before


# -- updates move pks between index entries -----------------------------------------------------------
def test_update_moves_the_pk_and_leaves_no_orphan(layout: type, backend: Any) -> None:
    model = mix_model(layout, backend, "Mover")
    model({"pk": "p", "flavour": "a", "kg": 1, "code": "x"}).set()
    model({"pk": "q", "flavour": "a", "kg": 1, "code": "y"}).set()
    model({"pk": "p", "flavour": "b", "kg": 7, "code": "z"}).set()
    assert smembers(backend, "Mover#eq:flavour:a") == {"q"}
    assert smembers(backend, "Mover#eq:flavour:b") == {"p"}
    assert zscores(backend, "Mover#range:kg") == {"p": 7.0, "q": 1.0}
    assert hgetall(backend, "Mover#unique:code") == {"y": "q", "z": "p"}
    model({"pk": "p", "flavour": None, "kg": None, "code": None}).set()
    assert not backend.exists("Mover#eq:flavour:b")  # emptied, so gone
    assert smembers(backend, "Mover#eq:flavour#none") == {"p"}
    assert zscores(backend, "Mover#range:kg") == {"q": 1.0}
    assert hgetall(backend, "Mover#unique:code") == {"y": "q"}
    model({"pk": "p", "flavour": "a", "kg": 2, "code": "x"}).set()
    assert not backend.exists("Mover#eq:flavour#none")
    assert smembers(backend, "Mover#eq:flavour:a") == {"p", "q"}
    model.match_for_pk("p").delete()
    model.match_for_pk("q").delete()
    # nothing of the model is left
    assert not [k for k in all_keys(backend) if k.startswith("Mover")]


# -- the planner -----------------------------------------------------------------------------------
def test_explain_names_the_indexes_used(layout: type, backend: Any) -> None:
    model = model_of(
        layout,
        backend,
        "Plan",
        indexes=("flavour", RangeIndex("kg"), UniqueIndex("code")),
        flavour=types.StringType(),
        kg=types.IntType(),
        code=types.StringType(),
        price=types.FloatType(),
    )
    plan = model.explain(flavour="a", kg__gte=3)
    assert [s.index for s in plan.steps] == ["EqualityIndex('flavour')", "RangeIndex('kg')"]
    assert not plan.scan
    assert not plan.residual
    assert plan.countable
    text = str(plan)
    assert "EqualityIndex('flavour')" in text
    assert "RangeIndex('kg')" in text

    plan = model.explain(code="X", price__gt=1.0)
    assert [s.index for s in plan.steps] == ["UniqueIndex('code')"]
    assert [c.field for c in plan.residual] == ["price"]
    assert not plan.countable
    assert "check on loaded objects: price__gt=1.0" in str(plan)

    plan = model.explain(price__lt=3)
    assert plan.scan
    assert not plan.steps
    assert "scan every object" in str(plan)

    plan = model.explain(flavour__gt="a")  # an equality index cannot answer a range
    assert plan.scan
    assert [c.field for c in plan.residual] == ["flavour"]

    plan = model.query(kg__lt=5).order_by("-kg").explain()
    assert plan.pageable
    assert plan.order_keys == ("Plan#range:kg",)
    assert "order by -kg (on the server)" in str(plan)
    plan = model.query(kg__lt=5).order_by("price").explain()
    assert not plan.pageable
    assert plan.order_keys == ()
    assert "order by price (in Python)" in str(plan)


def test_count_of_indexed_queries_loads_no_object(
    layout: type, backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = model_of(
        layout,
        backend,
        "Counted",
        indexes=("flavour", RangeIndex("kg"), UniqueIndex("code")),
        flavour=types.StringType(),
        kg=types.IntType(),
        code=types.StringType(),
        price=types.FloatType(),
    )
    model.set_many(
        [
            model({"pk": f"p{n}", "flavour": "ab"[n % 2], "kg": n % 5, "code": f"c{n}", "price": n / 2})
            for n in range(40)
        ]
    )
    calls = []
    original = Records.hydrate

    def counting(self: Records, pk: str, payload: Any, only: Any = None) -> Any:
        calls.append(pk)
        return original(self, pk, payload, only)

    monkeypatch.setattr(Records, "hydrate", counting)
    assert model.count(flavour="a") == 20
    assert model.count(flavour="a", kg__gte=3) == 8
    assert model.count(kg__in=[0, 4], flavour__not="a") == 8
    assert model.count(code="c3") == 1
    assert model.count(code__in=["c3", "c4", "c2", "zz"], kg__lt=4) == 2
    assert model.count(flavour__exclude=["a", "b"]) == 0
    assert model.count() == 40
    assert calls == []
    # the counter does see loads: a residual condition must read the candidates
    assert model.count(flavour="a", price__gt=10) == 9
    assert len(calls) == 20


def test_order_by_range_field_pages_with_ties_and_none(layout: type, backend: Any) -> None:
    model = model_of(
        layout,
        backend,
        "Paged",
        indexes=(RangeIndex("kg"), RangeIndex("at"), "flavour"),
        kg=types.IntType(),
        at=types.DateTimeType(),
        flavour=types.StringType(),
    )
    kgs = [3, None, 1, 3, 2, None, 3, 1, 2, 3, None, 0]
    base = dt.datetime(2026, 1, 1)
    rows = {
        f"p{n:02d}": {"kg": kg, "at": None if n % 4 == 0 else base + dt.timedelta(microseconds=n % 3)}
        for n, kg in enumerate(kgs)
    }
    model.set_many([model({"pk": pk, "flavour": "x", **row}) for pk, row in rows.items()])

    def expected(desc: bool) -> list[str]:
        ones = sorted((pk for pk in rows if rows[pk]["kg"] is not None), key=lambda pk: (rows[pk]["kg"], pk))
        nones = sorted(pk for pk in rows if rows[pk]["kg"] is None)
        if desc:  # descending: values high to low, ties by pk ascending, None last
            ones = sorted(ones, key=lambda pk: (-rows[pk]["kg"], pk))
            return ones + nones
        return nones + ones

    for desc in (False, True):
        query = model.query(flavour="x").order_by("-kg" if desc else "kg")
        assert query.explain().pageable
        want = expected(desc)
        assert [o.pk for o in query.all()] == want
        for limit in range(1, 5):
            for offset in range(0, len(want) + 2):
                page = [o.pk for o in query.limit(limit).offset(offset)]
                assert page == want[offset : offset + limit], (desc, limit, offset)

    # two order keys: at (None first), then -kg, then pk
    def at_key(pk: str) -> tuple[Any, ...]:
        at, kg = rows[pk]["at"], rows[pk]["kg"]
        return (at is not None, at or base, kg is None, -(kg or 0), pk)

    want = sorted(rows, key=at_key)
    query = model.query(kg__gte=0).order_by("at", "-kg")
    want = [pk for pk in want if rows[pk]["kg"] is not None]
    assert query.explain().pageable
    for limit in (1, 2, 5):
        for offset in range(0, len(want) + 1):
            assert [o.pk for o in query.limit(limit).offset(offset).all()] == want[offset : offset + limit]
