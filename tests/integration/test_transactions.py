"""transaction() blocks, pipeline= on a redis pipeline, and Model.update (SPEC §4)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from schematics import types

from redis_schematics import UniqueIndex, UniqueViolation, transaction
from redis_schematics.exceptions import ConcurrentModification, InvalidModel, NotFound
from tests.dbstate import db_state
from tests.models import ice_cream


@pytest.fixture
def models(layout: type, client: Any) -> tuple[type, type]:
    ice = ice_cream(layout, client)
    user = type(layout)(
        "User",
        (layout,),
        {
            "__redis_client__": client,
            "__indexes__": ("name", UniqueIndex("email")),
            "id": types.StringType(),
            "name": types.StringType(),
            "email": types.StringType(),
        },
    )
    return ice, user


def test_transaction_commits_writes_of_several_models(models: tuple[type, type], client: Any) -> None:
    ice, user = models
    old = ice({"id": "old", "flavour": "mint"})
    old.set()
    with transaction(client) as tx:
        ice({"id": "a", "flavour": "vanilla", "amount_kg": 3}).set(pipeline=tx)
        ice.set_many([ice({"id": "b", "flavour": "vanilla"})], pipeline=tx)
        user({"id": "u", "name": "ann", "email": "a@x"}).set(pipeline=tx)
        old.delete(pipeline=tx)
        # reads inside the block see what is committed, not the pending writes
        assert ice.count(flavour="vanilla") == 0
        assert ice.count() == 1
    assert sorted(o.id for o in ice.filter(flavour="vanilla")) == ["a", "b"]
    assert user.match(email="a@x").id == "u"
    assert ice.count(flavour="mint") == 0
    assert ice.check_indexes() == []
    assert user.check_indexes() == []


def test_transaction_discards_everything_when_the_block_raises(
    models: tuple[type, type], client: Any
) -> None:
    ice, user = models
    ice({"id": "keep", "flavour": "mint"}).set()
    before = db_state(client)

    def block() -> None:
        with transaction(client) as tx:
            ice({"id": "a", "flavour": "vanilla"}).set(pipeline=tx)
            user({"id": "u", "email": "a@x"}).set(pipeline=tx)
            ice.delete_many(["keep"], pipeline=tx)
            msg = "boom"
            raise RuntimeError(msg)

    with pytest.raises(RuntimeError, match="boom"):
        block()
    assert db_state(client) == before


def test_transaction_is_all_or_nothing_on_unique_violation(models: tuple[type, type], client: Any) -> None:
    ice, user = models
    user({"id": "owner", "email": "taken@x"}).set()
    before = db_state(client)

    def block() -> None:
        with transaction(client) as tx:
            ice({"id": "a", "flavour": "vanilla"}).set(pipeline=tx)
            user({"id": "thief", "email": "taken@x"}).set(pipeline=tx)

    with pytest.raises(UniqueViolation, match="taken@x"):
        block()
    assert db_state(client) == before


def test_invalid_object_inside_block_aborts_the_block(models: tuple[type, type], client: Any) -> None:
    ice, _user = models
    before = db_state(client)

    def block() -> None:
        with transaction(client) as tx:
            ice({"id": "a", "flavour": "vanilla"}).set(pipeline=tx)
            bad = ice({"id": "b"})
            bad.amount_kg = "not a number"
            bad.set(pipeline=tx)

    with pytest.raises(InvalidModel):
        block()
    assert db_state(client) == before


def test_last_write_of_an_object_in_a_block_wins(models: tuple[type, type], client: Any) -> None:
    ice, _user = models
    with transaction(client) as tx:
        obj = ice({"id": "a", "flavour": "vanilla"})
        obj.set(pipeline=tx)
        obj.flavour = "mint"
        obj.set(pipeline=tx)
    assert ice.match_for_pk("a").flavour == "mint"
    assert ice.count(flavour="vanilla") == 0
    assert ice.check_indexes() == []


def test_closed_transaction_refuses_writes(models: tuple[type, type], client: Any) -> None:
    ice, _user = models
    with transaction(client) as tx:
        pass
    with pytest.raises(Exception, match="committed"):
        ice({"id": "late"}).set(pipeline=tx)


def test_redis_pipeline_applies_writes_on_execute(models: tuple[type, type], client: Any) -> None:
    ice, _user = models
    ice({"id": "gone", "flavour": "mint"}).set()
    pipe = client.pipeline()
    ice({"id": "a", "flavour": "vanilla"}).set(pipeline=pipe)
    assert ice.delete_many(["gone"], pipeline=pipe) == 1
    assert ice.count() == 1  # nothing applied before execute
    pipe.execute()
    assert [o.id for o in ice.all()] == ["a"]
    assert ice.check_indexes() == []


def test_redis_pipeline_refuses_a_write_whose_object_changed_after_queueing(
    models: tuple[type, type], client: Any
) -> None:
    ice, _user = models
    obj = ice({"id": "a", "flavour": "vanilla"})
    obj.set()
    pipe = client.pipeline()
    obj.flavour = "mint"
    obj.set(pipeline=pipe)
    ice({"id": "a", "flavour": "chocolate"}).set()  # someone else, in between
    with pytest.raises(Exception, match="RSGUARD"):
        pipe.execute()
    assert ice.match_for_pk("a").flavour == "chocolate"
    assert ice.check_indexes() == []


def test_update_applies_fn_and_keeps_indexes(models: tuple[type, type]) -> None:
    ice, _user = models
    ice({"id": "a", "flavour": "vanilla", "amount_kg": 1}).set()

    def bump(obj: Any) -> None:
        obj.amount_kg += 1
        obj.flavour = "mint"

    result = ice.update("a", bump)
    assert result.amount_kg == 2
    assert ice.match(flavour="mint").amount_kg == 2
    assert ice.count(amount_kg__gte=2) == 1
    assert ice.check_indexes() == []


def test_update_missing_object_raises_not_found(models: tuple[type, type]) -> None:
    ice, _user = models
    with pytest.raises(NotFound, match="nope"):
        ice.update("nope", lambda obj: None)


def test_update_retries_on_conflict_and_gives_up(models: tuple[type, type]) -> None:
    ice, _user = models
    ice({"id": "a", "amount_kg": 0}).set()
    calls = []

    def meddling(obj: Any) -> None:
        calls.append(1)
        other = ice.match_for_pk("a")
        other.amount_kg += 100  # a concurrent writer changes it every time
        other.set()
        obj.amount_kg += 1

    with pytest.raises(ConcurrentModification, match="'a'"):
        ice.update("a", meddling, retries=2)
    assert len(calls) == 3
    assert ice.match_for_pk("a").amount_kg == 300  # none of our writes landed


@pytest.mark.real
def test_update_never_loses_an_increment_across_threads(layout: type, request: pytest.FixtureRequest) -> None:
    from tests.conftest import real_client

    client = real_client(request.config)
    try:
        ice = ice_cream(layout, client)
        ice({"id": "counter", "amount_kg": 0}).set()
        threads, per_thread = 6, 60

        def work() -> None:
            import redis

            own = redis.Redis(connection_pool=client.connection_pool)
            model = ice_cream(layout, own)
            for _ in range(per_thread):
                model.update("counter", lambda o: setattr(o, "amount_kg", o.amount_kg + 1), retries=1000)

        workers = [threading.Thread(target=work) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert ice.match_for_pk("counter").amount_kg == threads * per_thread
        assert ice.count(amount_kg=threads * per_thread) == 1
        assert ice.check_indexes() == []
    finally:
        client.flushdb()
