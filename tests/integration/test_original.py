"""The original library's integration tests (0.2.x/0.3.x), on every layout and backend."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from schematics import types

from redis_schematics import NotFound
from tests.engine import layout_read


@pytest.fixture
def model(layout: type, client: Any) -> type:
    return type(layout)(
        "TestModel",
        (layout,),
        {
            "__redis_client__": client,
            "__expire__": 120,
            "id": types.IntType(required=True),
            "name": types.StringType(),
            "created": types.DateTimeType(),
            "good_number": types.IntType(),
        },
    )


@pytest.fixture
def schema(model: type) -> Any:
    obj = model({"id": 123, "name": "Bar", "created": datetime.now(), "good_number": 42})
    obj.set()
    return obj


def raw_value(model: type, client: Any) -> Any:
    layout = model._engine().layout.name
    if layout == "simple":
        return client.get("TestModel:123")
    if layout == "hash":
        return client.hget("TestModel", "TestModel:123")
    # the field layouts store no JSON payload: their stored state, None when absent
    return layout_read(model, client, ["123"])[0]


def stored(model: type, client: Any) -> Any:
    store = model._engine()
    if store.layout.name in ("simple", "hash"):
        return json.loads(raw_value(model, client))
    return store.layout.decode(raw_value(model, client))


def test_set(model: type, client: Any, schema: Any) -> None:
    assert stored(model, client) == schema.to_primitive()


def test_match(model: type, client: Any, schema: Any) -> None:
    expected = stored(model, client)
    assert model.match(id=123).to_primitive() == expected
    assert model.match(pk="123").to_primitive() == expected
    assert model.match(good_number=42).to_primitive() == expected
    assert model.match(good_number__lt=43).to_primitive() == expected
    assert model.match(good_number__gt=41).to_primitive() == expected


def test_match_on_non_existing(model: type, schema: Any) -> None:
    for kwargs in ({"id": 321}, {"pk": "321"}, {"good_number__gt": 42}, {"good_number__lt": 42}):
        with pytest.raises(NotFound):
            model.match(**kwargs)


def test_match_for_pk(model: type, client: Any, schema: Any) -> None:
    assert model.match_for_pk("123").to_primitive() == stored(model, client)


def test_match_for_values(model: type, client: Any, schema: Any) -> None:
    assert model.match_for_values(name="Bar").to_primitive() == stored(model, client)


def test_all(model: type, client: Any, schema: Any) -> None:
    assert [o.to_primitive() for o in model.all()] == [stored(model, client)]


def test_all_on_non_existing(model: type, schema: Any) -> None:
    schema.delete()
    assert model.all() == []


def test_filter(model: type, client: Any, schema: Any) -> None:
    assert model.filter(good_number__lt=43)[0].to_primitive() == stored(model, client)
    assert model.filter(good_number__lt=42) == []


def test_delete(model: type, client: Any, schema: Any) -> None:
    schema.delete()
    assert raw_value(model, client) is None


def test_delete_all(model: type, client: Any, schema: Any) -> None:
    assert model.delete_all() == 1
    assert raw_value(model, client) is None


def test_delete_all_on_non_existing(model: type, client: Any, schema: Any) -> None:
    schema.delete()
    assert model.delete_all() == 0
    assert raw_value(model, client) is None


def test_delete_filter(model: type, client: Any, schema: Any) -> None:
    assert model.delete_filter(name="Bla") == 0
    assert raw_value(model, client)
    assert model.delete_filter(name="Bar") == 1
    assert raw_value(model, client) is None


def test_delete_filter_on_non_existing(model: type, client: Any, schema: Any) -> None:
    schema.delete()
    assert model.delete_filter() == 0
    assert raw_value(model, client) is None
