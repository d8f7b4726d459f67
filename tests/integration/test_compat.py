"""Data written by redis-schematics 0.3.x reads as it is; ``rebuild_indexes()`` adopts it.

0.3.x wrote ``json.dumps(obj.to_primitive())`` (default separators, so ``", "`` and
``": "``) at the string key ``Prefix:pk`` (Simple) or in the hash ``Prefix`` under the
field ``Prefix:pk`` (Hash), and kept no members set and no index. The payloads below are
written exactly that way, from plain schematics models that know nothing of this library.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from schematics import models, types

from redis_schematics import (
    HashRedisModel,
    MultipleFound,
    NotFound,
    RangeIndex,
    SimpleRedisModel,
    UniqueIndex,
    patch_json,
)
from tests import dbstate
from tests.engine import stored

Factory = Callable[..., Any]


class OldIceCream(models.Model):
    """The model as a 0.3.x application declared it (only schematics is involved)."""

    pk = types.StringType()
    id = types.StringType()
    flavour = types.StringType()
    amount_kg = types.IntType()
    best_before = types.DateTimeType()


FIELDS: dict[str, Any] = {
    "pk": types.StringType(),
    "id": types.StringType(),
    "flavour": types.StringType(),
    "amount_kg": types.IntType(),
    "best_before": types.DateTimeType(),
}

OLD_ROWS = [
    {"id": "v1", "flavour": "vanilla", "amount_kg": 42, "best_before": datetime(2026, 3, 1, 12)},
    {"id": "c1", "flavour": "chocolate", "amount_kg": 12, "best_before": datetime(2026, 1, 5)},
    {"id": "v2", "flavour": "vanilla", "amount_kg": 7, "best_before": None},
    {"id": "*", "flavour": "mint", "amount_kg": None, "best_before": datetime(2025, 12, 31)},
    {"id": "a:b c", "flavour": None, "amount_kg": 0, "best_before": None},
]


def write_old(client: Any, layout_name: str, prefix: str, pk: str, primitive: dict[str, Any]) -> str:
    """Write one object exactly as 0.3.x did; returns the payload."""
    payload = json.dumps(primitive)
    if layout_name == "simple":
        client.set(f"{prefix}:{pk}", payload)
    else:
        client.hset(prefix, f"{prefix}:{pk}", payload)
    return payload


def write_old_rows(
    client: Any, layout_name: str, prefix: str = "IceCream", pk_in_payload: bool = True
) -> None:
    for row in OLD_ROWS:
        obj = OldIceCream(dict(row, pk=row["id"] if pk_in_payload else None))
        write_old(client, layout_name, prefix, row["id"], obj.to_primitive())


#: the layouts 0.3.x had (the newer ones have no 0.3.x data to read)
OLD_LAYOUTS = {"simple": SimpleRedisModel, "hash": HashRedisModel}


@pytest.fixture(params=list(OLD_LAYOUTS))
def old_layout(request: pytest.FixtureRequest) -> type:
    return OLD_LAYOUTS[request.param]


@pytest.fixture
def make(old_layout: type, client: Any) -> Factory:
    def factory(name: str = "IceCream", **attrs: Any) -> Any:
        body: dict[str, Any] = {"__redis_client__": client, **FIELDS}
        body.update(attrs)
        return type(old_layout)(name, (old_layout,), body)

    return factory


def layout_name(model: Any) -> str:
    return str(model._engine().layout.name)


def key_names(client: Any) -> set[str]:
    return dbstate.key_names(client)


def ids(objs: list[Any]) -> list[str]:
    return sorted(o.id for o in objs)


INDEXES = ("flavour", RangeIndex("amount_kg"), "best_before", UniqueIndex("id"))


def test_old_payload_is_exactly_what_0_3_x_wrote(make: Factory, client: Any) -> None:
    model = make()
    write_old_rows(client, layout_name(model))
    raw = (
        client.get("IceCream:v1")
        if layout_name(model) == "simple"
        else client.hget("IceCream", "IceCream:v1")
    )
    text = raw.decode() if isinstance(raw, bytes) else raw
    assert text.startswith("{")
    assert '", "' in text  # default separators
    assert '": ' in text
    assert key_names(client) == (
        {"IceCream"} if layout_name(model) == "hash" else {f"IceCream:{r['id']}" for r in OLD_ROWS}
    )


def test_match_for_pk_reads_old_data(make: Factory, client: Any) -> None:
    model = make(__indexes__=INDEXES)
    write_old_rows(client, layout_name(model))
    for row in OLD_ROWS:
        obj = model.match_for_pk(row["id"])
        assert obj.id == row["id"]
        assert obj.flavour == row["flavour"]
        assert obj.amount_kg == row["amount_kg"]
        assert obj.best_before == row["best_before"]
        assert obj.key == f"IceCream:{row['id']}"
    assert model.match(id="v1").flavour == "vanilla"
    assert model.match(pk="c1").amount_kg == 12
    found = model.match_for_pks(["v1", "nope", "*"])
    assert [o.id if o else None for o in found] == ["v1", None, "*"]
    with pytest.raises(NotFound):
        model.match_for_pk("nope")
    obj = model({"id": "v1"})
    obj.refresh()
    assert obj.amount_kg == 42


def test_old_data_needs_a_rebuild_to_be_listed(make: Factory, client: Any) -> None:
    model = make(__indexes__=INDEXES)
    write_old_rows(client, layout_name(model))
    problems = model.check_indexes()
    missing_members = sorted(p.member for p in problems if p.kind == "missing member")
    assert missing_members == sorted(r["id"] for r in OLD_ROWS)
    assert {p.kind for p in problems} == {
        "missing member",
        "missing entry",
        "members not complete",
        "index not complete",
    }
    not_complete = sorted(p.member for p in problems if p.kind == "index not complete")
    assert not_complete == sorted(i.describe() for i in model._engine().indexes)


def test_old_data_is_listed_and_found_before_any_rebuild(make: Factory, client: Any) -> None:
    # Nothing was rebuilt: the members set and the indexes are not complete, so queries
    # do not trust them (a SCAN of the stored keys, every row re-checked) -- never an
    # empty answer.
    model = make(__indexes__=INDEXES)
    write_old_rows(client, layout_name(model))
    assert ids(model.all()) == sorted(r["id"] for r in OLD_ROWS)
    assert model.count() == len(OLD_ROWS)
    assert ids(model.filter(flavour="vanilla")) == ["v1", "v2"]
    assert model.count(amount_kg__gte=10) == 2
    assert [o.id for o in model.query(flavour="vanilla").order_by("-amount_kg").all()] == ["v1", "v2"]
    assert model.match(id="*").flavour == "mint"
    plan = model.explain(flavour="vanilla")
    assert plan.scan
    assert not plan.members_complete
    assert "not complete" in str(plan)


@pytest.mark.parametrize("pk_in_payload", [True, False])
def test_rebuild_indexes_adopts_old_data(make: Factory, client: Any, pk_in_payload: bool) -> None:
    model = make(__indexes__=INDEXES)
    write_old_rows(client, layout_name(model), pk_in_payload=pk_in_payload)
    assert model.rebuild_indexes() == len(OLD_ROWS)
    assert model.check_indexes() == []
    assert model.rebuild_indexes() == 0  # nothing left to repair

    assert ids(model.all()) == sorted(r["id"] for r in OLD_ROWS)
    assert model.count() == len(OLD_ROWS)
    assert ids(model.filter(flavour="vanilla")) == ["v1", "v2"]
    assert ids(model.filter(flavour=None)) == ["a:b c"]
    assert ids(model.filter(amount_kg__gte=10)) == ["c1", "v1"]
    assert ids(model.filter(amount_kg=None)) == ["*"]
    assert ids(model.filter(best_before__lt="2026-01-06T00:00:00")) == ["*", "c1"]
    assert model.count(flavour__in=["vanilla", "mint"]) == 3
    assert model.count(amount_kg__lt=10) == 2
    assert model.match(id="*").flavour == "mint"
    assert [o.id for o in model.query(flavour="vanilla").order_by("-amount_kg").all()] == ["v1", "v2"]
    assert all(not p.scan for p in [model.explain(flavour="vanilla"), model.explain(amount_kg__gt=1)])


def test_old_data_is_untouched_by_the_rebuild(make: Factory, client: Any) -> None:
    model = make(__indexes__=INDEXES)
    write_old_rows(client, layout_name(model))
    before = {r["id"]: stored(model, [r["id"]])[0][0] for r in OLD_ROWS}
    model.rebuild_indexes()
    after = {r["id"]: stored(model, [r["id"]])[0][0] for r in OLD_ROWS}
    assert before == after


def test_old_and_new_objects_together(make: Factory, client: Any) -> None:
    model = make(__indexes__=INDEXES)
    write_old_rows(client, layout_name(model))
    model({"id": "n1", "flavour": "vanilla", "amount_kg": 1}).set()
    assert ids(model.all()) == sorted(["n1", *(r["id"] for r in OLD_ROWS)])  # a scan, until the rebuild
    assert model.rebuild_indexes() == len(OLD_ROWS)
    assert ids(model.filter(flavour="vanilla")) == ["n1", "v1", "v2"]
    assert model.check_indexes() == []


def test_writes_to_adopted_objects_keep_indexes_exact(make: Factory, client: Any) -> None:
    model = make(__indexes__=INDEXES)
    write_old_rows(client, layout_name(model))
    model.rebuild_indexes()
    obj = model.match_for_pk("v1")
    obj.flavour = "mint"
    obj.amount_kg = 3
    obj.set()
    assert ids(model.filter(flavour="vanilla")) == ["v2"]
    assert ids(model.filter(flavour="mint")) == ["*", "v1"]
    assert ids(model.filter(amount_kg__lt=5)) == ["a:b c", "v1"]
    assert model.match_for_pk("c1").delete() is True
    assert model.count() == len(OLD_ROWS) - 1
    assert model.check_indexes() == []


def test_old_objects_can_be_deleted_before_any_rebuild(make: Factory, client: Any) -> None:
    model = make(__indexes__=INDEXES)
    write_old_rows(client, layout_name(model))
    assert model.match_for_pk("v1").delete() is True
    with pytest.raises(NotFound):
        model.match_for_pk("v1")
    assert model.delete_many(["c1", "nope"]) == 1
    assert model.delete_all() == len(OLD_ROWS) - 2  # delete_all also finds unlisted objects
    assert {k for k in key_names(client) if "#once:" not in k} == set()  # markers expire in 10 s


def test_unique_together_keys_of_0_3_x(make: Factory, client: Any) -> None:
    model = make("Batch", __unique_together__=("flavour", "amount_kg"), __indexes__=("flavour",))
    primitive = OldIceCream({"pk": "vanilla.42", "flavour": "vanilla", "amount_kg": 42}).to_primitive()
    write_old(client, layout_name(model), "Batch", "vanilla.42", primitive)
    assert model.match(flavour="vanilla", amount_kg=42).amount_kg == 42
    assert model.rebuild_indexes() == 1
    assert model.match(flavour="vanilla").key == "Batch:vanilla.42"


def write_old_expiring(client: Any, model: Any) -> None:
    """0.3.x with ``__expire__ = 100``: the key (or the model's hash) got a Redis TTL."""
    primitive = OldIceCream({"pk": "1", "id": "1", "flavour": "vanilla"}).to_primitive()
    write_old(client, layout_name(model), "Brief", "1", primitive)
    client.expire("Brief:1" if layout_name(model) == "simple" else "Brief", 100)


def test_expiring_model_reads_old_data_by_pk(make: Factory, client: Any) -> None:
    """The object is alive (Redis keeps it for its TTL), so it reads as it is."""
    model = make("Brief", __expire__=100, __indexes__=("flavour",))
    write_old_expiring(client, model)
    assert model.match_for_pk("1").flavour == "vanilla"
    assert model.match(id="1").flavour == "vanilla"


def test_expiring_model_adopts_old_data(make: Factory, client: Any) -> None:
    model = make("Brief", __expire__=100, __indexes__=("flavour",))
    write_old_expiring(client, model)
    assert model.rebuild_indexes() == 1
    assert model.match_for_pk("1").flavour == "vanilla"
    assert ids(model.filter(flavour="vanilla")) == ["1"]
    assert model.count() == 1
    assert model.check_indexes() == []


def test_custom_prefix_of_0_3_x(make: Factory, client: Any) -> None:
    model = make("IceCream", __prefix__="gelato", __indexes__=("flavour",))
    write_old_rows(client, layout_name(model), prefix="gelato")
    assert model.match_for_pk("v1").flavour == "vanilla"
    assert model.rebuild_indexes() == len(OLD_ROWS)
    assert ids(model.filter(flavour="vanilla")) == ["v1", "v2"]


# -- a model that gains (or loses) an index --------------------------------------------------------


def test_new_index_is_built_by_rebuild(make: Factory, client: Any) -> None:
    before = make()
    before.set_many([before(dict(r)) for r in OLD_ROWS])
    after = make(__indexes__=INDEXES)
    problems = after.check_indexes()
    assert problems
    assert {p.kind for p in problems} == {"missing entry", "index not complete"}
    # before the rebuild the new indexes are not used: right answers from a scan
    assert ids(after.filter(flavour="vanilla")) == ["v1", "v2"]
    assert after.count(amount_kg__gt=10) == 2
    assert after.explain(flavour="vanilla").scan
    assert after.rebuild_indexes() == len(OLD_ROWS)
    assert after.check_indexes() == []
    assert ids(after.filter(flavour="vanilla")) == ["v1", "v2"]
    assert after.count(amount_kg__gt=10) == 2
    assert not after.explain(flavour="vanilla").scan


def test_dropped_index_keys_are_reported_and_removed(make: Factory, client: Any) -> None:
    indexed = make(__indexes__=INDEXES)
    indexed.set_many([indexed(dict(r)) for r in OLD_ROWS])
    fewer = make(__indexes__=("flavour",))
    problems = fewer.check_indexes()
    assert problems
    assert {p.kind for p in problems} == {"unknown key", "undeclared index"}
    assert "IceCream#range:amount_kg" in {p.key for p in problems}
    assert "RangeIndex('amount_kg')" in {p.member for p in problems if p.kind == "undeclared index"}
    fewer.rebuild_indexes()
    assert fewer.check_indexes() == []
    assert not any(k.startswith("IceCream#range:") for k in key_names(client))
    assert ids(fewer.filter(flavour="vanilla")) == ["v1", "v2"]


# -- what the original test suite checks beyond tests/integration/test_original.py ---------------


def original_model(layout: type, client: Any, name: str = "Twin", **attrs: Any) -> Any:
    body: dict[str, Any] = {"__redis_client__": client, **FIELDS, **attrs}
    return type(layout)(name, (layout,), body)


def test_multiple_found_is_caught_by_except_key_error(layout: type, client: Any) -> None:
    model = original_model(layout, client)
    model.set_many([model({"id": "1", "flavour": "vanilla"}), model({"id": "2", "flavour": "vanilla"})])
    caught: Exception | None = None
    try:
        model.match(flavour="vanilla")
    except KeyError as exc:  # how 0.3.x code catches it
        caught = exc
    assert isinstance(caught, MultipleFound)


def test_patch_json_dumps_models(layout: type, client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(json.JSONEncoder, "default", json.JSONEncoder.default)  # restored after
    model = original_model(layout, client)
    model.set_many([model(dict(row)) for row in OLD_ROWS[:3]])
    patch_json()
    found = model.all()
    assert json.dumps(found) == json.dumps([obj.to_primitive() for obj in found])
    assert json.loads(json.dumps({"first": found[0]})) == {"first": found[0].to_primitive()}


# -- __set_key__: the Hash layout's hash named by the model (0.3.x) --------------------------------


def sub_key(self: Any) -> str:
    """The override of the original test suite: the hash ``Prefix:<hash_id>``."""
    return str(self.__key_pattern__(self.hash_id))


@pytest.fixture
def sub_keyed(client: Any) -> Factory:
    def factory(**attrs: Any) -> Any:
        body = {"hash_id": types.StringType(default="SubKey"), "__set_key__": property(sub_key), **attrs}
        return original_model(HashRedisModel, client, "Dyn", **body)

    return factory


def test_set_key_names_the_hash_objects_are_written_to(sub_keyed: Factory, client: Any) -> None:
    model = sub_keyed()
    obj = model({"id": "v1", "flavour": "vanilla", "amount_kg": 3})
    obj.set()
    assert obj.key == "Dyn:v1"
    raw = client.hget("Dyn:SubKey", "Dyn:v1")
    assert json.loads(raw) == obj.to_primitive()
    assert client.exists("Dyn") == 0
    assert model.match_for_pk("v1").amount_kg == 3


def test_set_key_reads_0_3_x_data_and_adopts_it(sub_keyed: Factory, client: Any) -> None:
    model = sub_keyed(__indexes__=INDEXES)
    for row in OLD_ROWS:  # 0.3.x: HSET <__set_key__> Prefix:pk json.dumps(...)
        primitive = dict(OldIceCream(dict(row, pk=row["id"])).to_primitive(), hash_id="SubKey")
        client.hset("Dyn:SubKey", f"Dyn:{row['id']}", json.dumps(primitive))
    assert model.match_for_pk("v1").flavour == "vanilla"
    assert model.match(id="c1").amount_kg == 12
    assert model.rebuild_indexes() == len(OLD_ROWS)
    assert model.check_indexes() == []
    assert ids(model.filter(flavour="vanilla")) == ["v1", "v2"]
    assert ids(model.filter(amount_kg__gte=10)) == ["c1", "v1"]
    assert model.delete_all() == len(OLD_ROWS)
    assert client.exists("Dyn:SubKey") == 0


def test_set_key_serves_the_whole_api(sub_keyed: Factory, client: Any) -> None:
    """The original ran its whole suite on such a model; so does this, in one go."""
    model = sub_keyed(__expire__=120, __indexes__=(RangeIndex("amount_kg"),))
    obj = model({"id": "123", "flavour": "Bar", "amount_kg": 42, "best_before": datetime(2026, 1, 2)})
    obj.set()
    expected = obj.to_primitive()

    def raw() -> Any:
        return client.hget("Dyn:SubKey", "Dyn:123")

    assert json.loads(raw()) == expected
    assert 0 < client.ttl("Dyn:SubKey") <= 240  # the hash expires: 2 x __expire__ with indexes
    for kwargs in (
        {"id": "123"},
        {"pk": "123"},
        {"amount_kg": 42},
        {"amount_kg__lt": 43},
        {"amount_kg__gt": 41},
    ):
        assert model.match(**kwargs).to_primitive() == expected
    for kwargs in ({"id": "321"}, {"pk": "321"}, {"amount_kg__gt": 42}, {"amount_kg__lt": 42}):
        with pytest.raises(NotFound):
            model.match(**kwargs)
    assert model.match_for_values(flavour="Bar").to_primitive() == expected
    assert [o.to_primitive() for o in model.all()] == [expected]
    assert [o.to_primitive() for o in model.filter(amount_kg__lt=43)] == [expected]
    assert model.filter(amount_kg__lt=42) == []
    assert model.delete_filter(flavour="Bla") == 0
    assert raw() is not None
    assert model.delete_filter(flavour="Bar") == 1
    assert raw() is None
    obj.set()
    obj.delete()
    assert raw() is None
    assert model.all() == []
    assert model.delete_all() == 0
    obj.set()
    assert model.delete_all() == 1
    assert raw() is None
    assert model.check_indexes() == []


# -- __prefix__ declared as a property (0.3.x) -------------------------------------------------------


def gelato(self: Any) -> str:
    return "gelato"


def test_prefix_property_reads_0_3_x_data(make: Factory, client: Any) -> None:
    model = make("IceCream", __prefix__=property(gelato), __indexes__=("flavour",))
    write_old_rows(client, layout_name(model), prefix="gelato")
    assert model.match_for_pk("v1").flavour == "vanilla"
    assert model.match_for_pk("v1").key == "gelato:v1"
    assert model.rebuild_indexes() == len(OLD_ROWS)
    assert ids(model.filter(flavour="vanilla")) == ["v1", "v2"]


def test_prefix_property_names_every_key(layout: type, client: Any) -> None:
    model = original_model(layout, client, "IceCream", __prefix__=property(gelato), __indexes__=("flavour",))
    model({"id": "v1", "flavour": "vanilla"}).set()
    names = key_names(client)
    assert names
    assert all(name.startswith("gelato") for name in names), names
    assert ids(model.filter(flavour="vanilla")) == ["v1"]
